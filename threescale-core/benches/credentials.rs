//! Finding credentials in a request: `user_key` and `app_id` + `app_key` in
//! the query and in headers, and `Authorization: Basic`, in a request that
//! carries the headers a browser or SDK usually sends.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use threescale_core::{BackendVersion, CredentialsConfig, CredentialsLocation, SimpleRequest};

/// A GET with typical headers, plus `extra`.
fn request(uri: &str, extra: &[(&str, &str)]) -> SimpleRequest {
    let mut req = SimpleRequest::get(uri)
        .header("host", "api.example.com")
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101",
        )
        .header("accept", "application/json")
        .header("accept-encoding", "gzip, deflate, br")
        .header("accept-language", "en-US,en;q=0.5")
        .header("connection", "keep-alive")
        .header("x-request-id", "7f3c2a9e-4b1d-4c2e-9f0a-1b2c3d4e5f60");
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    req
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("credentials");
    let query = CredentialsConfig::new(CredentialsLocation::Query);
    let headers = CredentialsConfig::new(CredentialsLocation::Headers);
    let authorization = CredentialsConfig::new(CredentialsLocation::Authorization);

    let cases: [(&str, &CredentialsConfig, BackendVersion, SimpleRequest); 5] = [
        (
            "user_key/query",
            &query,
            BackendVersion::UserKey,
            request(
                "/v1/orders/42?fields=id,total&user_key=3c8e9f2a1b7d4e6f8a9b0c1d2e3f4a5b&page=2",
                &[],
            ),
        ),
        (
            "user_key/headers",
            &headers,
            BackendVersion::UserKey,
            request(
                "/v1/orders/42",
                &[("user-key", "3c8e9f2a1b7d4e6f8a9b0c1d2e3f4a5b")],
            ),
        ),
        (
            "app_id/query",
            &query,
            BackendVersion::AppId,
            request(
                "/v1/orders/42?app_id=b2c4e6f8&app_key=0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                &[],
            ),
        ),
        (
            "app_id/headers",
            &headers,
            BackendVersion::AppId,
            request(
                "/v1/orders/42",
                &[
                    ("app_id", "b2c4e6f8"),
                    ("app_key", "0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
                ],
            ),
        ),
        (
            "app_id/authorization_basic",
            &authorization,
            BackendVersion::AppId,
            request(
                "/v1/orders/42",
                // base64("b2c4e6f8:0a1b2c3d4e5f60718293a4b5c6d7e8f9")
                &[(
                    "authorization",
                    "Basic YjJjNGU2Zjg6MGExYjJjM2Q0ZTVmNjA3MTgyOTNhNGI1YzZkN2U4Zjk=",
                )],
            ),
        ),
    ];
    for (name, config, version, req) in &cases {
        assert!(config.extract(*version, req).is_some(), "{name}");
        group.bench_function(*name, |b| {
            b.iter(|| config.extract(black_box(*version), black_box(req)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
