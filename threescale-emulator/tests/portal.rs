//! The emulated admin portal: the proxy configuration JSON, its access control, the
//! run-time switch that changes the rules, and the portal's own faults.

use base64::Engine;
use serde_json::{Value, json};
use threescale_emulator::{
    Emulator, EmulatorConfig, EmulatorHandle, Faults, MappingRuleConfig, ProxyConfig,
};

const CONFIG: &str = r#"
admin_access_token: "admin-secret"
services:
  - id: "42"
    backend_version: "1"
    service_token: "tok-42"
    provider_key: "pk"
    system_name: echo
    metrics:
      - { name: hits }
      - { name: encodes, parent: hits }
      - { name: orders, parent: hits }
    plans:
      - { name: basic, limits: [{ metric: hits, period: minute, value: 100 }] }
    applications:
      - { plan: basic, user_key: "uk" }
    proxy:
      credentials_location: headers
      auth_user_key: x-api-key
      error_auth_failed: "go away"
      error_status_auth_failed: 402
      error_headers_no_match: "application/json"
      hosts: ["api.example.com"]
      api_backend: "http://upstream:8080"
      mapping_rules:
        - { http_method: GET, pattern: "/", metric_system_name: hits }
        - { http_method: GET, pattern: "/{env}/video/encode?size={size}&speed=2x", metric_system_name: encodes, delta: 2, last: true }
        - { method: POST, pattern: "/orders/{id}/items/{item}$", metric: orders, delta: 3 }
  - id: "svc-b"
    backend_version: "2"
    provider_key: "pk-b"
    admin_access_token: "b-only"
    metrics: [{ name: hits }]
  - id: "77"
    backend_version: oauth
    service_tokens: ["tok-77a", "tok-77b"]
"#;

async fn start() -> EmulatorHandle {
    Emulator::start(EmulatorConfig::from_yaml_str(CONFIG).expect("valid config"))
        .await
        .expect("emulator starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

fn latest(h: &EmulatorHandle, id: &str, env: &str) -> String {
    format!(
        "{}/admin/api/services/{id}/proxy/configs/{env}/latest.json",
        h.url()
    )
}

/// GET with `?access_token=`; status and parsed JSON (Null when not JSON).
async fn get_json(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.query(&[("access_token", token)]);
    }
    let response = request.send().await.expect("portal answers");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn serves_the_proxy_config_like_the_admin_portal() {
    let h = start().await;
    let response = client()
        .get(latest(&h, "42", "production"))
        .query(&[("access_token", "admin-secret")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    let config = &body["proxy_config"];
    assert_eq!(config["version"], 1);
    assert_eq!(config["environment"], "production");
    assert!(config["id"].is_u64());
    let service = &config["content"];
    assert_eq!(service["id"], json!(42), "numeric ids are numbers");
    assert_eq!(service["system_name"], "echo");
    assert_eq!(service["backend_version"], "1");
    assert_eq!(service["backend_authentication_type"], "service_token");
    assert_eq!(service["backend_authentication_value"], "tok-42");
    let proxy = &service["proxy"];
    assert_eq!(proxy["backend"]["endpoint"], h.url());
    assert_eq!(proxy["backend"]["host"], "127.0.0.1");
    assert_eq!(proxy["hosts"], json!(["api.example.com"]));
    assert_eq!(proxy["api_backend"], "http://upstream:8080");
    assert_eq!(proxy["credentials_location"], "headers");
    assert_eq!(proxy["auth_user_key"], "x-api-key");
    assert_eq!(proxy["auth_app_id"], "app_id");
    assert_eq!(proxy["auth_app_key"], "app_key");
    // configured
    assert_eq!(proxy["error_auth_failed"], "go away");
    assert_eq!(proxy["error_status_auth_failed"], 402);
    assert_eq!(proxy["error_headers_no_match"], "application/json");
    // defaults of the gateway
    assert_eq!(
        proxy["error_headers_auth_failed"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        proxy["error_auth_missing"],
        "Authentication parameters missing"
    );
    assert_eq!(proxy["error_status_auth_missing"], 401);
    assert_eq!(proxy["error_limits_exceeded"], "Limits exceeded");
    assert_eq!(proxy["error_status_limits_exceeded"], 429);
    assert_eq!(proxy["error_no_match"], "No Mapping Rule matched");
    assert_eq!(proxy["error_status_no_match"], 404);

    let rules = proxy["proxy_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0]["http_method"], "GET");
    assert_eq!(rules[0]["pattern"], "/");
    assert_eq!(rules[0]["metric_system_name"], "hits");
    assert_eq!(rules[0]["delta"], 1);
    assert_eq!(rules[0]["last"], false);
    assert_eq!(rules[0]["position"], 1);
    assert_eq!(rules[0]["parameters"], json!([]));
    assert_eq!(rules[0]["querystring_parameters"], json!({}));
    assert_eq!(
        rules[1]["pattern"],
        "/{env}/video/encode?size={size}&speed=2x"
    );
    assert_eq!(rules[1]["delta"], 2);
    assert_eq!(rules[1]["last"], true);
    assert_eq!(rules[1]["position"], 2);
    assert_eq!(rules[1]["parameters"], json!(["env"]));
    assert_eq!(
        rules[1]["querystring_parameters"],
        json!({ "size": "{size}", "speed": "2x" })
    );
    assert_eq!(rules[2]["http_method"], "POST");
    assert_eq!(rules[2]["metric_system_name"], "orders");
    assert_eq!(rules[2]["delta"], 3);
    assert_eq!(rules[2]["parameters"], json!(["id", "item"]));
    let ids: Vec<&Value> = rules.iter().map(|r| &r["id"]).collect();
    assert!(ids.iter().all(|id| id.is_u64()));
    assert_ne!(ids[0], ids[1]);
    h.shutdown().await;
}

#[tokio::test]
async fn defaults_without_a_proxy_section() {
    let h = start().await;
    let (status, body) = get_json(&latest(&h, "svc-b", "staging"), Some("admin-secret")).await;
    assert_eq!(status, 200);
    assert_eq!(body["proxy_config"]["environment"], "staging");
    let service = &body["proxy_config"]["content"];
    assert_eq!(service["id"], "svc-b", "non-numeric ids stay strings");
    assert_eq!(service["system_name"], "service_svc-b");
    assert_eq!(service["backend_version"], "2");
    assert_eq!(service["backend_authentication_type"], "provider_key");
    assert_eq!(service["backend_authentication_value"], "pk-b");
    let proxy = &service["proxy"];
    assert_eq!(proxy["credentials_location"], "query");
    assert_eq!(proxy["auth_user_key"], "user_key");
    assert!(proxy.get("hosts").is_none());
    for (kind, body, status) in [
        ("auth_failed", "Authentication failed", 403),
        ("auth_missing", "Authentication parameters missing", 401),
        ("limits_exceeded", "Limits exceeded", 429),
        ("no_match", "No Mapping Rule matched", 404),
    ] {
        assert_eq!(proxy[format!("error_{kind}")], body);
        assert_eq!(proxy[format!("error_status_{kind}")], status);
        assert_eq!(
            proxy[format!("error_headers_{kind}")],
            "text/plain; charset=utf-8"
        );
    }
    let rules = proxy["proxy_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["http_method"], "GET");
    assert_eq!(rules[0]["pattern"], "/");
    assert_eq!(rules[0]["metric_system_name"], "hits");
    assert_eq!(rules[0]["delta"], 1);

    // the first of several service tokens authenticates
    let (_, body) = get_json(&latest(&h, "77", "production"), Some("admin-secret")).await;
    let service = &body["proxy_config"]["content"];
    assert_eq!(service["backend_version"], "oauth");
    assert_eq!(service["backend_authentication_type"], "service_token");
    assert_eq!(service["backend_authentication_value"], "tok-77a");
    h.shutdown().await;
}

#[tokio::test]
async fn access_token_in_the_query_or_basic_auth() {
    let h = start().await;
    let url = latest(&h, "42", "production");
    let basic = |user: &str, password: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let with_header = |value: String| {
        let url = url.clone();
        async move {
            let r = client()
                .get(url)
                .header("authorization", value)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (status, serde_json::from_str(&text).unwrap_or(Value::Null))
        }
    };
    // as the project's Portal client sends it: the token as user, empty password
    assert_eq!(with_header(basic("admin-secret", "")).await.0, 200);
    assert_eq!(with_header(basic("", "admin-secret")).await.0, 200);
    assert_eq!(with_header(basic("admin-secret", "x")).await.0, 200);
    assert_eq!(get_json(&url, Some("admin-secret")).await.0, 200);

    for (status, body) in [
        get_json(&url, None).await,
        get_json(&url, Some("wrong")).await,
        with_header(basic("wrong", "")).await,
        with_header("Bearer admin-secret".to_string()).await,
        with_header("Basic !!!not-base64".to_string()).await,
    ] {
        assert_eq!(status, 403);
        assert_eq!(body, json!({ "error": "Access denied" }));
    }

    // a service's own token reads that service only
    let b = latest(&h, "svc-b", "production");
    assert_eq!(get_json(&b, Some("b-only")).await.0, 200);
    assert_eq!(get_json(&url, Some("b-only")).await.0, 403);
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_service_or_environment_is_404() {
    let h = start().await;
    for url in [latest(&h, "999", "production"), latest(&h, "42", "sandbox")] {
        let (status, body) = get_json(&url, Some("admin-secret")).await;
        assert_eq!(status, 404, "{url}");
        assert_eq!(body, json!({ "status": "Not found" }));
    }
    // without a valid token nothing is revealed
    assert_eq!(
        get_json(&latest(&h, "999", "production"), Some("nope"))
            .await
            .0,
        403
    );
    h.shutdown().await;
}

#[tokio::test]
async fn services_list_shows_what_the_token_reads() {
    let h = start().await;
    let url = format!("{}/admin/api/services.json", h.url());
    let (status, body) = get_json(&url, Some("admin-secret")).await;
    assert_eq!(status, 200);
    let ids: Vec<&Value> = body["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["service"]["id"])
        .collect();
    assert_eq!(ids, [&json!(42), &json!("svc-b"), &json!(77)]);
    let (status, body) = get_json(&url, Some("b-only")).await;
    assert_eq!(status, 200);
    assert_eq!(body["services"].as_array().unwrap().len(), 1);
    assert_eq!(
        body["services"][0]["service"]["system_name"],
        "service_svc-b"
    );
    assert_eq!(get_json(&url, Some("bad")).await.0, 403);
    h.shutdown().await;
}

#[tokio::test]
async fn switch_replaces_the_rules_and_bumps_the_version() {
    let h = start().await;
    let url = latest(&h, "42", "production");
    let (_, before) = get_json(&url, Some("admin-secret")).await;
    let before_id = before["proxy_config"]["id"].clone();

    // over HTTP
    let response = client()
        .put(format!("{}/_emulator/proxy_rules?service_id=42", h.url()))
        .body(r#"[{"http_method":"GET","pattern":"/v2/orders?page={p}","metric_system_name":"orders","delta":5,"last":true}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(answer, json!({ "service_id": "42", "version": 2 }));
    let (_, after) = get_json(&url, Some("admin-secret")).await;
    assert_eq!(after["proxy_config"]["version"], 2);
    assert_ne!(after["proxy_config"]["id"], before_id);
    let proxy = &after["proxy_config"]["content"]["proxy"];
    let rules = proxy["proxy_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["pattern"], "/v2/orders?page={p}");
    assert_eq!(rules[0]["delta"], 5);
    assert_eq!(rules[0]["last"], true);
    assert_eq!(rules[0]["querystring_parameters"], json!({ "page": "{p}" }));
    // the other proxy settings stay
    assert_eq!(proxy["credentials_location"], "headers");
    assert_eq!(proxy["error_auth_failed"], "go away");

    let (status, shown) = get_json(
        &format!("{}/_emulator/proxy_rules?service_id=42", h.url()),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(shown["version"], 2);
    assert_eq!(shown["mapping_rules"][0]["metric_system_name"], "orders");

    // from Rust
    let version = h
        .set_proxy_rules(
            "42",
            vec![
                MappingRuleConfig::new("GET", "/a", "hits", 1),
                MappingRuleConfig::new("DELETE", "/b/{id}$", "orders", 1).last(true),
            ],
        )
        .unwrap();
    assert_eq!(version, 3);
    assert_eq!(h.proxy_config_version("42"), Some(3));
    let (_, now) = get_json(&url, Some("admin-secret")).await;
    assert_eq!(now["proxy_config"]["version"], 3);
    let rules = now["proxy_config"]["content"]["proxy"]["proxy_rules"]
        .as_array()
        .unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1]["http_method"], "DELETE");
    assert_eq!(rules[1]["position"], 2);

    // the whole proxy section
    let version = h
        .set_proxy(
            "42",
            ProxyConfig {
                error_status_no_match: Some(412),
                ..ProxyConfig::default()
            },
        )
        .unwrap();
    assert_eq!(version, 4);
    let (_, now) = get_json(&url, Some("admin-secret")).await;
    let proxy = &now["proxy_config"]["content"]["proxy"];
    assert_eq!(proxy["error_status_no_match"], 412);
    assert_eq!(proxy["credentials_location"], "query");
    assert_eq!(proxy["proxy_rules"].as_array().unwrap().len(), 1);

    // other services are untouched
    assert_eq!(h.proxy_config_version("svc-b"), Some(1));
    h.shutdown().await;
}

#[tokio::test]
async fn switch_refuses_what_the_portal_refuses() {
    let h = start().await;
    let put = |query: &'static str, body: &'static str| {
        let url = format!("{}/_emulator/proxy_rules{query}", h.url());
        async move {
            client()
                .put(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let rule = r#"[{"http_method":"GET","pattern":"/","metric_system_name":"hits"}]"#;
    assert_eq!(put("?service_id=999", rule).await, 404);
    assert_eq!(put("", rule).await, 400);
    assert_eq!(put("?service_id=42", "not json").await, 400);
    for bad in [
        r#"[{"http_method":"FETCH","pattern":"/","metric_system_name":"hits"}]"#,
        r#"[{"http_method":"GET","pattern":"no-slash","metric_system_name":"hits"}]"#,
        r#"[{"http_method":"GET","pattern":"/","metric_system_name":"nope"}]"#,
        r#"[{"http_method":"GET","pattern":"/","metric_system_name":"hits","delta":0}]"#,
    ] {
        assert_eq!(put("?service_id=42", bad).await, 400, "{bad}");
    }
    assert_eq!(h.proxy_config_version("42"), Some(1));
    assert!(
        h.set_proxy_rules("42", vec![MappingRuleConfig::new("GET", "/", "nope", 1)])
            .is_err()
    );
    assert!(h.set_proxy_rules("999", Vec::new()).is_err());
    assert_eq!(h.proxy_config_version("42"), Some(1));
    h.shutdown().await;
}

#[test]
fn config_with_a_bad_proxy_section_is_refused() {
    for (proxy, needle) in [
        (
            "{ mapping_rules: [{ http_method: GET, pattern: /, metric_system_name: nope }] }",
            "nope",
        ),
        (
            "{ mapping_rules: [{ http_method: ANY, pattern: /, metric_system_name: hits }] }",
            "ANY",
        ),
        ("{ credentials_location: cookie }", "cookie"),
        ("{ error_status_no_match: 1000 }", "1000"),
    ] {
        let yaml = format!(
            "services: [{{ id: '1', provider_key: pk, metrics: [{{ name: hits }}], proxy: {proxy} }}]"
        );
        let err = EmulatorConfig::from_yaml_str(&yaml)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    }
    let err = EmulatorConfig::from_yaml_str(
        "services: [{ id: '1', provider_key: pk, proxy: { typo_field: 1 } }]",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("typo_field"), "{err}");
}

const AUTHREP: &str =
    "/transactions/authrep.xml?service_token=tok-42&service_id=42&user_key=uk&usage%5Bhits%5D=1";

#[tokio::test]
async fn portal_faults_leave_the_backend_alone() {
    let h = start().await;
    let url = latest(&h, "42", "production");
    h.set_portal_faults(Faults {
        error_every_nth: Some(1),
        error_status: Some(502),
        ..Faults::default()
    });
    assert_eq!(h.state().portal_faults().error_status, Some(502));
    assert_eq!(get_json(&url, Some("admin-secret")).await.0, 502);
    let backend = client()
        .get(format!("{}{AUTHREP}", h.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(backend.status(), 200);
    h.clear_portal_faults();
    assert_eq!(get_json(&url, Some("admin-secret")).await.0, 200);

    // and the backend's faults leave the portal alone
    h.set_faults(Faults {
        error_every_nth: Some(1),
        ..Faults::default()
    });
    assert_eq!(get_json(&url, Some("admin-secret")).await.0, 200);
    let backend = client()
        .get(format!("{}{AUTHREP}", h.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(backend.status(), 503);
    h.shutdown().await;
}

#[tokio::test]
async fn portal_can_serve_invalid_json_or_drop_the_connection() {
    let h = start().await;
    let url = latest(&h, "42", "production");
    h.set_portal_faults(Faults {
        malformed_every_nth: Some(1),
        ..Faults::default()
    });
    for _ in 0..2 {
        let response = client()
            .get(&url)
            .query(&[("access_token", "admin-secret")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        assert!(
            serde_json::from_str::<Value>(&text).is_err(),
            "expected invalid JSON, got {text}"
        );
    }
    h.set_portal_faults(Faults {
        drop_every_nth: Some(1),
        ..Faults::default()
    });
    let dropped = client()
        .get(&url)
        .query(&[("access_token", "admin-secret")])
        .send()
        .await;
    let failed = match dropped {
        Err(_) => true,
        Ok(response) => response.text().await.is_err(),
    };
    assert!(failed, "the connection should have been dropped");
    h.shutdown().await;
}

#[tokio::test]
async fn portal_faults_over_http() {
    let h = start().await;
    let faults_url = format!("{}/_emulator/portal_faults", h.url());
    let set = client()
        .post(&faults_url)
        .body(r#"{"error_every_nth":1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let (status, shown) = get_json(&faults_url, None).await;
    assert_eq!(status, 200);
    assert_eq!(shown["error_every_nth"], 1);
    let url = latest(&h, "42", "production");
    assert_eq!(get_json(&url, Some("admin-secret")).await.0, 503);
    let bad = client()
        .post(&faults_url)
        .body(r#"{"error_share":2.0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let cleared = client().delete(&faults_url).send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(get_json(&url, Some("admin-secret")).await.0, 200);
    assert!(h.state().faults().is_off());
    h.shutdown().await;
}

#[tokio::test]
async fn portal_endpoint_carries_the_token() {
    let h = start().await;
    assert_eq!(
        h.portal_endpoint("admin-secret"),
        format!("http://admin-secret@{}", h.addr())
    );
    assert_eq!(
        h.portal_endpoint("a@b:c"),
        format!("http://a%40b%3Ac@{}", h.addr())
    );
}

#[tokio::test]
async fn the_demo_config_serves_its_rules() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/emulator.yaml");
    let h = Emulator::start(EmulatorConfig::from_file(path).expect("demo config is valid"))
        .await
        .unwrap();
    let (status, body) = get_json(
        &latest(&h, "2555417777820", "production"),
        Some("demo-admin-token"),
    )
    .await;
    assert_eq!(status, 200);
    let service = &body["proxy_config"]["content"];
    assert_eq!(service["system_name"], "demo");
    assert_eq!(
        service["backend_authentication_value"],
        "demo-service-token"
    );
    let patterns: Vec<&Value> = service["proxy"]["proxy_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["pattern"])
        .collect();
    assert_eq!(patterns, [&json!("/orders"), &json!("/status$")]);
    h.shutdown().await;
}
