//! 3scale mapping rules with the gateway's (APIcast's) semantics.
//!
//! A request (method, raw path, raw query) is matched against every rule;
//! each matching rule adds its `delta` to its metric.
//!
//! - **Path.** The pattern loses runs of `/` and everything from its first `?`;
//!   each `{name}` matches one or more of `[A-Za-z0-9_\-.~%!$&'()*+,;=@:]` (never
//!   `/`); `.` is literal; the match is case-sensitive and anchored at the start
//!   only (`/foo` matches `/foobar`), exact with a trailing `$`. Other regex
//!   syntax (`*`, `+`, `(…|…)`, `[…]`) is passed to a regex engine as the gateway
//!   passes it to PCRE. The request path is normalised first, as nginx and APIcast
//!   do ([`normalize_path`]).
//! - **Query.** Conditions come from `querystring_parameters`, or, when it is
//!   `None`, from the pattern's `?a={x}&b=1` part (split on `&` and the first
//!   `=`, as the admin portal does). A value with a `{var}` token only requires the
//!   argument to be present; any other value must equal the decoded (`%XX`,
//!   `+` → space) value of the argument's last occurrence; a bare `name` never
//!   equals a value; only the first 100 arguments are read.
//! - **Method.** Equal to the rule's (case-sensitive); `ANY` matches every method;
//!   `HEAD` is not `GET`; a rule with an empty method never matches.
//! - **Order.** Rules are sorted by `position` when every rule has one (stable),
//!   else kept in config order, and tried in that order. Every match adds its
//!   delta; a matching `last: true` rule stops. Metrics whose total is ≤ 0 are
//!   dropped; an empty usage means "no mapping rule matched". The matched rules
//!   are all listed, as the gateway's `X-3scale-matched-rules` header does.
//!
//! Not covered: form-encoded body arguments (the gateway also reads them for
//! POST/PUT/PATCH requests with `application/x-www-form-urlencoded` bodies and
//! lets them override query arguments); rule owners (`owner_id`, used by the
//! gateway's routing policy).
//!
//! ```
//! use threescale_core::{MappingRule, MappingRules};
//! let rules = MappingRules::new(vec![
//!     MappingRule::new("ANY", "/", "hits", 1),
//!     MappingRule::new("GET", "/orders/{id}$", "orders", 1),
//!     MappingRule::new("GET", "/search?q={q}", "searches", 1).last(true),
//! ])?;
//! let m = rules.matches("GET", "/orders/42", None);
//! assert_eq!(m.usage.to_string(), "hits=1&orders=1");
//! assert_eq!(m.rules, vec![0, 1]);
//! assert!(rules.matches("GET", "/search", Some("x=1")).usage.get("searches").is_none());
//! assert!(rules.matches("POST", "/orders/42", None).usage.get("orders").is_none());
//! # Ok::<(), threescale_core::MappingError>(())
//! ```

mod index;
pub(crate) mod path;
mod pattern;
pub(crate) mod query;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::Usage;

pub use path::normalize_path;

use index::PrefixIndex;
use pattern::CompiledPath;
use query::{CondFailure, QueryCond};

/// One mapping rule, as the admin portal's proxy config holds it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct MappingRule {
    /// `GET`, `POST`, … or `ANY`.
    pub http_method: String,
    /// Path pattern, e.g. `/orders/{id}$` or `/search?q={q}`.
    pub pattern: String,
    /// Query conditions `{name: expected}`; `None` derives them from the pattern's `?…` part.
    #[serde(default)]
    pub querystring_parameters: Option<BTreeMap<String, String>>,
    /// Metric to count.
    pub metric_system_name: String,
    /// Amount to add.
    #[serde(default)]
    pub delta: i64,
    /// Stop at this rule when it matches.
    #[serde(default)]
    pub last: bool,
    /// Position (rules are sorted by it when present).
    #[serde(default)]
    pub position: Option<i64>,
}

/// HTTP methods a rule may name (besides `ANY`).
const KNOWN_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
];

impl MappingRule {
    /// A rule with no explicit query conditions, `last: false`, no position.
    ///
    /// ```
    /// use threescale_core::MappingRule;
    /// let rule = MappingRule::new("GET", "/orders/{id}$", "orders", 1).last(true).position(3);
    /// assert!(rule.last);
    /// assert_eq!(rule.position, Some(3));
    /// ```
    pub fn new(
        http_method: impl Into<String>,
        pattern: impl Into<String>,
        metric_system_name: impl Into<String>,
        delta: i64,
    ) -> Self {
        MappingRule {
            http_method: http_method.into(),
            pattern: pattern.into(),
            querystring_parameters: None,
            metric_system_name: metric_system_name.into(),
            delta,
            last: false,
            position: None,
        }
    }

    /// Sets `last`.
    pub fn last(mut self, last: bool) -> Self {
        self.last = last;
        self
    }

    /// Sets `position`.
    pub fn position(mut self, position: i64) -> Self {
        self.position = Some(position);
        self
    }

    /// Sets explicit query conditions (the pattern's `?…` part is then ignored).
    ///
    /// ```
    /// use threescale_core::{MappingRule, MappingRules};
    /// let rule = MappingRule::new("GET", "/v?x=1", "hits", 1)
    ///     .querystring_parameters([("y", "{y}")]);
    /// let rules = MappingRules::new(vec![rule]).unwrap();
    /// assert!(rules.matches("GET", "/v", Some("y=")).usage.get("hits").is_some());
    /// assert!(rules.matches("GET", "/v", Some("x=1")).usage.is_empty());
    /// ```
    pub fn querystring_parameters<K: Into<String>, V: Into<String>>(
        mut self,
        params: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.querystring_parameters = Some(
            params
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Checks the rule as [`MappingRules::new`] does, naming the wrong field.
    ///
    /// ```
    /// use threescale_core::{MappingRule, mapping::RuleField};
    /// let issue = MappingRule::new("GET", "/a/{id", "hits", 1).validate().unwrap_err();
    /// assert_eq!(issue.field, RuleField::Pattern);
    /// assert!(MappingRule::new("GET", "/a/{id}", "hits", 1).validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), RuleIssue> {
        compile_rule(self, 0).map(|_| ())
    }
}

/// The field of a [`MappingRule`] that is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuleField {
    /// `http_method`.
    HttpMethod,
    /// `pattern`.
    Pattern,
    /// `metric_system_name`.
    MetricSystemName,
}

impl RuleField {
    /// The JSON field name, e.g. `pattern`.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleField::HttpMethod => "http_method",
            RuleField::Pattern => "pattern",
            RuleField::MetricSystemName => "metric_system_name",
        }
    }
}

impl fmt::Display for RuleField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is wrong with one rule, and in which field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RuleIssue {
    /// The field.
    pub field: RuleField,
    /// What is wrong.
    pub reason: String,
}

/// A rule that cannot be compiled: which rule, which of its fields, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("mapping rule {index}, {field} ({pattern:?}): {reason}")]
#[non_exhaustive]
pub struct MappingError {
    /// Index of the rule in config order.
    pub index: usize,
    /// The field that is wrong.
    pub field: RuleField,
    /// Its pattern.
    pub pattern: String,
    /// What is wrong.
    pub reason: String,
}

/// The result of matching one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchResult {
    /// Metric → total delta (metrics with total ≤ 0 dropped).
    pub usage: Usage,
    /// Indices (in config order, after sorting by position) of the matched rules.
    pub rules: RuleIndices,
}

/// The indices of the mapping rules a request matched, in ascending order.
/// Reads as a slice; up to four are held inline (no heap allocation).
///
/// ```
/// use threescale_core::{MappingRule, MappingRules};
/// let rules = MappingRules::new(vec![
///     MappingRule::new("ANY", "/", "hits", 1),
///     MappingRule::new("GET", "/a", "a", 1),
/// ])?;
/// let matched = rules.matches("GET", "/a", None);
/// assert_eq!(matched.rules, [0, 1]);
/// assert_eq!(matched.rules.to_vec(), vec![0, 1]);
/// # Ok::<(), threescale_core::MappingError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct RuleIndices(SmallVec<[usize; 4]>);

impl RuleIndices {
    fn push(&mut self, index: usize) {
        self.0.push(index);
    }

    fn clear(&mut self) {
        self.0.clear();
    }

    fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

impl std::ops::Deref for RuleIndices {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

impl std::ops::DerefMut for RuleIndices {
    fn deref_mut(&mut self) -> &mut [usize] {
        &mut self.0
    }
}

impl fmt::Debug for RuleIndices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl FromIterator<usize> for RuleIndices {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        RuleIndices(iter.into_iter().collect())
    }
}

impl From<Vec<usize>> for RuleIndices {
    fn from(indices: Vec<usize>) -> Self {
        RuleIndices(SmallVec::from_vec(indices))
    }
}

impl<const N: usize> PartialEq<[usize; N]> for RuleIndices {
    fn eq(&self, other: &[usize; N]) -> bool {
        self.0[..] == other[..]
    }
}

impl PartialEq<Vec<usize>> for RuleIndices {
    fn eq(&self, other: &Vec<usize>) -> bool {
        self.0[..] == other[..]
    }
}

impl PartialEq<[usize]> for RuleIndices {
    fn eq(&self, other: &[usize]) -> bool {
        self.0[..] == *other
    }
}

impl PartialEq<RuleIndices> for Vec<usize> {
    fn eq(&self, other: &RuleIndices) -> bool {
        self[..] == other.0[..]
    }
}

impl MatchResult {
    /// Whether no rule produced usage (the gateway's "no mapping rule matched").
    pub fn is_empty(&self) -> bool {
        self.usage.is_empty()
    }
}

#[derive(Clone, Debug)]
enum MethodMatch {
    Any,
    Exact(Box<str>),
    Never,
}

impl MethodMatch {
    #[inline]
    fn matches(&self, method: &str) -> bool {
        match self {
            MethodMatch::Any => true,
            MethodMatch::Exact(m) => **m == *method,
            MethodMatch::Never => false,
        }
    }
}

#[derive(Clone, Debug)]
struct CompiledRule {
    method: MethodMatch,
    path: CompiledPath,
    query: Box<[QueryCond]>,
    metric: u32,
    delta: i64,
    last: bool,
}

impl CompiledRule {
    /// The index of the first failing query condition, if any.
    #[inline]
    fn query_failure(&self, query: &[u8]) -> Option<(usize, CondFailure)> {
        self.query
            .iter()
            .enumerate()
            .find_map(|(i, c)| query::check(c, query).err().map(|e| (i, e)))
    }
}

#[derive(Debug, Default)]
struct Inner {
    rules: Vec<MappingRule>,
    compiled: Vec<CompiledRule>,
    metrics: Vec<Arc<str>>,
    index: PrefixIndex,
}

/// A compiled set of mapping rules. Cloning is cheap (shared).
///
/// Matching normalises the path (allocating only when it changes), walks a
/// prefix index to find the candidate rules, and verifies those; it does not
/// run every rule, and reuses `out`'s allocations in [`MappingRules::match_into`].
#[derive(Clone, Default)]
pub struct MappingRules {
    inner: Arc<Inner>,
}

impl fmt::Debug for MappingRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappingRules")
            .field("rules", &self.inner.rules)
            .finish()
    }
}

fn compile_rule(rule: &MappingRule, metric: u32) -> Result<CompiledRule, RuleIssue> {
    let issue = |field, reason: String| RuleIssue { field, reason };
    let method = match rule.http_method.as_str() {
        "" => MethodMatch::Never,
        "ANY" => MethodMatch::Any,
        m if KNOWN_METHODS.contains(&m) => MethodMatch::Exact(m.into()),
        m => {
            let hint = if KNOWN_METHODS.contains(&m.to_ascii_uppercase().as_str())
                || m.eq_ignore_ascii_case("any")
            {
                " (methods are case-sensitive)"
            } else {
                ""
            };
            return Err(issue(
                RuleField::HttpMethod,
                format!(
                    "unknown HTTP method {m:?}{hint}; expected one of {} or ANY",
                    KNOWN_METHODS.join(", ")
                ),
            ));
        }
    };
    if rule.metric_system_name.is_empty() {
        return Err(issue(
            RuleField::MetricSystemName,
            "the metric name is empty".into(),
        ));
    }
    if rule.pattern.is_empty() {
        return Err(issue(RuleField::Pattern, "the pattern is empty".into()));
    }
    if !rule.pattern.starts_with('/') {
        return Err(issue(
            RuleField::Pattern,
            "the pattern must start with `/`".into(),
        ));
    }
    let parsed = pattern::parse(&rule.pattern).map_err(|r| issue(RuleField::Pattern, r))?;
    let path = pattern::compile(&parsed.parts).map_err(|r| issue(RuleField::Pattern, r))?;
    let query: Box<[QueryCond]> = match &rule.querystring_parameters {
        Some(map) => map
            .iter()
            .map(|(k, v)| QueryCond::new(k, Some(v)))
            .collect(),
        None => parsed
            .query
            .map(query::conditions_from_pattern_query)
            .unwrap_or_default()
            .into(),
    };
    Ok(CompiledRule {
        method,
        path,
        query,
        metric,
        delta: rule.delta,
        last: rule.last,
    })
}

/// Above this many matched rules, usage is summed with a table instead of pairwise.
const PAIRWISE_SUM_LIMIT: usize = 32;

impl MappingRules {
    /// Compiles `rules` (sorted by `position` when every rule has one).
    ///
    /// Rejected, with the rule's index in `rules`: an empty metric name, an
    /// unknown non-empty method (methods are case-sensitive), a pattern that is
    /// empty, does not start with `/`, has unbalanced braces, or that the regex
    /// engine refuses.
    ///
    /// ```
    /// use threescale_core::{MappingRule, MappingRules};
    /// let err = MappingRules::new(vec![
    ///     MappingRule::new("GET", "/", "hits", 1),
    ///     MappingRule::new("GET", "/a/{id", "hits", 1),
    /// ]).unwrap_err();
    /// assert_eq!(err.index, 1);
    /// assert!(err.to_string().contains("unbalanced braces"), "{err}");
    /// ```
    pub fn new(rules: Vec<MappingRule>) -> Result<Self, MappingError> {
        let mut order: Vec<usize> = (0..rules.len()).collect();
        if !rules.is_empty() && rules.iter().all(|r| r.position.is_some()) {
            order.sort_by_key(|&i| rules[i].position);
        }
        let mut metric_ids: HashMap<&str, u32> = HashMap::new();
        let mut metrics: Vec<Arc<str>> = Vec::new();
        let mut compiled_by_input: Vec<Option<CompiledRule>> = Vec::with_capacity(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            let next = metrics.len() as u32;
            let metric = *metric_ids
                .entry(rule.metric_system_name.as_str())
                .or_insert_with(|| {
                    metrics.push(Arc::from(rule.metric_system_name.as_str()));
                    next
                });
            let compiled = compile_rule(rule, metric).map_err(|issue| MappingError {
                index,
                field: issue.field,
                pattern: rule.pattern.clone(),
                reason: issue.reason,
            })?;
            compiled_by_input.push(Some(compiled));
        }
        let mut compiled = Vec::with_capacity(rules.len());
        let mut index = PrefixIndex::default();
        for (sorted_index, &i) in order.iter().enumerate() {
            let rule = compiled_by_input[i].take().expect("each rule once");
            index.insert(&rule.path.prefix, sorted_index as u32);
            compiled.push(rule);
        }
        let mut rules: Vec<Option<MappingRule>> = rules.into_iter().map(Some).collect();
        let rules = order
            .iter()
            .map(|&i| rules[i].take().expect("each rule once"))
            .collect();
        Ok(MappingRules {
            inner: Arc::new(Inner {
                rules,
                compiled,
                metrics,
                index,
            }),
        })
    }

    /// The rules, in matching order.
    pub fn rules(&self) -> &[MappingRule] {
        &self.inner.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.inner.rules.len()
    }

    /// Whether there are no rules (nothing ever matches).
    pub fn is_empty(&self) -> bool {
        self.inner.rules.is_empty()
    }

    /// Matches a request. `path` is the raw request path (percent-encoded as received),
    /// `query` the raw query string without `?`.
    ///
    /// ```
    /// use threescale_core::{MappingRule, MappingRules};
    /// let rules = MappingRules::new(vec![MappingRule::new("GET", "/foo%20/bar/", "hits", 2)])?;
    /// assert_eq!(rules.matches("GET", "/foo%20/bar/x", None).usage.get("hits"), Some(2));
    /// assert!(rules.matches("GET", "/foo /bar/", None).usage.get("hits").is_some());
    /// # Ok::<(), threescale_core::MappingError>(())
    /// ```
    pub fn matches(&self, method: &str, path: &str, query: Option<&str>) -> MatchResult {
        let mut out = MatchResult::default();
        self.match_into(method, path, query, &mut out);
        out
    }

    /// Like [`MappingRules::matches`], reusing `out`'s allocations.
    ///
    /// ```
    /// use threescale_core::{MappingRule, MappingRules, MatchResult};
    /// let rules = MappingRules::new(vec![MappingRule::new("ANY", "/", "hits", 1)])?;
    /// let mut out = MatchResult::default();
    /// for path in ["/a", "/b"] {
    ///     rules.match_into("GET", path, None, &mut out);
    ///     assert_eq!(out.usage.get("hits"), Some(1));
    /// }
    /// # Ok::<(), threescale_core::MappingError>(())
    /// ```
    pub fn match_into(&self, method: &str, path: &str, query: Option<&str>, out: &mut MatchResult) {
        out.usage.clear();
        out.rules.clear();
        let inner = &*self.inner;
        if inner.compiled.is_empty() {
            return;
        }
        let normalized = normalize_path(path);
        let hay = normalized.as_bytes();
        let query = query.map(query::cut_fragment).unwrap_or(b"");
        let mut stop = usize::MAX;
        let matched = &mut out.rules;
        inner.index.for_each_candidates(hay, |candidates| {
            for &i in candidates {
                let i = i as usize;
                if i > stop {
                    break;
                }
                let rule = &inner.compiled[i];
                if rule.method.matches(method)
                    && rule.path.is_match(hay)
                    && rule.query_failure(query).is_none()
                {
                    matched.push(i);
                    if rule.last {
                        stop = stop.min(i);
                    }
                }
            }
        });
        out.rules.sort_unstable();
        if stop != usize::MAX {
            let keep = out.rules.partition_point(|&i| i <= stop);
            out.rules.truncate(keep);
        }
        inner.sum_usage(&out.rules, &mut out.usage);
    }

    /// For each rule (in matching order): matched, or the first reason it did not.
    ///
    /// ```
    /// use threescale_core::{MappingRule, MappingRules, mapping::RuleOutcome};
    /// let rules = MappingRules::new(vec![
    ///     MappingRule::new("GET", "/a", "hits", 1).last(true),
    ///     MappingRule::new("GET", "/b", "hits", 1),
    ///     MappingRule::new("POST", "/a", "hits", 1),
    ///     MappingRule::new("GET", "/a?x=1", "hits", 1),
    /// ])?;
    /// let e = rules.explain("GET", "/b", Some("x=2"));
    /// assert_eq!(e[0].outcome, RuleOutcome::PathDiffers);
    /// assert_eq!(e[1].outcome, RuleOutcome::Matched);
    /// assert!(matches!(e[2].outcome, RuleOutcome::MethodDiffers { .. }));
    /// assert_eq!(e[3].outcome, RuleOutcome::PathDiffers);
    /// let e = rules.explain("GET", "/a", None);
    /// assert_eq!(e[1].outcome, RuleOutcome::StoppedByLast { rule: 0 });
    /// # Ok::<(), threescale_core::MappingError>(())
    /// ```
    pub fn explain(&self, method: &str, path: &str, query: Option<&str>) -> Vec<RuleExplanation> {
        let inner = &*self.inner;
        let normalized = normalize_path(path);
        let hay = normalized.as_bytes();
        let query = query.map(query::cut_fragment).unwrap_or(b"");
        let mut stopped_by = None;
        let mut out = Vec::with_capacity(inner.compiled.len());
        for (index, rule) in inner.compiled.iter().enumerate() {
            let outcome = if let Some(rule) = stopped_by {
                RuleOutcome::StoppedByLast { rule }
            } else if !rule.method.matches(method) {
                RuleOutcome::MethodDiffers {
                    expected: inner.rules[index].http_method.clone(),
                }
            } else if !rule.path.is_match(hay) {
                RuleOutcome::PathDiffers
            } else if let Some((c, failure)) = rule.query_failure(query) {
                let cond = &rule.query[c];
                let name = cond.name.to_string();
                match failure {
                    CondFailure::Missing => RuleOutcome::QueryParamMissing { name },
                    CondFailure::Bare | CondFailure::Differs(_) => {
                        let expected = match &cond.expected {
                            query::Expected::Equals(e) => String::from_utf8_lossy(e).into_owned(),
                            query::Expected::Present => String::new(),
                        };
                        let actual = match failure {
                            CondFailure::Differs(v) => {
                                Some(String::from_utf8_lossy(&v).into_owned())
                            }
                            _ => None,
                        };
                        RuleOutcome::QueryParamDiffers {
                            name,
                            expected,
                            actual,
                        }
                    }
                }
            } else {
                if rule.last {
                    stopped_by = Some(index);
                }
                RuleOutcome::Matched
            };
            out.push(RuleExplanation { index, outcome });
        }
        out
    }
}

impl Inner {
    /// Adds up the deltas of `matched` (ascending rule indices) per metric, in
    /// order of first match, dropping totals ≤ 0.
    fn sum_usage(&self, matched: &[usize], usage: &mut Usage) {
        let metric_of = |i: usize| self.compiled[i].metric;
        let clamp = |total: i128| u64::try_from(total).unwrap_or(u64::MAX);
        if matched.len() <= PAIRWISE_SUM_LIMIT {
            for (j, &rule) in matched.iter().enumerate() {
                let metric = metric_of(rule);
                if matched[..j].iter().any(|&r| metric_of(r) == metric) {
                    continue;
                }
                let total: i128 = matched[j..]
                    .iter()
                    .filter(|&&r| metric_of(r) == metric)
                    .map(|&r| i128::from(self.compiled[r].delta))
                    .sum();
                if total > 0 {
                    usage.add(self.metrics[metric as usize].clone(), clamp(total));
                }
            }
        } else {
            let mut totals: Vec<Option<i128>> = vec![None; self.metrics.len()];
            let mut first_seen: Vec<u32> = Vec::new();
            for &rule in matched {
                let metric = metric_of(rule);
                let slot = &mut totals[metric as usize];
                if slot.is_none() {
                    first_seen.push(metric);
                }
                *slot = Some(slot.unwrap_or(0) + i128::from(self.compiled[rule].delta));
            }
            for metric in first_seen {
                let total = totals[metric as usize].unwrap_or(0);
                if total > 0 {
                    usage.add(self.metrics[metric as usize].clone(), clamp(total));
                }
            }
        }
    }
}

/// How one rule fared against a request (see [`MappingRules::explain`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleExplanation {
    /// The rule's index in [`MappingRules::rules`].
    pub index: usize,
    /// Matched, or the first reason it did not.
    pub outcome: RuleOutcome,
}

impl RuleExplanation {
    /// Whether the rule matched.
    pub fn matched(&self) -> bool {
        self.outcome == RuleOutcome::Matched
    }
}

/// Matched, or the first reason a rule did not match.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuleOutcome {
    /// The rule matched and its delta counts.
    Matched,
    /// The request method is not the rule's.
    MethodDiffers {
        /// The rule's method.
        expected: String,
    },
    /// The normalised path does not match the pattern.
    PathDiffers,
    /// A required query argument is absent.
    QueryParamMissing {
        /// The argument.
        name: String,
    },
    /// A query argument's last value is not the expected one.
    QueryParamDiffers {
        /// The argument.
        name: String,
        /// The expected value.
        expected: String,
        /// The decoded value received; `None` for a bare `name` without `=`.
        actual: Option<String>,
    },
    /// An earlier matching rule had `last: true`.
    StoppedByLast {
        /// That rule's index.
        rule: usize,
    },
}

impl fmt::Display for RuleOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleOutcome::Matched => f.write_str("matched"),
            RuleOutcome::MethodDiffers { expected } if expected.is_empty() => {
                f.write_str("no match: the rule has no method")
            }
            RuleOutcome::MethodDiffers { expected } => {
                write!(f, "no match: method is not {expected}")
            }
            RuleOutcome::PathDiffers => f.write_str("no match: path"),
            RuleOutcome::QueryParamMissing { name } => {
                write!(f, "no match: query parameter {name:?} missing")
            }
            RuleOutcome::QueryParamDiffers {
                name,
                expected,
                actual: Some(actual),
            } => write!(
                f,
                "no match: query parameter {name:?} is {actual:?}, expected {expected:?}"
            ),
            RuleOutcome::QueryParamDiffers { name, expected, .. } => write!(
                f,
                "no match: query parameter {name:?} has no value, expected {expected:?}"
            ),
            RuleOutcome::StoppedByLast { rule } => {
                write!(f, "not tried: rule {rule} matched with last: true")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(list: Vec<MappingRule>) -> MappingRules {
        MappingRules::new(list).unwrap()
    }

    #[test]
    fn errors_name_the_rule_in_config_order_and_its_field() {
        let cases = [
            (
                MappingRule::new("get", "/a", "hits", 1),
                RuleField::HttpMethod,
            ),
            (MappingRule::new("GET", "a", "hits", 1), RuleField::Pattern),
            (
                MappingRule::new("GET", "/a/{id", "hits", 1),
                RuleField::Pattern,
            ),
            (
                MappingRule::new("GET", "/a", "", 1),
                RuleField::MetricSystemName,
            ),
        ];
        for (bad, field) in cases {
            // Positions sort the rules; the index is still the rule's place in the input.
            let mut good = MappingRule::new("GET", "/", "hits", 1);
            good.position = Some(2);
            let mut bad = bad;
            bad.position = Some(1);
            let err = MappingRules::new(vec![good, bad.clone()]).unwrap_err();
            assert_eq!(err.index, 1, "{bad:?}");
            assert_eq!(err.field, field, "{bad:?}");
            assert_eq!(err.pattern, bad.pattern);
            assert!(!err.reason.is_empty());
            assert!(err.to_string().contains(field.as_str()), "{err}");
        }
    }

    #[test]
    fn accumulates_and_drops_non_positive() {
        let r = rules(vec![
            MappingRule::new("ANY", "/", "hits", 2),
            MappingRule::new("GET", "/a", "hits", -1),
            MappingRule::new("GET", "/a", "zero", 0),
            MappingRule::new("GET", "/a", "neg", -3),
        ]);
        let m = r.matches("GET", "/a", None);
        assert_eq!(m.usage.to_string(), "hits=1");
        assert_eq!(m.rules, vec![0, 1, 2, 3]);
    }

    #[test]
    fn position_sorting() {
        let r = rules(vec![
            MappingRule::new("GET", "/b", "b", 1).position(2),
            MappingRule::new("GET", "/", "hits", 1).position(1),
        ]);
        assert_eq!(r.rules()[0].metric_system_name, "hits");
        assert_eq!(r.matches("GET", "/b", None).rules, vec![0, 1]);
        let r = rules(vec![
            MappingRule::new("GET", "/b", "b", 1).position(2),
            MappingRule::new("GET", "/", "hits", 1),
        ]);
        assert_eq!(r.rules()[0].metric_system_name, "b");
    }

    #[test]
    fn many_matches_use_the_table() {
        let list: Vec<_> = (0..100)
            .map(|i| {
                MappingRule::new(
                    "ANY",
                    "/",
                    format!("m{}", i % 7),
                    if i % 3 == 0 { -1 } else { 1 },
                )
            })
            .collect();
        let r = rules(list.clone());
        let m = r.matches("GET", "/x", None);
        assert_eq!(m.rules.len(), 100);
        let mut want = Usage::new();
        for metric in 0..7 {
            let total: i64 = list
                .iter()
                .filter(|x| x.metric_system_name == format!("m{metric}"))
                .map(|x| x.delta)
                .sum();
            if total > 0 {
                want.add(format!("m{metric}"), total as u64);
            }
        }
        assert_eq!(m.usage, want);
    }

    #[test]
    fn rejects_bad_rules() {
        let bad = [
            MappingRule::new("get", "/", "hits", 1),
            MappingRule::new("FETCH", "/", "hits", 1),
            MappingRule::new("GET", "", "hits", 1),
            MappingRule::new("GET", "foo", "hits", 1),
            MappingRule::new("GET", "/", "", 1),
            MappingRule::new("GET", "/a(", "hits", 1),
            MappingRule::new("GET", "/{a", "hits", 1),
        ];
        for rule in bad {
            assert!(MappingRules::new(vec![rule.clone()]).is_err(), "{rule:?}");
        }
        assert!(MappingRules::new(vec![MappingRule::new("", "/", "hits", 1)]).is_ok());
    }
}
