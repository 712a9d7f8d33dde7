//! Backend trouble in Sync mode, on both adapters: down, slow past the timeout,
//! 5xx, malformed XML, dropped connections. The failure policy holds, nothing
//! panics, other routes keep working, and usage allowed by the open policy is
//! reported once the backend is back.

mod common;

use std::time::Duration;

use common::{ADAPTERS, Fault, emulator, send, serve, usage};
use threescale::{FailurePolicy, ThreeScale};

fn engine(url: &str, policy: FailurePolicy) -> ThreeScale {
    let config = threescale::Config::builder()
        .backend_url(url)
        .service_token("tok-1001", "1001")
        .rule("GET", "/orders", "orders", 1)
        .bypass_path("/health")
        .failure_policy(policy)
        .timeout(Duration::from_millis(1000))
        .build()
        .unwrap();
    ThreeScale::new(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_closed_is_503_and_open_is_200() {
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = reqwest::Client::new();
    for adapter in ADAPTERS {
        for (policy, status) in [(FailurePolicy::Closed, 503), (FailurePolicy::Open, 200)] {
            let engine = engine(&url, policy);
            let app = serve(adapter, engine.clone());
            let seen = send(
                &client,
                "GET",
                &format!("{}/orders/1?user_key=uk-basic", app.url),
                &[],
            )
            .await;
            assert_eq!(seen.status, status, "{adapter:?} {policy:?}: {seen:?}");
            if status == 503 {
                assert_eq!(seen.body, "Service temporarily unavailable");
            }
            let health = send(&client, "GET", &format!("{}/health", app.url), &[]).await;
            assert_eq!(health.status, 200, "{adapter:?}: other routes keep working");
            assert!(engine.stats().backend_failures >= 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_5xx_malformed_and_dropped_answers_follow_the_policy() {
    let client = reqwest::Client::new();
    for adapter in ADAPTERS {
        for fault in [
            Fault::Latency(Duration::from_millis(2500)),
            Fault::FailShare(1.0),
            Fault::MalformedXml,
            Fault::Drop,
        ] {
            let backend = emulator().await;
            let closed = engine(&backend.url(), FailurePolicy::Closed);
            let open = engine(&backend.url(), FailurePolicy::Open);
            let closed_app = serve(adapter, closed.clone());
            let open_app = serve(adapter, open.clone());
            common::faults(&backend, fault).await;
            let what = format!("{adapter:?} {fault:?}");
            let seen = send(
                &client,
                "GET",
                &format!("{}/orders/1?user_key=uk-basic", closed_app.url),
                &[],
            )
            .await;
            assert_eq!(seen.status, 503, "{what}: {seen:?}");
            let seen = send(
                &client,
                "GET",
                &format!("{}/orders/1?user_key=uk-basic", open_app.url),
                &[],
            )
            .await;
            assert_eq!(seen.status, 200, "{what}: {seen:?}");
            assert_eq!(
                send(&client, "GET", &format!("{}/health", closed_app.url), &[])
                    .await
                    .status,
                200,
                "{what}"
            );
            common::faults(&backend, Fault::Clear).await;
            // The open policy kept the usage; it reaches the backend once.
            open.shutdown().await;
            closed.shutdown().await;
            let counted = usage(&backend, "1001", ("user_key", "uk-basic")).await;
            assert_eq!(
                counted.get("orders").copied(),
                Some(1),
                "{what}: {counted:?}"
            );
            backend.shutdown().await;
        }
    }
}
