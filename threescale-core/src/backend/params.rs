//! Building query strings and form bodies.
//!
//! Every name and value that does not come from this crate (credentials,
//! metric names, referrers, redirect URLs, timestamps) is percent-encoded with
//! everything but the RFC 3986 unreserved characters escaped, so a value can
//! never add, end or change a parameter. The brackets that give Rack its
//! nesting (`usage[…]`, `transactions[0][…]`) are written by this module only;
//! a bracket inside a metric name is encoded.

use std::fmt::Write;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::{Usage, UsageValue};

/// Everything except `A-Z a-z 0-9 - . _ ~` is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Appends `value` percent-encoded.
pub(crate) fn encode_component(out: &mut String, value: &str) {
    for chunk in utf8_percent_encode(value, COMPONENT) {
        out.push_str(chunk);
    }
}

/// A `key=value&key=value` string under construction.
#[derive(Debug, Default)]
pub(crate) struct Params {
    buf: String,
    count: usize,
}

impl Params {
    /// An empty list with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Params {
            buf: String::with_capacity(capacity),
            count: 0,
        }
    }

    /// Number of parameters written.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// The encoded string.
    pub(crate) fn finish(self) -> String {
        self.buf
    }

    /// The encoded string so far.
    pub(crate) fn as_str(&self) -> &str {
        &self.buf
    }

    /// Appends everything of `other`.
    pub(crate) fn append(&mut self, other: &Params) {
        if other.buf.is_empty() {
            return;
        }
        if !self.buf.is_empty() {
            self.buf.push('&');
        }
        self.buf.push_str(&other.buf);
        self.count += other.count;
    }

    fn start(&mut self) {
        if !self.buf.is_empty() {
            self.buf.push('&');
        }
        self.count += 1;
    }

    /// `name=value`, `name` being one of this crate's literal names.
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        self.start();
        self.buf.push_str(name);
        self.buf.push('=');
        encode_component(&mut self.buf, value);
    }

    /// `name=n`.
    pub(crate) fn push_number(&mut self, name: &str, value: u64) {
        self.start();
        self.buf.push_str(name);
        let _ = write!(self.buf, "={value}");
    }

    /// `{prefix}[{metric}]=value` for every entry, e.g. `usage[hits]=1` or
    /// `usage[hits]=%2310` for a set `#10`.
    pub(crate) fn push_usage(&mut self, prefix: &str, usage: &Usage) {
        for (metric, value) in usage.iter() {
            self.start();
            self.buf.push_str(prefix);
            self.buf.push('[');
            encode_component(&mut self.buf, metric);
            self.buf.push_str("]=");
            let _ = match value {
                UsageValue::Add(n) => write!(self.buf, "{n}"),
                UsageValue::Set(n) => write!(self.buf, "%23{n}"),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_foreign() {
        let mut p = Params::default();
        p.push("user_key", "a&b=c#d%e+f g[h]i\nü");
        let mut usage = Usage::new();
        usage.add("m]&x=1", 2);
        usage.set("hits", 5);
        p.push_usage("usage", &usage);
        p.push_number("log[code]", 200);
        assert_eq!(
            p.as_str(),
            "user_key=a%26b%3Dc%23d%25e%2Bf%20g%5Bh%5Di%0A%C3%BC\
             &usage[m%5D%26x%3D1]=2&usage[hits]=%235&log[code]=200"
        );
        assert_eq!(p.count(), 4);
    }
}
