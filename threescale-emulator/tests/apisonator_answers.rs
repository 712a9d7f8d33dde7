//! Behaviours measured against the real backend (apisonator 3.4.3 behind puma,
//! through the project's differential suite), pinned here so that they hold on
//! machines without it.

mod common;

use common::{get, get_ext, post, request, start};

const Q: &str = "provider_key=pk1&app_id=app1&app_key=key1";

#[tokio::test]
async fn paths_are_cleaned_before_routing() {
    let h = start().await;
    for path in [
        "//transactions/authorize.xml",
        "/transactions//authorize.xml",
        "/transactions%2Fauthorize.xml",
        "/x/%2e%2e/transactions/authorize.xml",
    ] {
        let r = get(&h, &format!("{path}?{Q}")).await;
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.body.contains("<authorized>true</authorized>"), "{path}");
    }
    assert_eq!(
        get(&h, &format!("/transactions/authorize.xml/x?{Q}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_malformed_options_header_is_a_bare_500() {
    let h = start().await;
    let r = get_ext(&h, &format!("/transactions/authorize.xml?{Q}"), "%%%").await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body, "Internal Server Error\n");
    assert_eq!(r.header("content-type"), None);
    // A well formed one still works.
    let r = get_ext(
        &h,
        &format!("/transactions/authorize.xml?{Q}"),
        "limit_headers=1",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn a_string_usage_in_a_report_is_a_bare_500() {
    let h = start().await;
    let r = common::report(
        &h,
        "provider_key=pk1&service_id=1001&transactions[0][app_id]=app1&transactions[0][usage]=5",
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.body, "Internal Server Error\n");
}

#[tokio::test]
async fn a_query_string_over_10_kib_is_refused_by_the_http_server() {
    let h = start().await;
    let long = format!(
        "/transactions/authorize.xml?{Q}&x={}",
        "a".repeat(10 * 1024)
    );
    let r = get(&h, &long).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, "");
    let under = format!("/transactions/authorize.xml?{Q}&x={}", "a".repeat(9 * 1024));
    assert_eq!(get(&h, &under).await.status, 200);
}

#[tokio::test]
async fn control_characters_in_an_echoed_value_become_the_replacement_character() {
    let h = start().await;
    let r = get(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=a%01b%7Fc",
    )
    .await;
    assert_eq!(r.status, 404);
    assert!(
        r.body
            .contains("application with id=\"a\u{FFFD}b\u{7f}c\" was not found"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn multipart_bodies_without_a_boundary_are_read_as_url_encoded() {
    let h = start().await;
    let body = "provider_key=pk1&service_id=1001&transactions[0][app_id]=app1&transactions[0][usage][hits]=1";
    let r = post(&h, "/transactions.xml", body, Some("multipart/form-data")).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let r = post(
        &h,
        "/transactions.xml",
        "",
        Some("multipart/form-data; boundary=xyz"),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        "Invalid multipart/form-data: Rack::Multipart::EmptyContentError"
    );
}

#[tokio::test]
async fn status_with_a_foreign_referer_is_refused() {
    let h = start().await;
    let with_referer = |value: String| {
        common::client()
            .get(format!("{}/status", h.url()))
            .header("referer", value)
            .send()
    };
    let r = with_referer("https://evil.org/".into())
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(r.text().await.unwrap(), "Forbidden");
    let own = format!("http://{}/page", h.addr());
    let r = with_referer(own).await.expect("request");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(get(&h, "/status").await.status, 200);
}

#[tokio::test]
async fn the_error_log_is_served_at_the_backends_path() {
    let h = start().await;
    for path in [
        "/internal/services/1001/errors/",
        "/internal/services/1001/errors/?per_page=1000",
    ] {
        let r = get(&h, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.body.contains("\"status\":\"found\""),
            "{path}: {}",
            r.body
        );
    }
    // Without the final slash no route matches (after the service check), as
    // apisonator answers; whatever the method.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::DELETE,
        reqwest::Method::POST,
    ] {
        for (path, error) in [
            ("/internal/services/1001/errors", "Not found"),
            ("/internal/services/1001/errors?per_page=1", "Not found"),
            ("/internal/services/nope/errors", "service not found"),
        ] {
            let r = request(&h, method.clone(), path).await;
            assert_eq!(r.status, 404, "{method} {path}");
            assert_eq!(
                r.body,
                format!("{{\"status\":\"not_found\",\"error\":\"{error}\"}}"),
                "{method} {path}"
            );
        }
    }
    let r = request(&h, reqwest::Method::POST, "/internal/services/1001/errors/").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (404, "{\"status\":\"not_found\",\"error\":\"Not found\"}")
    );
}

#[tokio::test]
async fn auth_errors_carry_the_requests_context_info() {
    let h = start().await;
    let client = reqwest::Client::new();
    let url = format!(
        "{}/transactions/authorize.xml?provider_key=pk1&service_id=1002&user_key=x%20y",
        h.url()
    );
    let r = client
        .get(&url)
        .header("user-agent", "probe/1")
        .header("3scale-options", "limit_headers=1&a[b]=2&d")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let r = get(&h, "/internal/services/1002/errors/").await;
    let log: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(log["errors"][0]["code"], "user_key_invalid");
    assert_eq!(
        log["errors"][0]["context_info"],
        serde_json::json!({
            "url": url,
            "method": "GET",
            "form_vars": null,
            "user_agent": "probe/1",
            "ip": "127.0.0.1",
            "content_type": null,
            "content_length": null,
            "extensions": { "limit_headers": "1", "a": { "b": "2" }, "d": null },
        })
    );
}
