//! Mapping-rule matching at 10, 100, 1,000 and 10,000 rules.
//!
//! The rules look like an admin portal's: a few hundred resources, each with
//! the usual CRUD rules (`GET /v1/products/{id}$`, `POST /v1/products`, ...),
//! some with query conditions, and a catch-all `ANY /` counting `hits`. Every
//! request matches the catch-all and, for `hit`, one specific rule too; `miss`
//! matches only the catch-all (an unknown resource). Target: the cost at 1,000
//! rules at most 3x the cost at 10.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use threescale_core::{MappingRule, MappingRules, MatchResult};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];

/// `n` rules: `ANY /` first, then CRUD rules per resource until `n`.
fn rules(n: usize) -> Vec<MappingRule> {
    let mut out = vec![MappingRule::new("ANY", "/", "hits", 1)];
    let mut resource = 0;
    while out.len() < n {
        let r = format!("/v{}/resource{resource}", resource % 3 + 1);
        let metric = format!("resource{resource}");
        let templates = [
            ("GET", format!("{r}$")),
            ("GET", format!("{r}/{{id}}$")),
            ("POST", r.clone()),
            ("PUT", format!("{r}/{{id}}")),
            ("DELETE", format!("{r}/{{id}}")),
            ("GET", format!("{r}/search?q={{q}}&page={{page}}")),
            ("GET", format!("{r}/{{id}}/items/{{item}}.json")),
        ];
        for (method, pattern) in templates {
            if out.len() == n {
                break;
            }
            out.push(MappingRule::new(method, pattern, metric.as_str(), 1));
        }
        resource += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("mapping");
    for n in SIZES {
        let set = MappingRules::new(rules(n)).expect("rules compile");
        // A resource in the middle of the rule set (the first one at n = 10).
        let resource = (n / 7) / 2;
        let hit_path = format!(
            "/v{}/resource{resource}/1234/items/77.json",
            resource % 3 + 1
        );
        let hit_query = "user_key=0123456789abcdef&fields=name,price";
        let mut out = MatchResult::default();
        set.match_into("GET", &hit_path, Some(hit_query), &mut out);
        assert_eq!(out.rules.len(), 2, "n={n}: catch-all and one rule");
        set.match_into("GET", "/v9/unknown/1", Some(hit_query), &mut out);
        assert_eq!(out.rules.len(), 1, "n={n}: catch-all only");

        group.bench_with_input(BenchmarkId::new("hit", n), &n, |b, _| {
            b.iter(|| {
                set.match_into(
                    black_box("GET"),
                    black_box(&hit_path),
                    black_box(Some(hit_query)),
                    &mut out,
                );
                black_box(out.rules.len())
            })
        });
        group.bench_with_input(BenchmarkId::new("miss", n), &n, |b, _| {
            b.iter(|| {
                set.match_into(
                    black_box("GET"),
                    black_box("/v9/unknown/1"),
                    black_box(Some(hit_query)),
                    &mut out,
                );
                black_box(out.rules.len())
            })
        });
        // The engine's path: a fresh result per request.
        group.bench_with_input(BenchmarkId::new("hit_alloc", n), &n, |b, _| {
            b.iter(|| {
                set.matches(
                    black_box("GET"),
                    black_box(&hit_path),
                    black_box(Some(hit_query)),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
