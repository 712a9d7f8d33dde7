//! Honest loading: the policy-chain entries of a proxy config that the engine
//! does not act on are named in one warning at load time, never skipped
//! silently; the ones it acts on (batcher, caching, referrer) take effect.

use std::io::Write;
use std::sync::{Arc, Mutex};

use threescale_core::{Config, Mode};

/// Every line the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a subscriber that captures WARN and above; returns the log.
fn captured<T>(f: impl FnOnce() -> T) -> (T, String) {
    let sink = Captured::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let value = tracing::subscriber::with_default(subscriber, f);
    (value, sink.text())
}

fn proxy_config(chain: &str) -> String {
    format!(
        r#"{{"proxy_config": {{"content": {{
            "id": 42, "backend_version": "1",
            "backend_authentication_type": "service_token",
            "backend_authentication_value": "token-value",
            "proxy": {{"policy_chain": {chain}}}
        }}}}}}"#
    )
}

#[test]
fn policies_not_acted_on_are_named_in_one_warning() {
    let json = proxy_config(
        r#"[
        {"name": "apicast.policy.cors", "configuration": {}},
        {"name": "apicast.policy.headers", "configuration": {"request": []}},
        {"name": "apicast.policy.3scale_batcher", "configuration": {"auths_ttl": 30}},
        {"name": "apicast.policy.url_rewriting"},
        {"name": "apicast.policy.apicast"}
    ]"#,
    );
    let (config, log) = captured(|| Config::from_proxy_config(&json));
    let config = config.unwrap();
    assert!(matches!(config.mode, Mode::Cached(s) if s.ttl.as_secs() == 30));
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "one warning, not one per policy: {log}");
    let warning = warnings[0];
    for name in [
        "apicast.policy.cors",
        "apicast.policy.headers",
        "apicast.policy.url_rewriting",
    ] {
        assert!(warning.contains(name), "{name} named: {warning}");
    }
    let ignored = warning.split("ignored=").nth(1).expect("the ignored field");
    assert_eq!(
        ignored.trim(),
        "apicast.policy.cors, apicast.policy.headers, apicast.policy.url_rewriting",
        "the applied ones are not named"
    );
    assert!(
        warning.contains("service_id=\"42\"") || warning.contains("service_id=42"),
        "{warning}"
    );
    assert!(
        !warning.contains("token-value"),
        "no secret in the log: {warning}"
    );
}

#[test]
fn a_chain_of_applied_policies_warns_about_nothing() {
    let json = proxy_config(
        r#"[
        {"name": "apicast.policy.3scale_batcher", "configuration": {}},
        {"name": "apicast.policy.caching", "configuration": {"caching_type": "strict"}},
        {"name": "apicast.policy.3scale_referrer"},
        {"name": "apicast.policy.apicast"}
    ]"#,
    );
    let (config, log) = captured(|| Config::from_proxy_config(&json));
    let config = config.unwrap();
    assert!(log.is_empty(), "{log}");
    assert_eq!(
        config.service.referrer_header.as_ref().map(|h| h.as_str()),
        Some("referer"),
        "the referrer policy sends the Referer header"
    );
}

#[test]
fn caching_without_the_batcher_is_named_too() {
    let json = proxy_config(
        r#"[{"name": "apicast.policy.caching", "configuration": {"caching_type": "allow"}},
            {"configuration": {}}]"#,
    );
    let (config, log) = captured(|| Config::from_proxy_config(&json));
    assert!(matches!(config.unwrap().mode, Mode::Sync));
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.contains("apicast.policy.caching (without apicast.policy.3scale_batcher)"),
        "{log}"
    );
    assert!(log.contains("policy_chain[1] (no name)"), "{log}");
    assert!(config_without_referrer_policy_sends_none());
}

fn config_without_referrer_policy_sends_none() -> bool {
    let json = proxy_config("[]");
    Config::from_proxy_config(&json)
        .unwrap()
        .service
        .referrer_header
        .is_none()
}
