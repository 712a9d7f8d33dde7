//! The `3scale-options` request header (and the legacy `no_body` parameter).
//!
//! The header is parsed like a query string: `no_body=1&limit_headers=1&...`. Every
//! option but `no_body` is on only when its value is exactly `1`; `no_body` is on for
//! any value except `0` and `false`.

use crate::params::{Params, Value, parse_nested_query};

/// The extensions a request asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Extensions {
    pub no_body: bool,
    pub rejection_reason_header: bool,
    pub limit_headers: bool,
    pub hierarchy: bool,
    pub flat_usage: bool,
    pub list_app_keys: bool,
}

impl Extensions {
    /// Reads the header value (if any) and the query parameters' `no_body`.
    ///
    /// A header the parser rejects counts as no header.
    pub(crate) fn parse(header: Option<&[u8]>, query: &Params) -> Self {
        let mut opts = Params::new();
        if let Some(h) = header
            && parse_nested_query(h, &mut opts).is_err()
        {
            opts = Params::new();
        }
        let one = |name: &str| matches!(opts.get(name), Some(Value::Str(v)) if v == b"1");
        let no_body = match opts.get("no_body") {
            Some(v) if !matches!(v, Value::Nil) => Some(v),
            _ => query.get("no_body").filter(|v| !matches!(v, Value::Nil)),
        };
        Extensions {
            no_body: no_body
                .is_some_and(|v| !matches!(v, Value::Str(s) if s == b"0" || s == b"false")),
            rejection_reason_header: one("rejection_reason_header"),
            limit_headers: one("limit_headers"),
            hierarchy: one("hierarchy"),
            flat_usage: one("flat_usage"),
            list_app_keys: one("list_app_keys"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(header: Option<&str>, query: &str) -> Extensions {
        let mut q = Params::new();
        parse_nested_query(query.as_bytes(), &mut q).unwrap();
        Extensions::parse(header.map(str::as_bytes), &q)
    }

    #[test]
    fn header_options() {
        let e = ext(
            Some(
                "no_body=1&rejection_reason_header=1&limit_headers=1&hierarchy=1&flat_usage=1&list_app_keys=1",
            ),
            "",
        );
        assert!(e.no_body && e.rejection_reason_header && e.limit_headers);
        assert!(e.hierarchy && e.flat_usage && e.list_app_keys);
        let e = ext(Some("limit_headers=true&hierarchy=2"), "");
        assert!(!e.limit_headers && !e.hierarchy);
    }

    #[test]
    fn no_body_variants() {
        assert!(ext(None, "no_body=1").no_body);
        assert!(ext(None, "no_body=true").no_body);
        assert!(ext(None, "no_body=").no_body);
        assert!(!ext(None, "no_body").no_body);
        assert!(!ext(None, "no_body=0").no_body);
        assert!(!ext(None, "no_body=false").no_body);
        assert!(ext(Some("no_body=yes"), "").no_body);
        // the header wins over the parameter
        assert!(!ext(Some("no_body=0"), "no_body=1").no_body);
        assert!(ext(Some("no_body"), "no_body=1").no_body);
        assert!(!ext(Some("no_body=%"), "").no_body);
    }
}
