//! [`Usage`]: metric name → value, as sent to the 3scale backend.

use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

/// How a usage value changes a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UsageValue {
    /// Add `n` to the counter (`usage[m]=n`).
    Add(u64),
    /// Set the counter to `n` (`usage[m]=#n`; deprecated by 3scale, still accepted).
    Set(u64),
}

impl UsageValue {
    /// The number, whether it adds or sets.
    pub fn amount(self) -> u64 {
        match self {
            UsageValue::Add(n) | UsageValue::Set(n) => n,
        }
    }
}

impl fmt::Display for UsageValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageValue::Add(n) => write!(f, "{n}"),
            UsageValue::Set(n) => write!(f, "#{n}"),
        }
    }
}

/// Usage of one request or transaction: metric name → value, in insertion order.
///
/// Adding to a metric that is already present sums the values. Metric names are
/// shared `Arc<str>`, so a usage built from compiled mapping rules copies no strings.
///
/// ```
/// use threescale_core::Usage;
/// let mut usage = Usage::new();
/// usage.add("hits", 1);
/// usage.add("orders", 2);
/// usage.add("hits", 1);
/// assert_eq!(usage.get("hits"), Some(2));
/// assert_eq!(usage.to_string(), "hits=2&orders=2");
/// assert_eq!(Usage::hits().get("hits"), Some(1));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Usage {
    /// Inline up to two metrics (most requests name one or two): a
    /// request's usage then costs no heap allocation.
    entries: SmallVec<[(Arc<str>, UsageValue); 2]>,
}

impl Usage {
    /// An empty usage.
    pub const fn new() -> Self {
        Usage {
            entries: SmallVec::new_const(),
        }
    }

    /// `hits=1`, the default usage of a call.
    pub fn hits() -> Self {
        let mut usage = Usage::new();
        usage.add("hits", 1);
        usage
    }

    /// Adds `delta` to `metric` (sums with an existing increment; an existing set
    /// value `#n` becomes `#(n + delta)`).
    pub fn add(&mut self, metric: impl Into<Arc<str>> + AsRef<str>, delta: u64) -> &mut Self {
        match self.position(metric.as_ref()) {
            Some(i) => {
                let value = &mut self.entries[i].1;
                *value = match *value {
                    UsageValue::Add(n) => UsageValue::Add(n.saturating_add(delta)),
                    UsageValue::Set(n) => UsageValue::Set(n.saturating_add(delta)),
                };
            }
            None => self.entries.push((metric.into(), UsageValue::Add(delta))),
        }
        self
    }

    /// Sets `metric` to `#value` (replaces any earlier value for it).
    pub fn set(&mut self, metric: impl Into<Arc<str>> + AsRef<str>, value: u64) -> &mut Self {
        match self.position(metric.as_ref()) {
            Some(i) => self.entries[i].1 = UsageValue::Set(value),
            None => self.entries.push((metric.into(), UsageValue::Set(value))),
        }
        self
    }

    /// Builder form of [`Usage::add`].
    pub fn with(mut self, metric: impl Into<Arc<str>> + AsRef<str>, delta: u64) -> Self {
        self.add(metric, delta);
        self
    }

    /// The amount for `metric`, if present.
    pub fn get(&self, metric: &str) -> Option<u64> {
        self.position(metric).map(|i| self.entries[i].1.amount())
    }

    /// The value (add or set) for `metric`, if present.
    pub fn value(&self, metric: &str) -> Option<UsageValue> {
        self.position(metric).map(|i| self.entries[i].1)
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, UsageValue)> + '_ {
        self.entries.iter().map(|(m, v)| (&**m, *v))
    }

    /// Entries with their shared names.
    pub fn entries(&self) -> &[(Arc<str>, UsageValue)] {
        &self.entries
    }

    /// Number of metrics.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no metric is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every metric, keeping the allocation.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Drops metrics whose increment is 0 (a set `#0` is kept).
    pub fn retain_positive(&mut self) {
        self.entries
            .retain(|(_, v)| !matches!(v, UsageValue::Add(0)));
    }

    /// Adds every entry of `other` into `self`.
    pub fn merge(&mut self, other: &Usage) {
        for (metric, value) in &other.entries {
            match value {
                UsageValue::Add(n) => self.add(metric.clone(), *n),
                UsageValue::Set(n) => self.set(metric.clone(), *n),
            };
        }
    }

    /// Entries sorted by metric name (a stable, canonical form for cache keys).
    pub fn sorted(&self) -> Vec<(&str, UsageValue)> {
        let mut sorted: Vec<_> = self.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        sorted
    }

    fn position(&self, metric: &str) -> Option<usize> {
        self.entries.iter().position(|(m, _)| &**m == metric)
    }
}

impl fmt::Debug for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// `metric=value&metric=value` in insertion order (not URL-encoded; for humans).
impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (metric, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            write!(f, "{metric}={value}")?;
        }
        Ok(())
    }
}

impl<M: Into<Arc<str>> + AsRef<str>> FromIterator<(M, u64)> for Usage {
    fn from_iter<I: IntoIterator<Item = (M, u64)>>(iter: I) -> Self {
        let mut usage = Usage::new();
        for (metric, delta) in iter {
            usage.add(metric, delta);
        }
        usage
    }
}

impl serde::Serialize for Usage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (metric, value) in self.iter() {
            map.serialize_entry(metric, &value.amount())?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_sums_and_set_replaces() {
        let mut u = Usage::new();
        u.add("a", 2).add("b", 1).add("a", 3);
        assert_eq!(u.get("a"), Some(5));
        u.set("b", 7);
        assert_eq!(u.value("b"), Some(UsageValue::Set(7)));
        assert_eq!(u.to_string(), "a=5&b=#7");
        u.add("z", 0);
        u.retain_positive();
        assert_eq!(u.len(), 2);
    }
}
