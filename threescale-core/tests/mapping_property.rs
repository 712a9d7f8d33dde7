//! The indexed matcher agrees with a straightforward reference: every rule
//! turned into a regex the way APIcast's `regexpify` does (with the `regex`
//! crate), query args read into a table as OpenResty does, all rules tried in
//! order.

use std::collections::HashMap;

use proptest::prelude::*;
use regex::bytes::{Regex, RegexBuilder};
use threescale_core::mapping::normalize_path;
use threescale_core::{MappingRule, MappingRules, Usage};

/// APIcast `regexpify`, step by step with regex replacements.
fn regexpify(pattern: &str) -> String {
    let p = Regex::new(r"//+")
        .unwrap()
        .replace_all(pattern.as_bytes(), &b"/"[..]);
    let p = Regex::new(r"\?.*").unwrap().replace_all(&p, &b""[..]);
    let p = Regex::new(r"\{.+?\}")
        .unwrap()
        .replace_all(&p, &br"([\w\-.~%!$&'()*+,;=@:]+)"[..]);
    let p = Regex::new(r"\.").unwrap().replace_all(&p, &br"\."[..]);
    format!("^{}", String::from_utf8(p.into_owned()).unwrap())
}

enum Arg {
    Bare,
    Value(Vec<u8>),
}

fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len()
                && raw[i + 1].is_ascii_hexdigit()
                && raw[i + 2].is_ascii_hexdigit() =>
            {
                let s = std::str::from_utf8(&raw[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(s, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// `ngx.req.get_uri_args()`: name → values in order; first 100 named args.
fn uri_args(query: &str) -> HashMap<Vec<u8>, Vec<Arg>> {
    let mut table: HashMap<Vec<u8>, Vec<Arg>> = HashMap::new();
    let mut count = 0;
    for piece in query.split('&') {
        let (k, v) = match piece.split_once('=') {
            Some((k, v)) => (k, Arg::Value(unescape(v.as_bytes()))),
            None => (piece, Arg::Bare),
        };
        if k.is_empty() {
            continue;
        }
        if count == 100 {
            break;
        }
        count += 1;
        table.entry(unescape(k.as_bytes())).or_default().push(v);
    }
    table
}

struct RefRule {
    method: String,
    regex: Regex,
    params: Vec<(String, Option<String>)>,
    metric: String,
    delta: i64,
    last: bool,
}

fn reference(
    rules: &[MappingRule],
    method: &str,
    path: &str,
    query: Option<&str>,
) -> (Usage, Vec<usize>) {
    let mut sorted: Vec<&MappingRule> = rules.iter().collect();
    if !sorted.is_empty() && sorted.iter().all(|r| r.position.is_some()) {
        sorted.sort_by_key(|r| r.position);
    }
    let var = Regex::new(r"\{[-\w_]+\}").unwrap();
    let compiled: Vec<RefRule> = sorted
        .iter()
        .map(|r| RefRule {
            method: r.http_method.clone(),
            regex: RegexBuilder::new(&regexpify(&r.pattern))
                .unicode(false)
                .build()
                .unwrap(),
            params: match &r.querystring_parameters {
                Some(map) => map
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect(),
                None => match r.pattern.split_once('?') {
                    None => vec![],
                    Some((_, q)) => {
                        let mut list: Vec<(String, Option<String>)> = Vec::new();
                        for kv in q.split('&').filter(|p| !p.is_empty()) {
                            let (k, v) = match kv.split_once('=') {
                                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                                None => (kv.to_string(), None),
                            };
                            list.retain(|(name, _)| *name != k);
                            list.push((k, v));
                        }
                        list
                    }
                },
            },
            metric: r.metric_system_name.clone(),
            delta: r.delta,
            last: r.last,
        })
        .collect();

    let uri = normalize_path(path);
    let args = uri_args(query.unwrap_or(""));
    let mut totals: Vec<(String, i64)> = Vec::new();
    let mut matched = Vec::new();
    for (i, rule) in compiled.iter().enumerate() {
        let method_ok = rule.method == "ANY" || (!rule.method.is_empty() && rule.method == method);
        if !method_ok || !rule.regex.is_match(uri.as_bytes()) {
            continue;
        }
        let params_ok = rule.params.iter().all(|(name, expected)| {
            let values = args.get(name.as_bytes());
            match expected {
                None => values.is_some(),
                Some(e) if var.is_match(e.as_bytes()) => values.is_some(),
                Some(e) => match values.and_then(|v| v.last()) {
                    Some(Arg::Value(v)) => v == e.as_bytes(),
                    _ => false,
                },
            }
        });
        if !params_ok {
            continue;
        }
        match totals.iter_mut().find(|(m, _)| *m == rule.metric) {
            Some((_, t)) => *t += rule.delta,
            None => totals.push((rule.metric.clone(), rule.delta)),
        }
        matched.push(i);
        if rule.last {
            break;
        }
    }
    let usage = totals
        .into_iter()
        .filter(|(_, t)| *t > 0)
        .map(|(m, t)| (m, t as u64))
        .collect();
    (usage, matched)
}

fn pattern_strategy() -> impl Strategy<Value = String> {
    let segment = prop::sample::select(vec![
        "a",
        "b",
        "ab",
        "{x}",
        "{x}.{y}",
        "a.b",
        "{id}.json",
        "v{n}",
        "",
        "a*",
        "(a|b)",
        "x|y",
        "[ab]+",
        "%20",
        "a+",
        "c$",
        "{a}{b}",
        "{id}-{v}",
        "%C3%A9",
        "A",
    ]);
    let query = prop::sample::select(vec![
        "",
        "?q={v}",
        "?q=1",
        "?q=a+b",
        "?q",
        "?q=&r={r}",
        "?r=2&q=1",
    ]);
    (
        prop::collection::vec(segment, 1..4),
        any::<bool>(),
        any::<bool>(),
        query,
    )
        .prop_map(|(segs, dollar, double, query)| {
            let sep = if double { "//" } else { "/" };
            let mut p = String::from("/");
            p.push_str(&segs.join(sep));
            if dollar {
                p.push('$');
            }
            p.push_str(query);
            p
        })
}

fn rule_strategy() -> impl Strategy<Value = MappingRule> {
    (
        prop::sample::select(vec!["GET", "POST", "ANY", "HEAD", ""]),
        pattern_strategy(),
        prop::sample::select(vec!["hits", "orders", "x"]),
        -1i64..4,
        prop::bool::weighted(0.15),
        prop::option::weighted(0.5, -3i64..5),
        prop::option::weighted(
            0.1,
            prop::sample::select(vec![("q", "1"), ("q", "{v}"), ("r", "a b")]),
        ),
    )
        .prop_map(|(method, pattern, metric, delta, last, position, params)| {
            let mut rule = MappingRule::new(method, pattern, metric, delta).last(last);
            rule.position = position;
            if let Some((k, v)) = params {
                rule = rule.querystring_parameters([(k, v)]);
            }
            rule
        })
}

fn path_strategy() -> impl Strategy<Value = String> {
    let segment = prop::sample::select(vec![
        "a", "b", "ab", "a.b", "x.json", "1.json", "v1", "", ".", "..", "%2F", "%20", "%2e",
        "a%2Fb", "[", "A", "aab", "%zz", "c", "x", "y", "%c3%a9", "1-2", "ab.json", "a+",
    ]);
    (prop::collection::vec(segment, 0..5), any::<bool>()).prop_map(|(segs, trailing)| {
        let mut p = String::from("/");
        p.push_str(&segs.join("/"));
        if trailing {
            p.push('/');
        }
        p
    })
}

fn query_strategy() -> impl Strategy<Value = Option<String>> {
    let arg = prop::sample::select(vec![
        "q=1", "q=a+b", "q", "q=", "q=%31", "r=2", "q=a%2Bb", "r=a+b", "", "q=2",
    ]);
    prop::option::of(prop::collection::vec(arg, 0..4).prop_map(|v| v.join("&")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn indexed_matcher_equals_reference(
        rules in prop::collection::vec(rule_strategy(), 0..12),
        method in prop::sample::select(vec!["GET", "POST", "HEAD", "PUT"]),
        path in path_strategy(),
        query in query_strategy(),
    ) {
        let compiled = MappingRules::new(rules.clone()).unwrap();
        let got = compiled.matches(method, &path, query.as_deref());
        let (usage, matched) = reference(&rules, method, &path, query.as_deref());
        prop_assert_eq!(&got.usage, &usage, "path {} query {:?}", path, query);
        prop_assert_eq!(&got.rules, &matched);
    }
}
