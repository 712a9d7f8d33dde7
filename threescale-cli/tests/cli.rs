//! The `threescale` command line: `map` (with `--explain`), `import-openapi`,
//! `emulate` and `authrep`, run as a real process.

use std::{
    collections::BTreeMap,
    io::Write,
    path::PathBuf,
    process::{Command, Output, Stdio},
    time::Duration,
};

use serde_json::Value;
use threescale_emulator::{AppRef, Emulator, EmulatorConfig, EmulatorHandle};

const BIN: &str = env!("CARGO_BIN_EXE_threescale");

fn example(name: &str) -> String {
    format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A local backend with one service and one application (user key `uk-basic`).
async fn emulator() -> EmulatorHandle {
    let config = EmulatorConfig::from_yaml_str(
        r#"
services:
  - id: "1001"
    backend_version: "1"
    service_token: "tok-1001"
    metrics:
      - { name: hits }
      - { name: orders, parent: hits }
    plans:
      - name: basic
        limits:
          - { metric: hits, period: minute, value: 1000 }
    applications:
      - { plan: basic, user_key: "uk-basic" }
"#,
    )
    .expect("test config");
    Emulator::start(config).await.expect("emulator starts")
}

/// The application's all-time usage per metric, metrics never used left out.
fn usage(emulator: &EmulatorHandle, service_id: &str, user_key: &str) -> BTreeMap<String, u64> {
    let totals = emulator
        .usage(service_id, AppRef::user_key(user_key))
        .expect("the application exists");
    totals
        .usage
        .into_iter()
        .filter(|(_, periods)| periods.eternity > 0)
        .map(|(metric, periods)| (metric, periods.eternity as u64))
        .collect()
}

fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the threescale binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout_lines(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A file in the temp dir, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "threescale-cli-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn map_prints_one_json_object_per_request_line_for_the_sample_proxy_config() {
    let input = "\
GET /orders/12
GET /orders/12/items
POST /orders
GET /catalog/books/items.json?page=2&sort=price
GET /catalog/books/items.json?sort=price
GET //orders//12
get /orders/12

# comments and blank lines are skipped
DELETE /orders/12?user_key=abc
GET /orders/12 HTTP/1.1
";
    let lines = stdout_lines(&run(
        &["map", "--config", &example("proxy-config.json")],
        input,
    ));
    assert_eq!(
        lines,
        [
            r#"{"usage":{"orders":1},"rules":[0]}"#,
            r#"{"usage":{"hits":1,"orders":1},"rules":[1,4]}"#,
            r#"{"usage":{"hits":1,"orders":5},"rules":[2,4]}"#,
            r#"{"usage":{"hits":3},"rules":[3,4]}"#,
            r#"{"usage":{"hits":1},"rules":[4]}"#,
            r#"{"usage":{"orders":1},"rules":[0]}"#,
            // Methods are case-sensitive: only the ANY rule matches `get`.
            r#"{"usage":{"hits":1},"rules":[4]}"#,
            r#"{"usage":{"hits":1},"rules":[4]}"#,
            r#"{"usage":{"orders":1},"rules":[0]}"#,
        ]
    );
}

#[test]
fn map_reads_the_project_format_and_reports_no_match_as_empty() {
    let config = TempFile::new(
        "rules.yaml",
        r#"
service:
  id: "1"
  service_token: t
  mapping_rules:
    - { http_method: GET, pattern: "/v1/{id}.json$", metric_system_name: reads, delta: 1 }
    - { http_method: ANY, pattern: "/v1/admin", metric_system_name: admin, delta: 0 }
"#,
    );
    let lines = stdout_lines(&run(
        &["map", "--config", config.path()],
        "GET /v1/7.json\nGET /v1/7.json/x\nPOST /v1/admin\nnot-a-request\n",
    ));
    assert_eq!(lines[0], r#"{"usage":{"reads":1},"rules":[0]}"#);
    assert_eq!(lines[1], r#"{"usage":{},"rules":[]}"#);
    // A rule whose delta is 0 matches but its metric is dropped, and with no
    // usage left the gateway says no rule matched.
    assert_eq!(lines[2], r#"{"usage":{},"rules":[]}"#);
    let error: Value = serde_json::from_str(&lines[3]).unwrap();
    assert_eq!(error["line"], "not-a-request");
    assert!(error["error"].as_str().unwrap().contains("METHOD PATH"));
    assert_eq!(lines.len(), 4);
}

#[test]
fn map_needs_only_the_rules_and_picks_a_service_from_a_gateway_file() {
    // No backend credentials, numbers where the gateway accepts them, two services.
    let config = TempFile::new(
        "gateway.json",
        r#"{"services": [
            {"id": 42, "backend_version": 1, "proxy": {"proxy_rules": [
                {"http_method": "GET", "pattern": "/", "metric_system_name": "hits", "delta": 1}]}},
            {"id": 43, "proxy": {"proxy_rules": [
                {"http_method": "POST", "pattern": "/x/{id}", "metric_system_name": "xs", "delta": "2"}]}}
        ]}"#,
    );
    let output = run(&["map", "--config", config.path()], "GET /a\nPOST /x/1\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--service"));
    assert_eq!(
        stdout_lines(&output),
        [
            r#"{"usage":{"hits":1},"rules":[0]}"#,
            r#"{"usage":{},"rules":[]}"#
        ]
    );
    let output = run(
        &["map", "--config", config.path(), "--service", "43"],
        "GET /a\nPOST /x/1\n",
    );
    assert!(output.stderr.is_empty());
    assert_eq!(
        stdout_lines(&output),
        [
            r#"{"usage":{},"rules":[]}"#,
            r#"{"usage":{"xs":2},"rules":[0]}"#
        ]
    );
    let output = run(&["map", "--config", config.path(), "--service", "44"], "");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no service with id \"44\""));
}

#[test]
fn explain_says_for_each_rule_why_it_did_not_match() {
    let lines = stdout_lines(&run(
        &[
            "map",
            "--config",
            &example("proxy-config.json"),
            "--explain",
        ],
        "GET /catalog/books/items.json?page=1\nGET /orders/3\n",
    ));
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["usage"], serde_json::json!({"hits": 1}));
    let explain = first["explain"].as_array().unwrap();
    assert_eq!(explain.len(), 5);
    let outcome = |i: usize| explain[i]["outcome"].as_str().unwrap().to_string();
    assert_eq!(
        explain[3]["pattern"],
        "/catalog/{category}/items.json?page={page}&sort=price"
    );
    assert_eq!(explain[3]["matched"], false);
    assert!(outcome(3).contains("sort"), "{}", outcome(3));
    assert!(outcome(2).contains("method"), "{}", outcome(2));
    assert!(outcome(0).contains("path"), "{}", outcome(0));
    assert_eq!(explain[4]["matched"], true);

    // A rule with `last: true` stops the walk; the others say so.
    let second: Value = serde_json::from_str(&lines[1]).unwrap();
    let explain = second["explain"].as_array().unwrap();
    assert_eq!(explain[0]["matched"], true);
    assert!(
        explain[4]["outcome"].as_str().unwrap().contains("last"),
        "{}",
        explain[4]["outcome"]
    );
}

#[test]
fn broken_configs_fail_with_the_file_and_field() {
    let broken = TempFile::new(
        "broken.json",
        r#"{"proxy_config": {"content": {"id": 1,
            "backend_authentication_type": "service_token",
            "backend_authentication_value": "hidden-secret",
            "proxy": {"proxy_rules": [{"http_method": "GET", "pattern": "/{a", "metric_system_name": "m"}]}}}}"#,
    );
    let output = run(&["map", "--config", broken.path()], "GET /\n");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("proxy_config.content.proxy.proxy_rules[0].pattern"),
        "{stderr}"
    );
    assert!(stderr.contains(broken.path()), "{stderr}");
    assert!(!stderr.contains("hidden-secret"), "{stderr}");
    assert!(output.stdout.is_empty());

    let output = run(&["map", "--config", &example("emulator.yaml")], "");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("threescale emulate"));
}

#[test]
fn import_openapi_prints_rules_the_project_format_reads_back() {
    let document = TempFile::new(
        "openapi.yaml",
        r#"
openapi: 3.0.3
info: { title: Shop, version: "2" }
paths:
  /orders:
    get: { operationId: listOrders, responses: { "200": { description: ok } } }
    post: { operationId: CreateOrder, responses: { "201": { description: created } } }
  /orders/{orderId}:
    get: { operationId: getOrderById, responses: { "200": { description: ok } } }
    delete: { responses: { "204": { description: gone } } }
"#,
    );
    let output = run(&["import-openapi", document.path(), "--prefix", "/v2"], "");
    let text = stdout_lines(&output).join("\n");
    assert!(
        text.contains("no operationId, metric named delete_orders_order_id"),
        "{text}"
    );
    // The output is the `mapping_rules` section of the project's format.
    let indented: String = text.lines().map(|l| format!("  {l}\n")).collect::<String>();
    let config = TempFile::new(
        "imported.yaml",
        &format!("service:\n  id: \"1\"\n  service_token: t\n{indented}"),
    );
    let lines = stdout_lines(&run(
        &["map", "--config", config.path()],
        "GET /v2/orders\nPOST /v2/orders\nGET /v2/orders/17\nDELETE /v2/orders/17\nGET /v2/orders/17/lines\nGET /orders\n",
    ));
    assert_eq!(
        lines,
        [
            r#"{"usage":{"list_orders":1},"rules":[0]}"#,
            r#"{"usage":{"create_order":1},"rules":[1]}"#,
            r#"{"usage":{"get_order_by_id":1},"rules":[2]}"#,
            r#"{"usage":{"delete_orders_order_id":1},"rules":[3]}"#,
            r#"{"usage":{},"rules":[]}"#,
            r#"{"usage":{},"rules":[]}"#,
        ]
    );

    let output = run(&["import-openapi", &example("proxy-config.json")], "");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("OpenAPI"));
}

fn lines_contain(output: &Output, needle: &str) -> bool {
    String::from_utf8_lossy(&output.stdout).contains(needle)
        || String::from_utf8_lossy(&output.stderr).contains(needle)
}

/// Kills the child process on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn emulate_serves_the_backend_api_from_a_config_file() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let _child = Child(
        Command::new(BIN)
            .args([
                "emulate",
                "--config",
                &example("emulator.yaml"),
                "--listen",
                &listen,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = reqwest::Client::new();
    let url = format!(
        "http://{listen}/transactions/authrep.xml?service_token=demo-service-token&service_id=2555417777820&user_key=demo-user-key&usage%5Bhits%5D=1"
    );
    let mut answer = None;
    for _ in 0..100 {
        match client.get(&url).send().await {
            Ok(response) => {
                answer = Some(response);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let answer = answer.expect("the emulator answers within 10 s");
    assert_eq!(answer.status(), 200);
    let body = answer.text().await.unwrap();
    assert!(body.contains("<authorized>true</authorized>"), "{body}");
    assert!(body.contains("<plan>basic</plan>"), "{body}");
}

#[tokio::test]
async fn authrep_calls_the_configured_backend() {
    let emulator = emulator().await;
    let config = TempFile::new(
        "authrep.yaml",
        &format!(
            "backend: {{ url: \"{}\" }}\nservice: {{ id: \"1001\", service_token: tok-1001 }}\n",
            emulator.url()
        ),
    );
    let path = config.path().to_string();
    let output = tokio::task::spawn_blocking(move || {
        run(
            &[
                "authrep",
                "--config",
                &path,
                "--user-key",
                "uk-basic",
                "--usage",
                "orders=2",
            ],
            "",
        )
    })
    .await
    .unwrap();
    let lines = stdout_lines(&output);
    let answer: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(answer["status"], 200);
    assert_eq!(answer["authorized"], true);
    assert_eq!(answer["plan"], "basic");
    let usage = usage(&emulator, "1001", "uk-basic");
    assert_eq!(usage.get("orders"), Some(&2), "{usage:?}");
    assert_eq!(usage.get("hits"), Some(&2), "{usage:?}");

    let path = config.path().to_string();
    let output = tokio::task::spawn_blocking(move || {
        run(
            &["authrep", "--config", &path, "--user-key", "no-such-key"],
            "",
        )
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1), "denied exits 1");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let answer: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(answer["status"], 403);
    assert_eq!(answer["authorized"], false);
    assert_eq!(answer["error_code"], "user_key_invalid");
    assert!(!lines_contain(&output, "no-such-key"));
}

/// Runs the binary with exactly these `THREESCALE_*` variables (none inherited).
fn run_env(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("THREESCALE_") || name.starts_with("APICAST_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the threescale binary runs")
}

async fn run_env_async(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        run_env(&args, &vars)
    })
    .await
    .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn authrep_exits_0_when_authorized_1_when_denied_2_on_errors() {
    let emulator = emulator().await;
    let url = emulator.url();
    let backend = [
        ("THREESCALE_BACKEND_URL", url.as_str()),
        ("THREESCALE_SERVICE_TOKEN", "tok-1001"),
        ("THREESCALE_SERVICE_ID", "1001"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut vars = backend.to_vec();
        vars.extend_from_slice(extra);
        vars
    };

    let output = run_env_async(&["authrep"], &with(&[("THREESCALE_USER_KEY", "uk-basic")])).await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    // Over the limit: a 409 denial.
    let output = run_env_async(
        &["authrep", "--usage", "hits=5000"],
        &with(&[("THREESCALE_USER_KEY", "uk-basic")]),
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("\"authorized\":false"),
        "{}",
        text(&output)
    );

    // An unknown key: the backend's refusal is a denial too.
    let output = run_env_async(&["authrep"], &with(&[("THREESCALE_USER_KEY", "nope")])).await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));

    // Errors: no credentials, a bad usage, an unreachable backend, no config.
    let output = run_env_async(&["authrep"], &with(&[])).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("THREESCALE_USER_KEY"),
        "{}",
        text(&output)
    );
    let output = run_env_async(
        &["authrep", "--user-key", "uk-basic", "--usage", "hits"],
        &with(&[]),
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = format!("http://{closed}");
    let output = run_env_async(
        &["authrep", "--user-key", "uk-basic"],
        &[
            ("THREESCALE_BACKEND_URL", unreachable.as_str()),
            ("THREESCALE_SERVICE_TOKEN", "tok-1001"),
            ("THREESCALE_SERVICE_ID", "1001"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(!text(&output).contains("tok-1001"), "{}", text(&output));
    let output = run_env_async(&["authrep", "--user-key", "uk-basic"], &[]).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("--config"), "{}", text(&output));

    // Only the authorized call counted.
    assert_eq!(usage(&emulator, "1001", "uk-basic").get("hits"), Some(&1));
}

#[tokio::test]
async fn authrep_takes_every_secret_from_the_environment() {
    let emulator = emulator().await;
    let url = emulator.url();
    // The provider's token and the user key: nothing secret on the command line.
    let output = run_env_async(
        &["authrep", "--usage", "orders=3"],
        &[
            ("THREESCALE_BACKEND_URL", url.as_str()),
            ("THREESCALE_SERVICE_TOKEN", "tok-1001"),
            ("THREESCALE_SERVICE_ID", "1001"),
            ("THREESCALE_USER_KEY", "uk-basic"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(usage(&emulator, "1001", "uk-basic").get("orders"), Some(&3));

    // The command line wins over the environment.
    let output = run_env_async(
        &["authrep", "--user-key", "nope"],
        &[
            ("THREESCALE_BACKEND_URL", url.as_str()),
            ("THREESCALE_SERVICE_TOKEN", "tok-1001"),
            ("THREESCALE_SERVICE_ID", "1001"),
            ("THREESCALE_USER_KEY", "uk-basic"),
        ],
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));

    // The admin portal's access token from THREESCALE_PORTAL_ENDPOINT, the app
    // id and key from their variables.
    let config = EmulatorConfig::from_yaml_str(
        r#"
admin_access_token: "portal-secret"
services:
  - id: "2002"
    backend_version: "2"
    service_token: "tok-2002"
    metrics: [{ name: hits }]
    plans: [{ name: pro }]
    applications:
      - { plan: pro, app_id: "app1", app_keys: ["key1"] }
"#,
    )
    .unwrap();
    let portal = Emulator::start(config).await.unwrap();
    let endpoint = portal.portal_endpoint("portal-secret");
    let backend = portal.url();
    let vars = |key: &'static str| {
        vec![
            ("THREESCALE_PORTAL_ENDPOINT", endpoint.clone()),
            ("THREESCALE_SERVICE_ID", "2002".to_string()),
            ("THREESCALE_BACKEND_URL", backend.clone()),
            ("THREESCALE_APP_ID", "app1".to_string()),
            ("THREESCALE_APP_KEY", key.to_string()),
        ]
    };
    for (key, code) in [("key1", 0), ("wrong-key", 1)] {
        let owned = vars(key);
        let vars: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let output = run_env_async(&["authrep"], &vars).await;
        assert_eq!(output.status.code(), Some(code), "{key}: {}", text(&output));
        assert!(
            !text(&output).contains("portal-secret"),
            "{}",
            text(&output)
        );
    }
    portal.shutdown().await;
}

#[tokio::test]
async fn emulate_serves_https_and_authrep_trusts_the_ca_it_is_given() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&server_key, &ca, &ca_key)
        .unwrap();
    let ca_file = TempFile::new("ca.pem", &ca.pem());
    let cert_file = TempFile::new("server.pem", &server.pem());
    let key_file = TempFile::new("server.key", &server_key.serialize_pem());

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let _child = Child(
        Command::new(BIN)
            .args([
                "emulate",
                "--config",
                &example("emulator.yaml"),
                "--listen",
                &listen,
                "--tls-cert",
                cert_file.path(),
                "--tls-key",
                key_file.path(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("https://{listen}");
    let vars = |ca: Option<&str>| {
        let mut vars = vec![
            ("THREESCALE_BACKEND_URL", url.clone()),
            ("THREESCALE_SERVICE_TOKEN", "demo-service-token".to_string()),
            ("THREESCALE_SERVICE_ID", "2555417777820".to_string()),
            ("THREESCALE_USER_KEY", "demo-user-key".to_string()),
        ];
        if let Some(ca) = ca {
            vars.push(("THREESCALE_TLS_CA_FILE", ca.to_string()));
        }
        vars
    };
    let call = |vars: Vec<(&'static str, String)>| async move {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
        run_env_async(&["authrep"], &vars).await
    };
    // Wait for the emulator (an untrusted answer also proves it listens).
    let mut output = call(vars(Some(ca_file.path()))).await;
    for _ in 0..100 {
        if output.status.code() == Some(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        output = call(vars(Some(ca_file.path()))).await;
    }
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));

    let output = call(vars(None)).await;
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("TLS"), "{}", text(&output));
    assert!(
        text(&output).contains("THREESCALE_TLS_CA_FILE"),
        "{}",
        text(&output)
    );
}
