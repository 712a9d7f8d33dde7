//! `threescale`: the project's command-line tool.
//!
//! - `threescale map --config FILE [--explain] [--service ID]`: reads `METHOD PATH[?QUERY]`
//!   lines on stdin and prints, per line, the usage the mapping rules give:
//!   `{"usage":{"hits":1},"rules":[0]}`.
//! - `threescale emulate --config FILE [--listen 127.0.0.1:3001]`: runs the
//!   local 3scale backend emulator.
//! - `threescale import-openapi FILE [--prefix /v1]`: prints mapping rules for
//!   an OpenAPI 3 document, in the project's YAML format.
//! - `threescale authrep --config FILE (--user-key K | --app-id ID [--app-key K])
//!   [--usage metric=N]...`: one authrep call with a config's backend settings.

use std::{
    io::{BufRead, Write},
    net::SocketAddr,
    path::PathBuf,
    process::ExitCode,
};

use clap::{Parser, Subcommand};
use serde_json::{Map, Value, json};
use threescale_core::{
    AppCredentials, AuthRequest, BackendClient, BackendError, Config, MappingRules, Usage,
};

#[derive(Parser)]
#[command(
    name = "threescale",
    version,
    about = "3scale API management for Rust services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Maps `METHOD PATH[?QUERY]` lines from stdin to metric usage, one JSON object per line.
    Map {
        /// A 3scale proxy config JSON or the project's YAML/JSON config.
        #[arg(long)]
        config: PathBuf,
        /// After each line, say for every rule whether it matched or why not.
        #[arg(long)]
        explain: bool,
        /// The service whose rules to use, when the file holds several (default the first).
        #[arg(long)]
        service: Option<String>,
    },
    /// Runs the local 3scale backend emulator.
    Emulate {
        /// The emulator's services, plans and applications (YAML or JSON).
        #[arg(long)]
        config: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3001")]
        listen: SocketAddr,
    },
    /// Prints mapping rules for an OpenAPI 3 document as the project's YAML.
    ImportOpenapi {
        /// The OpenAPI document (YAML or JSON).
        file: PathBuf,
        /// A path prefix put in front of every pattern (e.g. `/v1`).
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Sends one authrep with a config's backend settings and prints the answer.
    Authrep {
        /// The project's config or a proxy config JSON.
        #[arg(long)]
        config: PathBuf,
        /// The application's user key.
        #[arg(long, conflicts_with = "app_id")]
        user_key: Option<String>,
        /// The application's id.
        #[arg(long)]
        app_id: Option<String>,
        /// The application's key.
        #[arg(long, requires = "app_id")]
        app_key: Option<String>,
        /// `metric=N`, repeatable (default `hits=1`).
        #[arg(long)]
        usage: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Map {
            config,
            explain,
            service,
        } => map(&config, explain, service.as_deref()),
        Command::Emulate { config, listen } => emulate(config, listen),
        Command::ImportOpenapi { file, prefix } => import_openapi(&file, prefix.as_deref()),
        Command::Authrep {
            config,
            user_key,
            app_id,
            app_key,
            usage,
        } => authrep(&config, user_key, app_id, app_key, &usage),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("threescale: {message}");
            ExitCode::FAILURE
        }
    }
}

fn map(config: &std::path::Path, explain: bool, service: Option<&str>) -> Result<(), String> {
    let source = config.display().to_string();
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("{source}: cannot read the file: {e}"))?;
    let file =
        threescale_core::RulesFile::parse(&text, &source, service).map_err(|e| e.to_string())?;
    if file.services > 1 && service.is_none() {
        eprintln!(
            "threescale: {source} holds {} services; using the rules of the first ({}); choose one with --service ID",
            file.services, file.service_id
        );
    }
    let rules = &file.rules;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("reading stdin: {e}"))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let answer = match parse_request_line(line) {
            Ok((method, path, query)) => map_one(rules, method, path, query, explain),
            Err(reason) => json!({ "error": reason, "line": line }).to_string(),
        };
        writeln!(out, "{answer}").map_err(|e| e.to_string())?;
        // One answer per line as it comes, for interactive use.
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Splits `METHOD PATH[?QUERY]` (an HTTP request line's trailing `HTTP/1.1`
/// is allowed and ignored).
fn parse_request_line(line: &str) -> Result<(&str, &str, Option<&str>), String> {
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err("expected `METHOD PATH[?QUERY]`".into());
    };
    match (parts.next(), parts.next()) {
        (None, _) => {}
        (Some(version), None) if version.starts_with("HTTP/") => {}
        _ => return Err("expected `METHOD PATH[?QUERY]`".into()),
    }
    if !target.starts_with('/') {
        return Err(format!("the path {target:?} does not start with /"));
    }
    Ok(match target.split_once('?') {
        Some((path, query)) => (method, path, Some(query)),
        None => (method, target, None),
    })
}

/// One answer line: `{"usage":{..},"rules":[..]}` (keys in that order), plus
/// `"explain":[..]` when asked.
fn map_one(
    rules: &MappingRules,
    method: &str,
    path: &str,
    query: Option<&str>,
    explain: bool,
) -> String {
    let mut result = rules.matches(method, path, query);
    if result.usage.is_empty() {
        // The gateway answers "no mapping rule matched" and clears its
        // matched-rules header when the usage is empty, e.g. when every
        // matching rule has a delta of 0.
        result.rules.clear();
    }
    let mut usage = Map::new();
    for (metric, value) in result.usage.iter() {
        usage.insert(metric.to_string(), json!(value.amount()));
    }
    let mut line = format!(
        "{{\"usage\":{},\"rules\":{}",
        Value::Object(usage),
        json!(result.rules)
    );
    if explain {
        let explained: Vec<Value> = rules
            .explain(method, path, query)
            .into_iter()
            .map(|e| {
                let rule = &rules.rules()[e.index];
                json!({
                    "rule": e.index,
                    "http_method": rule.http_method,
                    "pattern": rule.pattern,
                    "metric": rule.metric_system_name,
                    "delta": rule.delta,
                    "matched": e.matched(),
                    "outcome": e.outcome.to_string(),
                })
            })
            .collect();
        line.push_str(&format!(",\"explain\":{}", Value::Array(explained)));
    }
    line.push('}');
    line
}

fn emulate(config: PathBuf, listen: SocketAddr) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    println!("3scale backend emulator on http://{listen} (Ctrl-C stops it)");
    runtime
        .block_on(threescale_emulator::serve_from_file(&config, listen))
        .map_err(|e| e.to_string())
}

fn import_openapi(file: &std::path::Path, prefix: Option<&str>) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: cannot read the file: {e}", file.display()))?;
    let import = threescale_core::openapi::import(&text, prefix)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let mut out = String::new();
    out.push_str(&format!(
        "# Mapping rules imported from {}\n",
        file.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    for (operation, name) in &import.generated_names {
        out.push_str(&format!(
            "# {operation}: no operationId, metric named {name}\n"
        ));
    }
    out.push_str("mapping_rules:\n");
    for rule in &import.rules {
        out.push_str(&format!(
            "  - {{ http_method: {}, pattern: {}, metric_system_name: {}, delta: {} }}\n",
            rule.http_method,
            yaml_string(&rule.pattern),
            yaml_string(&rule.metric_system_name),
            rule.delta
        ));
    }
    print!("{out}");
    Ok(())
}

/// A double-quoted YAML scalar (JSON string syntax is valid YAML).
fn yaml_string(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

fn authrep(
    config: &std::path::Path,
    user_key: Option<String>,
    app_id: Option<String>,
    app_key: Option<String>,
    usage: &[String],
) -> Result<(), String> {
    let config = Config::from_file(config).map_err(|e| e.to_string())?;
    let credentials = match (user_key, app_id, app_key) {
        (Some(key), _, _) => AppCredentials::user_key(key),
        (None, Some(id), Some(key)) => AppCredentials::app_id_key(id, key),
        (None, Some(id), None) => AppCredentials::app_id(id),
        (None, None, _) => return Err("give --user-key or --app-id".into()),
    };
    let mut total = Usage::default();
    for item in usage {
        let (metric, value) = item
            .split_once('=')
            .ok_or_else(|| format!("--usage {item:?}: expected metric=N"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| format!("--usage {item:?}: {value:?} is not a whole number"))?;
        total.add(metric, value);
    }
    if total.is_empty() {
        total = Usage::hits();
    }
    let client = BackendClient::builder(config.service.provider_auth.clone())
        .url(config.service.backend_url.clone())
        .timeout(config.timeout)
        .build()
        .map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let request = AuthRequest::new(credentials).usage(total);
    let answer = match runtime.block_on(client.authrep(&request)) {
        Ok(answer) => answer,
        // An `<error>` document is the backend's answer, not a failure to ask.
        Err(BackendError::Api {
            status,
            code,
            message,
        }) => {
            println!(
                "{}",
                json!({
                    "status": status.as_u16(),
                    "authorized": false,
                    "error_code": code,
                    "reason": message,
                })
            );
            return Ok(());
        }
        Err(error) => return Err(error.to_string()),
    };
    let authorization = answer.authorization.as_ref();
    let reports: Vec<Value> = authorization
        .map(|a| {
            a.usage_reports
                .iter()
                .map(|r| {
                    json!({
                        "metric": r.metric,
                        "period": r.period.as_str(),
                        "current_value": r.current_value,
                        "max_value": r.max_value,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    println!(
        "{}",
        json!({
            "status": answer.status.as_u16(),
            "authorized": answer.is_authorized(),
            "reason": authorization.and_then(|a| a.reason.clone()),
            "plan": authorization.and_then(|a| a.plan.clone()),
            "usage_reports": reports,
        })
    );
    Ok(())
}
