//! Query-string conditions, read as OpenResty's `ngx.req.get_uri_args()` does.

use super::path::hex_value;

/// The gateway reads at most this many arguments (`NGX_HTTP_LUA_MAX_ARGS`).
pub(crate) const MAX_ARGS: usize = 100;

/// What a condition expects of its argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    /// The value holds a `{var}` token: the argument only has to be present.
    Present,
    /// The last occurrence must equal this (decoded) value exactly.
    Equals(Box<[u8]>),
}

/// One condition `name → expected`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueryCond {
    pub name: Box<str>,
    pub expected: Expected,
}

impl QueryCond {
    pub(crate) fn new(name: &str, expected: Option<&str>) -> Self {
        let expected = match expected {
            Some(v) if !has_var_token(v) => Expected::Equals(v.as_bytes().into()),
            _ => Expected::Present,
        };
        QueryCond {
            name: name.into(),
            expected,
        }
    }
}

/// Whether `value` contains `\{[-\w_]+\}` (ASCII word characters).
pub(crate) fn has_var_token(value: &str) -> bool {
    let b = value.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'-') {
                j += 1;
            }
            if j > i + 1 && j < b.len() && b[j] == b'}' {
                return true;
            }
        }
        i += 1;
    }
    false
}

/// Conditions derived from a pattern's query part as the admin portal does:
/// split on `&`, each piece on its first `=`; a later key replaces an earlier
/// one. A piece without `=` becomes a presence condition.
pub(crate) fn conditions_from_pattern_query(query: &str) -> Vec<QueryCond> {
    let query = query.split('#').next().unwrap_or("");
    let mut out: Vec<QueryCond> = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = match piece.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (piece, None),
        };
        out.retain(|c| &*c.name != name);
        out.push(QueryCond::new(name, value));
    }
    out
}

/// One request argument, raw (still encoded).
#[derive(Clone, Copy, Debug)]
pub(crate) enum ArgValue<'q> {
    /// `name` without `=` (Lua `true`).
    Bare,
    /// `name=value`.
    Value(&'q [u8]),
}

/// The first [`MAX_ARGS`] arguments with a non-empty name, raw.
pub(crate) fn args(query: &[u8]) -> impl Iterator<Item = (&[u8], ArgValue<'_>)> {
    query
        .split(|&b| b == b'&')
        .map(|piece| match piece.iter().position(|&b| b == b'=') {
            Some(eq) => (&piece[..eq], ArgValue::Value(&piece[eq + 1..])),
            None => (piece, ArgValue::Bare),
        })
        .filter(|(name, _)| !name.is_empty())
        .take(MAX_ARGS)
}

/// Decodes a raw argument part as `ngx_http_lua_unescape_uri` does
/// (`%XX` → byte, a `%` without two hex digits stays, `+` → space).
pub(crate) fn decoded(raw: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        let b = *raw.get(i)?;
        i += 1;
        Some(match b {
            b'+' => b' ',
            b'%' => match (
                raw.get(i).copied().and_then(hex_value),
                raw.get(i + 1).copied().and_then(hex_value),
            ) {
                (Some(hi), Some(lo)) => {
                    i += 2;
                    (hi << 4) | lo
                }
                _ => b'%',
            },
            _ => b,
        })
    })
}

/// Whether `raw` decodes to exactly `expected`.
#[inline]
pub(crate) fn decoded_eq(raw: &[u8], expected: &[u8]) -> bool {
    // A decoded part is never longer than its raw form.
    if expected.len() > raw.len() {
        return false;
    }
    let mut it = decoded(raw);
    for &e in expected {
        if it.next() != Some(e) {
            return false;
        }
    }
    it.next().is_none()
}

/// The last value of argument `name` among the arguments the gateway reads.
pub(crate) fn last_value<'q>(query: &'q [u8], name: &str) -> Option<ArgValue<'q>> {
    let mut found = None;
    for (k, v) in args(query) {
        if decoded_eq(k, name.as_bytes()) {
            found = Some(v);
        }
    }
    found
}

/// The raw query the gateway parses: up to a `#`.
#[inline]
pub(crate) fn cut_fragment(query: &str) -> &[u8] {
    let b = query.as_bytes();
    match b.iter().position(|&c| c == b'#') {
        Some(i) => &b[..i],
        None => b,
    }
}

/// Why a condition failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CondFailure {
    Missing,
    Bare,
    Differs(Vec<u8>),
}

/// Checks one condition.
#[inline]
pub(crate) fn check(cond: &QueryCond, query: &[u8]) -> Result<(), CondFailure> {
    match (&cond.expected, last_value(query, &cond.name)) {
        (_, None) => Err(CondFailure::Missing),
        (Expected::Present, Some(_)) => Ok(()),
        (Expected::Equals(_), Some(ArgValue::Bare)) => Err(CondFailure::Bare),
        (Expected::Equals(e), Some(ArgValue::Value(v))) => {
            if decoded_eq(v, e) {
                Ok(())
            } else {
                Err(CondFailure::Differs(decoded(v).collect()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn var_tokens() {
        assert!(has_var_token("{x}"));
        assert!(has_var_token("a{x-y_1}b"));
        assert!(!has_var_token("{}"));
        assert!(!has_var_token("{a b}"));
        assert!(!has_var_token("x"));
        assert!(has_var_token("{{x}"));
    }

    #[test]
    fn decoding() {
        assert!(decoded_eq(b"a+b%20c%2B", b"a b c+"));
        assert!(decoded_eq(b"%zz%4", b"%zz%4"));
        assert!(!decoded_eq(b"ab", b"a"));
    }

    #[test]
    fn last_occurrence_and_limit() {
        let q = b"a=1&&=x&a=2&b";
        assert!(matches!(last_value(q, "a"), Some(ArgValue::Value(b"2"))));
        assert!(matches!(last_value(q, "b"), Some(ArgValue::Bare)));
        assert!(last_value(q, "c").is_none());
        let mut long = String::new();
        for i in 0..100 {
            long.push_str(&format!("k{i}=v&"));
        }
        long.push_str("late=1");
        assert!(last_value(long.as_bytes(), "k99").is_some());
        assert!(last_value(long.as_bytes(), "late").is_none());
    }

    #[test]
    fn from_pattern() {
        let c = conditions_from_pattern_query("size={size}&speed=2x&flag&a=1&a=2");
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].expected, Expected::Present);
        assert_eq!(c[1].expected, Expected::Equals(b"2x".to_vec().into()));
        assert_eq!(c[2].expected, Expected::Present);
        assert_eq!(&*c[3].name, "a");
        assert_eq!(c[3].expected, Expected::Equals(b"2".to_vec().into()));
    }
}
