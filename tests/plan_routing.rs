//! The plan routing of `examples/plan_routing.rs`, against the emulator: the
//! sandbox plan's application reaches the sandbox deployment, the other plan's
//! reaches production, refused callers reach neither.

#[path = "../examples/plan_routing.rs"]
#[allow(dead_code)]
mod example;

use example::{Deployment, app, engine};
use threescale::emulator::{AppRef, Emulator, EmulatorConfig};
use threescale::{AuthContext, CredentialKind};

async fn get(client: &reqwest::Client, url: &str) -> (u16, Option<String>, serde_json::Value) {
    let response = client.get(url).send().await.expect("the API answers");
    let status = response.status().as_u16();
    let deployment = response
        .headers()
        .get("x-deployment")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, deployment, body)
}

#[tokio::test]
async fn each_plan_reaches_its_deployment() {
    let emulator = Emulator::start(EmulatorConfig::from_yaml_str(example::BACKEND).unwrap())
        .await
        .unwrap();
    let threescale = engine(&emulator.url()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let router = app(threescale.clone());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();

    let (status, deployment, body) =
        get(&client, &format!("{api}/orders/17?user_key=sandbox-key")).await;
    assert_eq!(status, 200);
    assert_eq!(deployment.as_deref(), Some("sandbox"));
    assert_eq!(body["deployment"], "sandbox");
    assert_eq!(body["status"], "test order");
    assert_eq!(body["id"], "17");

    let (status, deployment, body) =
        get(&client, &format!("{api}/orders/18?user_key=live-key")).await;
    assert_eq!(status, 200);
    assert_eq!(deployment.as_deref(), Some("production"));
    assert_eq!(body["deployment"], "production");
    assert_eq!(body["status"], "shipped");
    assert_eq!(body["id"], "18");

    // refused by 3scale: no deployment sees the request
    let (status, deployment, _) = get(&client, &format!("{api}/orders/19?user_key=nope")).await;
    assert_eq!(status, 403);
    assert_eq!(deployment, None);
    let (status, deployment, _) = get(&client, &format!("{api}/orders/19")).await;
    assert_eq!(status, 401);
    assert_eq!(deployment, None);

    // allowed, routed, and a path neither deployment has
    let (status, deployment, _) =
        get(&client, &format!("{api}/unknown?user_key=sandbox-key")).await;
    assert_eq!(status, 404);
    assert_eq!(deployment.as_deref(), Some("sandbox"));

    for (key, calls) in [("sandbox-key", 2), ("live-key", 1)] {
        let usage = emulator
            .usage(example::SERVICE_ID, AppRef::user_key(key))
            .unwrap();
        assert_eq!(usage.usage["hits"].eternity, calls, "{key}");
    }
    server.abort();
    threescale.shutdown().await;
    emulator.shutdown().await;
}

fn context(plan: Option<&str>) -> AuthContext {
    let mut context = AuthContext::new(example::SERVICE_ID, CredentialKind::UserKey);
    context.plan = plan.map(Into::into);
    context.usage = threescale::Usage::hits();
    context.matched_rules = vec![0].into();
    context
}

#[test]
fn only_the_exact_sandbox_plan_goes_to_the_sandbox() {
    assert_eq!(
        Deployment::for_caller(&context(Some("sandbox"))),
        Deployment::Sandbox
    );
    for plan in [Some("production"), Some("Sandbox"), Some("sandbox-2"), None] {
        assert_eq!(
            Deployment::for_caller(&context(plan)),
            Deployment::Production,
            "{plan:?}"
        );
    }
}
