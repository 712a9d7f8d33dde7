//! `threescale`: the project's command-line tool.
//!
//! - `threescale map --config FILE [--explain] [--service ID]`: reads `METHOD PATH[?QUERY]`
//!   lines on stdin and prints, per line, the usage the mapping rules give:
//!   `{"usage":{"hits":1},"rules":[0]}`.
//! - `threescale emulate --config FILE [--listen 127.0.0.1:3001] [--tls-cert PEM
//!   --tls-key PEM [--tls-client-ca PEM]]`: runs the local 3scale backend
//!   emulator, over HTTPS (and mutual TLS) when given a certificate.
//! - `threescale import-openapi FILE [--prefix /v1]`: prints mapping rules for
//!   an OpenAPI 3 document, in the project's YAML format.
//! - `threescale authrep [--config FILE] (--user-key K | --app-id ID [--app-key K])
//!   [--referrer R] [--usage metric=N]...`: one authrep call with a config's
//!   backend settings. Exits 0 when authorized, 1 when denied, 2 on errors.
//!   Secrets can stay off the command line (where other users of the machine
//!   can read them): without `--config` the configuration comes from the
//!   `THREESCALE_*` variables (`THREESCALE_SERVICE_TOKEN`, `THREESCALE_PROVIDER_KEY`,
//!   `THREESCALE_CONFIG`, or the admin portal through `THREESCALE_PORTAL_ENDPOINT`
//!   with its access token), and the application's credentials from
//!   `THREESCALE_USER_KEY`, or `THREESCALE_APP_ID` and `THREESCALE_APP_KEY`.

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
        /// Serve HTTPS with this certificate chain (PEM; needs --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates issued by these authorities (PEM): mutual TLS.
        #[arg(long, requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
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
    /// Exits 0 when authorized, 1 when denied, 2 on errors.
    Authrep {
        /// The project's config or a proxy config JSON (default: the
        /// THREESCALE_* variables, or the admin portal of THREESCALE_PORTAL_ENDPOINT).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The application's user key (or THREESCALE_USER_KEY).
        #[arg(long, conflicts_with = "app_id")]
        user_key: Option<String>,
        /// The application's id (or THREESCALE_APP_ID).
        #[arg(long)]
        app_id: Option<String>,
        /// The application's key (or THREESCALE_APP_KEY).
        #[arg(long, requires = "app_id")]
        app_key: Option<String>,
        /// The referrer to send (for applications with referrer filters).
        #[arg(long)]
        referrer: Option<String>,
        /// `metric=N`, repeatable (default `hits=1`).
        #[arg(long)]
        usage: Vec<String>,
    },
}

/// Exit status of `authrep` when the backend denied the application.
const EXIT_DENIED: u8 = 1;
/// Exit status of every command on errors (as clap's for bad arguments).
const EXIT_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Map {
            config,
            explain,
            service,
        } => map(&config, explain, service.as_deref()).map(|()| ExitCode::SUCCESS),
        Command::Emulate {
            config,
            listen,
            tls_cert,
            tls_key,
            tls_client_ca,
        } => emulate(config, listen, tls_cert, tls_key, tls_client_ca).map(|()| ExitCode::SUCCESS),
        Command::ImportOpenapi { file, prefix } => {
            import_openapi(&file, prefix.as_deref()).map(|()| ExitCode::SUCCESS)
        }
        Command::Authrep {
            config,
            user_key,
            app_id,
            app_key,
            referrer,
            usage,
        } => authrep(
            config.as_deref(),
            AppArgs {
                user_key,
                app_id,
                app_key,
            },
            referrer,
            &usage,
            &|name| std::env::var(name).ok(),
        ),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("threescale: {message}");
            ExitCode::from(EXIT_ERROR)
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
    let result = rules.matches(method, path, query);
    // The gateway answers "no mapping rule matched" and clears its
    // matched-rules header when the usage is empty, e.g. when every
    // matching rule has a delta of 0.
    let matched: Vec<usize> = if result.usage.is_empty() {
        Vec::new()
    } else {
        result.rules.to_vec()
    };
    let mut usage = Map::new();
    for (metric, value) in result.usage.iter() {
        usage.insert(metric.to_string(), json!(value.amount()));
    }
    let mut line = format!(
        "{{\"usage\":{},\"rules\":{}",
        Value::Object(usage),
        json!(matched)
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

fn emulate(
    config: PathBuf,
    listen: SocketAddr,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => {
            let tls = threescale_emulator::EmulatorTls::from_files(cert, key)
                .map_err(|e| e.to_string())?;
            Some(match tls_client_ca {
                Some(ca) => tls
                    .require_client_cert_file(ca)
                    .map_err(|e| e.to_string())?,
                None => tls,
            })
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    println!("3scale backend emulator on {scheme}://{listen} (Ctrl-C stops it)");
    runtime
        .block_on(threescale_emulator::serve_from_file_tls(
            &config, listen, tls,
        ))
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

/// The application's credentials as given on the command line.
struct AppArgs {
    user_key: Option<String>,
    app_id: Option<String>,
    app_key: Option<String>,
}

impl AppArgs {
    /// The command line's credentials, else the environment's.
    fn credentials(self, var: &dyn Fn(&str) -> Option<String>) -> Result<AppCredentials, String> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let (user_key, app_id) = if self.user_key.is_some() || self.app_id.is_some() {
            (self.user_key, self.app_id)
        } else {
            match (var("THREESCALE_USER_KEY"), var("THREESCALE_APP_ID")) {
                (Some(_), Some(_)) => {
                    return Err(
                        "THREESCALE_USER_KEY and THREESCALE_APP_ID are both set; keep one".into(),
                    );
                }
                both => both,
            }
        };
        let app_key = || self.app_key.clone().or_else(|| var("THREESCALE_APP_KEY"));
        match (user_key, app_id) {
            (Some(key), _) => Ok(AppCredentials::user_key(key)),
            (None, Some(id)) => Ok(match app_key() {
                Some(key) => AppCredentials::app_id_key(id, key),
                None => AppCredentials::app_id(id),
            }),
            (None, None) => Err(
                "give --user-key or --app-id (or set THREESCALE_USER_KEY, or THREESCALE_APP_ID \
                 and THREESCALE_APP_KEY)"
                    .into(),
            ),
        }
    }
}

/// The configuration: the file given, else the environment (the admin portal
/// when `THREESCALE_PORTAL_ENDPOINT` is set).
async fn load_config(
    config: Option<&std::path::Path>,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, String> {
    if let Some(path) = config {
        let path = path.display().to_string();
        // The file, with the environment's overrides (backend URL, TLS), as
        // `THREESCALE_CONFIG` would give it.
        return Config::from_vars(|name| match name {
            "THREESCALE_CONFIG" => Some(path.clone()),
            _ => var(name),
        })
        .map_err(|e| e.to_string());
    }
    if let Some(portal) = threescale_core::Portal::from_vars(var).map_err(|e| e.to_string())? {
        return portal.load().await.map_err(|e| e.to_string());
    }
    Config::from_vars(var).map_err(|e| format!("{e} (or give --config FILE)"))
}

fn authrep(
    config: Option<&std::path::Path>,
    app: AppArgs,
    referrer: Option<String>,
    usage: &[String],
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<ExitCode, String> {
    let credentials = app.credentials(var)?;
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let config = runtime.block_on(load_config(config, var))?;
    let client = BackendClient::builder(config.service.provider_auth.clone())
        .url(config.service.backend_url.clone())
        .timeout(config.timeout)
        .tls(config.tls.clone())
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = AuthRequest::new(credentials).usage(total);
    request.referrer = referrer;
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
            return Ok(ExitCode::from(EXIT_DENIED));
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
    Ok(if answer.is_authorized() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DENIED)
    })
}
