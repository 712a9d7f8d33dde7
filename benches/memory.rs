//! Memory under a flood of distinct keys: `cargo bench --bench memory`.
//!
//! Starts the emulator in-process, builds an engine in Cached mode with the
//! default cache settings, and drives `MEMORY_KEYS` (200,000) distinct invalid
//! user keys of `MEMORY_KEY_BYTES` (256, the longest key accepted by default)
//! through `ThreeScale::check`, `MEMORY_CONCURRENCY` (64) at a time. Every key
//! costs one backend call and leaves a negative cache entry behind, so without
//! a byte bound the cache would grow with the keys' total size. Prints the
//! process's resident memory (`VmRSS` of `/proc/self/status`) before and after,
//! its growth, and the cache's own accounting:
//!
//! ```text
//! keys 200000 x 256 B (51.2 MB of keys); cache budget 64.0 MiB
//! denied 200000, backend calls 201001, 18.7 s
//! cache: 61680 entries, 64.0 MiB charged (1088 B per entry)
//! RSS before 9.1 MiB, after 75.4 MiB, growth 66.4 MiB
//! ```
//!
//! Linux only (it reads `/proc`); elsewhere the RSS lines say "unknown".

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use threescale::emulator::{Emulator, EmulatorConfig};
use threescale::{CacheSettings, Config, Decision, Mode, SimpleRequest, ThreeScale};

const BACKEND: &str = r#"
services:
  - id: "9002"
    backend_version: "1"
    service_token: "memory-token"
    metrics: [{ name: hits }]
    plans: [{ name: basic, limits: [{ metric: hits, period: eternity, value: 1000000000 }] }]
    applications: [{ plan: basic, user_key: "memory-valid-key" }]
"#;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident set size in bytes, from `/proc/self/status`.
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn show(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "unknown".to_string(), mib)
}

fn main() {
    let keys: usize = env_or("MEMORY_KEYS", 200_000);
    let key_bytes: usize = env_or("MEMORY_KEY_BYTES", 256);
    let concurrency: usize = env_or("MEMORY_CONCURRENCY", 64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let emulator = Emulator::start(EmulatorConfig::from_yaml_str(BACKEND).expect("config"))
            .await
            .expect("emulator");
        let settings = CacheSettings::default().negative_ttl(Duration::from_secs(3600));
        let config = Config::builder()
            .backend_url(emulator.url())
            .service_token("memory-token", "9002")
            .mode(Mode::Cached(settings))
            .build()
            .expect("config");
        let engine = ThreeScale::new(config).expect("engine");
        // Warm up: connections, the valid application's entry, allocator pools.
        let valid = SimpleRequest::get("/x?user_key=memory-valid-key");
        assert!(matches!(
            engine.check(&valid).await.decision,
            Decision::Allow(_)
        ));
        for i in 0..1_000 {
            let _ = engine
                .check(&SimpleRequest::get(&format!("/x?user_key=warmup-{i}")))
                .await;
        }
        let before = rss();
        let started = Instant::now();
        let denied = futures_util::stream::iter(0..keys)
            .map(|i| {
                let engine = engine.clone();
                async move {
                    let mut key = format!("{i:08}-");
                    key.extend(std::iter::repeat_n(
                        'k',
                        key_bytes.saturating_sub(key.len()),
                    ));
                    let request = SimpleRequest::get(&format!("/x?user_key={key}"));
                    matches!(engine.check(&request).await.decision, Decision::Deny(_))
                }
            })
            .buffer_unordered(concurrency)
            .filter(|denied| std::future::ready(*denied))
            .count()
            .await;
        let elapsed = started.elapsed();
        let after = rss();
        let stats = engine.stats();
        println!(
            "keys {keys} x {key_bytes} B ({:.1} MB of keys); cache budget {}",
            (keys * key_bytes) as f64 / 1e6,
            mib(settings.max_bytes)
        );
        println!(
            "denied {denied}, backend calls {}, {:.1} s",
            stats.backend_calls,
            elapsed.as_secs_f64()
        );
        println!(
            "cache: {} entries, {} charged ({} B per entry)",
            stats.cache_entries,
            mib(stats.cache_bytes),
            stats.cache_bytes / stats.cache_entries.max(1)
        );
        let growth = before.zip(after).map(|(b, a)| a.saturating_sub(b));
        println!(
            "RSS before {}, after {}, growth {}",
            show(before),
            show(after),
            show(growth)
        );
        // The valid application is still served.
        assert!(matches!(
            engine.check(&valid).await.decision,
            Decision::Allow(_)
        ));
        engine.shutdown().await;
    });
}
