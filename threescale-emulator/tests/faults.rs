//! Fault injection on the /transactions endpoints.

mod common;

use std::time::{Duration, Instant};

use common::*;
use threescale_emulator::{AppRef, Faults};

const AUTHREP: &str =
    "/transactions/authrep.xml?provider_key=pk1&app_id=app1&app_key=key1&usage[hits]=1";

fn hits(h: &threescale_emulator::EmulatorHandle) -> i64 {
    h.usage("1001", AppRef::app_id("app1")).unwrap().usage["hits"].day
}

#[tokio::test]
async fn off_by_default_and_cleared() {
    let h = start().await;
    assert!(h.state().faults().is_off());
    h.set_faults(Faults {
        error_every_nth: Some(1),
        ..Faults::default()
    });
    assert_eq!(get(&h, AUTHREP).await.status, 503);
    h.clear_faults();
    assert_eq!(get(&h, AUTHREP).await.status, 200);
}

#[tokio::test]
async fn fixed_and_random_latency() {
    let h = start().await;
    h.set_faults(Faults {
        latency_ms: 150,
        latency_range_ms: Some([10, 20]),
        seed: Some(1),
        ..Faults::default()
    });
    let started = Instant::now();
    let r = get(&h, AUTHREP).await;
    assert_eq!(r.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(160),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(hits(&h), 1);
    // the emulator's own endpoints are never delayed or faulted
    h.set_faults(Faults {
        error_every_nth: Some(1),
        drop_every_nth: Some(1),
        ..Faults::default()
    });
    assert_eq!(get(&h, "/_emulator/stats").await.status, 200);
    assert_eq!(get(&h, "/status").await.status, 200);
}

#[tokio::test]
async fn every_nth_5xx_with_custom_status() {
    let h = start().await;
    h.set_faults(Faults {
        error_every_nth: Some(2),
        error_status: Some(500),
        ..Faults::default()
    });
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(get(&h, AUTHREP).await.status);
    }
    assert_eq!(statuses, vec![200, 500, 200, 500, 200, 500]);
    // faulted requests count as received but change no counter
    assert_eq!(hits(&h), 3);
    assert_eq!(h.stats().authrep, 6);
    // reports too
    let r = report(
        &h,
        "provider_key=pk1&transactions[0][app_id]=app1&transactions[0][usage][hits]=1",
    )
    .await;
    assert_eq!(r.status, 202);
    let r = report(
        &h,
        "provider_key=pk1&transactions[0][app_id]=app1&transactions[0][usage][hits]=1",
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(hits(&h), 4);
}

#[tokio::test]
async fn seeded_shares_are_reproducible() {
    let h = start().await;
    let faults = Faults {
        error_share: 0.5,
        seed: Some(99),
        ..Faults::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        h.set_faults(faults.clone());
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(get(&h, AUTHREP).await.status);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    let errors = runs[0].iter().filter(|s| **s == 503).count();
    assert!((8..=32).contains(&errors), "{errors}");
    h.set_faults(Faults {
        error_share: 1.0,
        ..Faults::default()
    });
    assert_eq!(get(&h, AUTHREP).await.status, 503);
}

#[tokio::test]
async fn malformed_xml_bodies() {
    let h = start().await;
    h.set_faults(Faults {
        malformed_every_nth: Some(1),
        ..Faults::default()
    });
    for _ in 0..3 {
        let r = get(&h, AUTHREP).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some(XML_CT));
        assert!(!r.body.ends_with("</status>"), "{}", r.body);
    }
    assert_eq!(hits(&h), 0);
}

#[tokio::test]
async fn dropped_connections() {
    let h = start().await;
    h.set_faults(Faults {
        drop_every_nth: Some(2),
        ..Faults::default()
    });
    let url = format!("{}{}", h.url(), AUTHREP);
    let first = client().get(&url).send().await;
    assert_eq!(first.unwrap().status(), 200);
    let second = client().get(&url).send().await;
    let err = second.expect_err("the connection is closed without an answer");
    assert!(!err.is_status());
    assert_eq!(hits(&h), 1);
}

#[tokio::test]
async fn faults_over_http() {
    let h = start().await;
    let r = client()
        .post(format!("{}/_emulator/faults", h.url()))
        .body(r#"{"error_every_nth": 1, "error_status": 502}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&h, AUTHREP).await.status, 502);
    let r = get(&h, "/_emulator/faults").await;
    let current: Faults = serde_json::from_str(&r.body).unwrap();
    assert_eq!(current.error_status, Some(502));
    let r = client()
        .post(format!("{}/_emulator/faults", h.url()))
        .body(r#"{"error_share": 2.0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .post(format!("{}/_emulator/faults", h.url()))
        .body(r#"{"unknown": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = request(&h, reqwest::Method::DELETE, "/_emulator/faults").await;
    assert_eq!(r.status, 200);
    assert_eq!(get(&h, AUTHREP).await.status, 200);
}
