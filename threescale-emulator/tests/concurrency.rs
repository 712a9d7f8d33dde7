//! Counters stay exact under concurrent requests: the limit check and the increment of
//! an authrep are atomic, reports lose nothing.

mod common;

use common::*;
use threescale_emulator::{
    AppRef, ApplicationConfig, EmulatedService, EmulatorConfig, LimitPeriod, PlanConfig,
};

fn config() -> EmulatorConfig {
    EmulatorConfig::builder()
        .service(
            EmulatedService::new("77")
                .provider_key("pk")
                .metric("hits")
                .child_metric("orders", "hits")
                .plan(
                    PlanConfig::new("p")
                        .limit("hits", LimitPeriod::Minute, 100)
                        .limit("orders", LimitPeriod::Day, 1_000_000),
                )
                .application(ApplicationConfig::with_app_id("p", "a"))
                .application(ApplicationConfig::with_app_id("p", "r")),
        )
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_authreps_end_exactly_at_the_limit() {
    let h = start_with(config()).await;
    let url = format!(
        "{}/transactions/authrep.xml?provider_key=pk&app_id=a&usage[orders]=1",
        h.url()
    );
    let client = client();
    let tasks: Vec<_> = (0..300)
        .map(|_| {
            let client = client.clone();
            let url = url.clone();
            tokio::spawn(async move { client.get(&url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut ok = 0;
    let mut denied = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            409 => denied += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, denied), (100, 200));
    let u = h.usage("77", AppRef::app_id("a")).unwrap();
    assert_eq!(u.usage["hits"].minute, 100);
    assert_eq!(u.usage["orders"].day, 100);
    assert_eq!(h.stats().authrep, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reports_lose_nothing() {
    let h = start_with(config()).await;
    let client = client();
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let client = client.clone();
            let url = format!("{}/transactions.xml", h.url());
            let mut body = String::from("provider_key=pk");
            for i in 0..50 {
                body.push_str(&format!(
                    "&transactions[{i}][app_id]=r&transactions[{i}][usage][orders]=2"
                ));
            }
            tokio::spawn(async move {
                client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 202);
    }
    let u = h.usage("77", AppRef::app_id("r")).unwrap();
    assert_eq!(u.usage["orders"].eternity, 4000);
    assert_eq!(u.usage["hits"].minute, 4000);
    let s = h.stats();
    assert_eq!(
        (s.report, s.transactions, s.transactions_applied),
        (40, 2000, 2000)
    );
}
