//! Rack-style nested parameter parsing (`usage[hits]=1`, `transactions[0][app_id]=a`).
//!
//! This follows the rules of Rack 3.1's `QueryParser#parse_nested_query`, which the real
//! backend uses: pairs split on `&` (and the spaces after it), `+` means a space, a `%`
//! not followed by two hex digits fails the whole parse, later keys replace earlier
//! ones, `[]` builds arrays, `[key]` builds hashes, and conflicting shapes fail with a
//! type error. Keys and values are kept as raw bytes: UTF-8 is checked later, like the
//! backend does, so that the first error in the backend's order wins.

use std::collections::HashMap;

/// Maximum bytes of a query string or form body (Rack's default).
pub(crate) const BYTESIZE_LIMIT: usize = 4_194_304;
/// Maximum number of parameters (Rack's default; counted as `&` separators).
pub(crate) const PARAMS_LIMIT: usize = 4096;
/// Maximum nesting depth (Rack's default).
pub(crate) const DEPTH_LIMIT: usize = 32;

/// A parsed parameter value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// A key without `=` (`no_body`), or an array slot Rack left empty.
    Nil,
    /// A string, as raw bytes.
    Str(Vec<u8>),
    /// A nested hash, in insertion order.
    Hash(Params),
    /// A nested array.
    Array(Vec<Value>),
}

impl Value {
    /// The string, when this is a string holding valid UTF-8.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The hash, when this is a hash.
    pub(crate) fn as_hash(&self) -> Option<&Params> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    /// Whether every key and string below is valid UTF-8.
    pub(crate) fn is_valid_utf8(&self) -> bool {
        match self {
            Value::Nil => true,
            Value::Str(b) => std::str::from_utf8(b).is_ok(),
            Value::Hash(h) => h.is_valid_utf8(),
            Value::Array(a) => a.iter().all(Value::is_valid_utf8),
        }
    }

    /// Ruby's `blank?` as the listener defines it: nil, or an empty string/hash/array.
    pub(crate) fn is_blank(&self) -> bool {
        match self {
            Value::Nil => true,
            Value::Str(b) => b.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Array(a) => a.is_empty(),
        }
    }

    /// The value rendered for an error message (lossy UTF-8 for strings, a Ruby-like
    /// inspection for hashes and arrays).
    pub(crate) fn display(&self) -> String {
        match self {
            Value::Nil => String::new(),
            Value::Str(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Hash(h) => {
                let inner: Vec<String> = h
                    .iter()
                    .map(|(k, v)| format!("{:?} => {}", String::from_utf8_lossy(k), v.inspect()))
                    .collect();
                format!("{{{}}}", inner.join(", "))
            }
            Value::Array(_) => self.inspect(),
        }
    }

    fn inspect(&self) -> String {
        match self {
            Value::Nil => "nil".to_string(),
            Value::Str(b) => format!("{:?}", String::from_utf8_lossy(b)),
            Value::Hash(_) => self.display(),
            Value::Array(a) => {
                let inner: Vec<String> = a.iter().map(Value::inspect).collect();
                format!("[{}]", inner.join(", "))
            }
        }
    }

    /// The Ruby class name Rack puts in its type error messages.
    fn class_name(&self) -> &'static str {
        match self {
            Value::Nil => "NilClass",
            Value::Str(_) => "String",
            Value::Hash(_) => "Rack::QueryParser::Params",
            Value::Array(_) => "Array",
        }
    }

    fn is_falsy(&self) -> bool {
        matches!(self, Value::Nil)
    }
}

/// An insertion-ordered map of parameters with byte-string keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Params {
    entries: Vec<(Vec<u8>, Value)>,
    index: HashMap<Vec<u8>, usize>,
}

impl Params {
    /// An empty map.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// The value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.get_bytes(key.as_bytes())
    }

    /// The value under a raw key.
    pub(crate) fn get_bytes(&self, key: &[u8]) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    /// Whether `key` is present (even with a nil value).
    pub(crate) fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key.as_bytes())
    }

    /// Sets `key`: an existing key keeps its position, a new key goes last.
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: Value) {
        match self.index.get(&key) {
            Some(&i) => self.entries[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, value));
            }
        }
    }

    /// Entries in insertion order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_slice(), v))
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Ruby's `Hash#merge`: keys of `other` replace ours (keeping our position).
    pub(crate) fn merge(&mut self, other: Params) {
        for (k, v) in other.entries {
            self.insert(k, v);
        }
    }

    /// Whether every key and value is valid UTF-8.
    pub(crate) fn is_valid_utf8(&self) -> bool {
        self.entries
            .iter()
            .all(|(k, v)| std::str::from_utf8(k).is_ok() && v.is_valid_utf8())
    }

    /// A string parameter as `&str` (None when absent, not a string, or not UTF-8).
    #[cfg(test)]
    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

/// Why a query string or form body could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// A `%` not followed by two hex digits.
    InvalidPercentEncoding,
    /// Conflicting shapes, e.g. `usage[]=1&usage[hits]=1`. `message` is Rack's text.
    Type {
        /// Whether Rack expected a hash and found an array (the case the backend
        /// turns into its generic `bad_request`).
        hash_got_array: bool,
        /// Rack's message, e.g. ``expected Hash (got String) for param `usage'``.
        message: String,
    },
    /// A Rack query limit (size, number of parameters, depth).
    Limit(String),
    /// A malformed multipart body.
    Multipart(String),
}

/// Parses a query string (or an urlencoded body) into `params`, Rack style.
pub(crate) fn parse_nested_query(qs: &[u8], params: &mut Params) -> Result<(), ParseError> {
    if qs.is_empty() {
        return Ok(());
    }
    check_limits(qs)?;
    for piece in split_pairs(qs) {
        let (k, v) = match piece.iter().position(|&b| b == b'=') {
            Some(i) => (&piece[..i], Some(&piece[i + 1..])),
            None => (piece, None),
        };
        // Ruby: `"".split('=', 2)` is `[]`, so an empty piece has a nil name.
        let name = if piece.is_empty() {
            None
        } else {
            Some(unescape(k)?)
        };
        let value = match v {
            Some(v) => Value::Str(unescape(v)?),
            None => Value::Nil,
        };
        normalize(params, name.as_deref(), value, 0)?;
    }
    Ok(())
}

/// Rack's error for a query string or body over [`BYTESIZE_LIMIT`].
pub(crate) fn size_limit_error() -> ParseError {
    ParseError::Limit(format!("total query size exceeds limit ({BYTESIZE_LIMIT})"))
}

/// Rack's query limits: total size and number of `&`.
pub(crate) fn check_limits(qs: &[u8]) -> Result<(), ParseError> {
    if qs.len() > BYTESIZE_LIMIT {
        return Err(size_limit_error());
    }
    let count = qs.iter().filter(|&&b| b == b'&').count();
    if count >= PARAMS_LIMIT {
        return Err(ParseError::Limit(format!(
            "total number of query parameters ({}) exceeds limit ({PARAMS_LIMIT})",
            count + 1
        )));
    }
    Ok(())
}

/// Splits on `/& */`.
fn split_pairs(qs: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < qs.len() {
        if qs[i] == b'&' {
            out.push(&qs[start..i]);
            i += 1;
            while i < qs.len() && qs[i] == b' ' {
                i += 1;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&qs[start..]);
    out
}

/// `URI.decode_www_form_component`: `+` is a space, `%XX` a byte; a stray `%` fails.
pub(crate) fn unescape(s: &[u8]) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = s.get(i + 1).and_then(|b| hex(*b));
                let lo = s.get(i + 2).and_then(|b| hex(*b));
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                    }
                    _ => return Err(ParseError::InvalidPercentEncoding),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// What `_normalize_params` returns to its caller.
enum Ret {
    /// `return` (nil).
    Nil,
    /// `return [v]`.
    Array(Value),
    /// The params it was given.
    Params,
}

fn find_from(hay: &[u8], needle: u8, from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|p| p + from)
}

/// Byte length of the first UTF-8 character (1 for invalid bytes, like Ruby's
/// broken-string indexing closely enough for bracket searches).
fn first_char_len(s: &[u8]) -> usize {
    match s.first() {
        None => 0,
        Some(&b) if b < 0x80 => 1,
        Some(_) => {
            let max = s.len().min(4);
            (2..=max)
                .find(|&n| std::str::from_utf8(&s[..n]).is_ok())
                .unwrap_or(1)
        }
    }
}

fn type_error(expected: &str, got: &Value, key: &[u8]) -> ParseError {
    ParseError::Type {
        hash_got_array: expected == "Hash" && matches!(got, Value::Array(_)),
        message: format!(
            "expected {expected} (got {}) for param `{}'",
            got.class_name(),
            String::from_utf8_lossy(key)
        ),
    }
}

fn normalize(
    params: &mut Params,
    name: Option<&[u8]>,
    v: Value,
    depth: usize,
) -> Result<Ret, ParseError> {
    if depth >= DEPTH_LIMIT {
        return Err(ParseError::Limit(
            "Rack::QueryParser::QueryLimitError".to_string(),
        ));
    }
    let (k, after): (&[u8], &[u8]) = match name {
        None => (b"", b""),
        Some(name) if depth == 0 => match find_from(name, b'[', first_char_len(name)) {
            Some(start) => (&name[..start], &name[start..]),
            None => (name, b""),
        },
        Some(name) if name.starts_with(b"[]") => (b"[]", &name[2..]),
        Some(name) if name.starts_with(b"[") && find_from(name, b']', 1).is_some() => {
            let start = find_from(name, b']', 1).unwrap_or(1);
            (&name[1..start], &name[start + 1..])
        }
        Some(name) => (name, b""),
    };
    if k.is_empty() {
        return Ok(Ret::Nil);
    }
    if after.is_empty() {
        if k == b"[]" && depth != 0 {
            return Ok(Ret::Array(Value::Array(vec![v])));
        }
        params.insert(k.to_vec(), v);
    } else if after == b"[" {
        if let Some(name) = name {
            params.insert(name.to_vec(), v);
        }
    } else if after == b"[]" {
        let slot = ensure(params, k, || Value::Array(Vec::new()));
        match slot {
            Value::Array(a) => a.push(v),
            other => return Err(type_error("Array", other, k)),
        }
    } else if after.starts_with(b"[]") {
        let child_key: Vec<u8> =
            if after.len() >= 4 && after[2] == b'[' && after.ends_with(b"]") && {
                let c = &after[3..after.len() - 1];
                !c.is_empty() && !c.contains(&b'[') && !c.contains(&b']')
            } {
                after[3..after.len() - 1].to_vec()
            } else {
                after[2..].to_vec()
            };
        let slot = ensure(params, k, || Value::Array(Vec::new()));
        let arr = match slot {
            Value::Array(a) => a,
            other => return Err(type_error("Array", other, k)),
        };
        let reuse_last = match arr.last() {
            Some(Value::Hash(h)) => !hash_has_key(h, &child_key),
            _ => false,
        };
        if reuse_last {
            if let Some(Value::Hash(h)) = arr.last_mut() {
                normalize(h, Some(&child_key), v, depth + 1)?;
            }
        } else {
            let mut fresh = Params::new();
            let pushed = match normalize(&mut fresh, Some(&child_key), v, depth + 1)? {
                Ret::Nil => Value::Nil,
                Ret::Array(a) => a,
                Ret::Params => Value::Hash(fresh),
            };
            arr.push(pushed);
        }
    } else {
        let slot = ensure(params, k, || Value::Hash(Params::new()));
        let child = match slot {
            Value::Hash(h) => h,
            other => return Err(type_error("Hash", other, k)),
        };
        match normalize(child, Some(after), v, depth + 1)? {
            Ret::Params => {}
            Ret::Nil => {
                *slot = Value::Nil;
            }
            Ret::Array(a) => {
                *slot = a;
            }
        }
    }
    Ok(Ret::Params)
}

/// `params[k] ||= default`, returning the slot.
fn ensure<'a>(params: &'a mut Params, k: &[u8], default: impl FnOnce() -> Value) -> &'a mut Value {
    let idx = match params.index.get(k) {
        Some(&i) => {
            if params.entries[i].1.is_falsy() {
                params.entries[i].1 = default();
            }
            i
        }
        None => {
            params.index.insert(k.to_vec(), params.entries.len());
            params.entries.push((k.to_vec(), default()));
            params.entries.len() - 1
        }
    };
    &mut params.entries[idx].1
}

/// Rack's `params_hash_has_key?`.
fn hash_has_key(hash: &Params, key: &[u8]) -> bool {
    if key.windows(2).any(|w| w == b"[]") {
        return false;
    }
    let mut current = hash;
    let parts: Vec<&[u8]> = key
        .split(|&b| b == b'[' || b == b']')
        .filter(|p| !p.is_empty())
        .collect();
    for (i, part) in parts.iter().enumerate() {
        match current.get_bytes(part) {
            Some(v) => {
                if i + 1 < parts.len() {
                    match v {
                        Value::Hash(h) => current = h,
                        _ => return false,
                    }
                }
            }
            None => return false,
        }
    }
    true
}

/// Whether a multipart content type names a (non-empty) boundary.
pub(crate) fn has_boundary(content_type: &str) -> bool {
    boundary(content_type).is_some()
}

fn boundary(content_type: &str) -> Option<&str> {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k.trim().eq_ignore_ascii_case("boundary")).then(|| v.trim().trim_matches('"'))
        })
        .next()
        .filter(|b| !b.is_empty())
}

/// Parses a `multipart/form-data` body into `(name, value)` pairs and expands them
/// like Rack does. Files are kept as plain string values.
pub(crate) fn parse_multipart(
    body: &[u8],
    content_type: &str,
    params: &mut Params,
) -> Result<(), ParseError> {
    let boundary = boundary(content_type)
        .ok_or_else(|| ParseError::Multipart("bad content body".to_string()))?;
    if body.is_empty() {
        // Rack raises its EmptyContentError without a message.
        return Err(ParseError::Multipart(
            "Rack::Multipart::EmptyContentError".to_string(),
        ));
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let bad = || ParseError::Multipart("bad content body".to_string());
    let mut rest = match find_sub(body, &delimiter) {
        Some(i) => &body[i + delimiter.len()..],
        None => return Err(bad()),
    };
    loop {
        if rest.starts_with(b"--") {
            return Ok(());
        }
        rest = rest.strip_prefix(b"\r\n").ok_or_else(bad)?;
        let head_end = find_sub(rest, b"\r\n\r\n").ok_or_else(bad)?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let after_head = &rest[head_end + 4..];
        let mut end_delim = b"\r\n".to_vec();
        end_delim.extend_from_slice(&delimiter);
        let content_end = find_sub(after_head, &end_delim).ok_or_else(bad)?;
        let content = &after_head[..content_end];
        rest = &after_head[content_end + end_delim.len()..];
        if let Some(name) = disposition_name(&head) {
            normalize(
                params,
                Some(name.as_bytes()),
                Value::Str(content.to_vec()),
                0,
            )?;
        }
    }
}

fn disposition_name(head: &str) -> Option<String> {
    head.split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
        .and_then(|l| {
            l.split(';').skip(1).find_map(|p| {
                let (k, v) = p.split_once('=')?;
                (k.trim() == "name").then(|| v.trim().trim_matches('"').to_string())
            })
        })
}

fn find_sub(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(qs: &str) -> Result<Params, ParseError> {
        let mut p = Params::new();
        parse_nested_query(qs.as_bytes(), &mut p).map(|_| p)
    }

    fn s(v: &str) -> Value {
        Value::Str(v.as_bytes().to_vec())
    }

    #[test]
    fn flat_and_nested() {
        let p = parse("provider_key=pk&usage[hits]=1&usage[orders]=2&log[code]=200").unwrap();
        assert_eq!(p.str("provider_key"), Some("pk"));
        let usage = p.get("usage").unwrap().as_hash().unwrap();
        let keys: Vec<&[u8]> = usage.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"hits".as_slice(), b"orders".as_slice()]);
        assert_eq!(usage.get("orders"), Some(&s("2")));
    }

    #[test]
    fn nil_and_empty_values() {
        let p = parse("no_body&app_key=&&=x&a=1=2").unwrap();
        assert_eq!(p.get("no_body"), Some(&Value::Nil));
        assert_eq!(p.get("app_key"), Some(&s("")));
        assert_eq!(p.get("a"), Some(&s("1=2")));
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn spaces_after_ampersand_are_dropped() {
        let p = parse("a=1&  b=2").unwrap();
        assert_eq!(p.str("b"), Some("2"));
    }

    #[test]
    fn later_keys_replace_and_keep_position() {
        let p = parse("a=1&b=2&a=3").unwrap();
        let keys: Vec<&[u8]> = p.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"a".as_slice(), b"b".as_slice()]);
        assert_eq!(p.str("a"), Some("3"));
    }

    #[test]
    fn transactions_hash() {
        let p = parse(
            "transactions[0][app_id]=a&transactions[0][usage][hits]=1&transactions[1][user_key]=k",
        )
        .unwrap();
        let tx = p.get("transactions").unwrap().as_hash().unwrap();
        assert_eq!(tx.len(), 2);
        let t0 = tx.get("0").unwrap().as_hash().unwrap();
        assert_eq!(t0.str("app_id"), Some("a"));
    }

    #[test]
    fn arrays() {
        let p = parse("a[]=1&a[]=2&b[][x]=1&b[][y]=2&b[][x]=3").unwrap();
        assert_eq!(p.get("a"), Some(&Value::Array(vec![s("1"), s("2")])));
        match p.get("b") {
            Some(Value::Array(items)) => assert_eq!(items.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_hash_is_a_type_error() {
        match parse("usage[]=1&usage[hits]=1") {
            Err(ParseError::Type {
                hash_got_array: true,
                message,
            }) => assert_eq!(message, "expected Hash (got Array) for param `usage'"),
            other => panic!("unexpected {other:?}"),
        }
        match parse("usage=1&usage[hits]=1") {
            Err(ParseError::Type {
                hash_got_array: false,
                message,
            }) => assert_eq!(message, "expected Hash (got String) for param `usage'"),
            other => panic!("unexpected {other:?}"),
        }
        // A nil value is replaced, not an error.
        assert!(parse("usage&usage[hits]=1").is_ok());
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(parse("a=%41%42").unwrap().str("a"), Some("AB"));
        assert_eq!(parse("a=%4"), Err(ParseError::InvalidPercentEncoding));
        assert_eq!(parse("a%zz=1"), Err(ParseError::InvalidPercentEncoding));
        assert_eq!(parse("a=value1%"), Err(ParseError::InvalidPercentEncoding));
        // an encoded '=' stays in the key
        assert_eq!(parse("a%3Db=1").unwrap().str("a=b"), Some("1"));
    }

    #[test]
    fn invalid_utf8_is_kept() {
        let p = parse("user_key=%ff%fe").unwrap();
        assert!(!p.is_valid_utf8());
        assert_eq!(p.get("user_key"), Some(&Value::Str(vec![0xff, 0xfe])));
    }

    #[test]
    fn limits() {
        let many = vec!["a=1"; PARAMS_LIMIT + 1].join("&");
        match parse(&many) {
            Err(ParseError::Limit(m)) => {
                assert_eq!(
                    m,
                    "total number of query parameters (4097) exceeds limit (4096)"
                )
            }
            other => panic!("unexpected {other:?}"),
        }
        let ok = vec!["a=1"; PARAMS_LIMIT].join("&");
        assert!(parse(&ok).is_ok());
        let deep = format!("a{}=1", "[x]".repeat(DEPTH_LIMIT));
        assert!(matches!(parse(&deep), Err(ParseError::Limit(_))));
        let fine = format!("a{}=1", "[x]".repeat(DEPTH_LIMIT - 1));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn odd_names() {
        let p = parse("a[=1&[b]=2&c]=3").unwrap();
        assert_eq!(p.str("a["), Some("1"));
        assert_eq!(p.str("[b]"), Some("2"));
        assert_eq!(p.str("c]"), Some("3"));
    }

    #[test]
    fn multipart_form() {
        let body = b"--XX\r\nContent-Disposition: form-data; name=\"provider_key\"\r\n\r\npk\r\n--XX\r\nContent-Disposition: form-data; name=\"transactions[0][usage][hits]\"\r\n\r\n3\r\n--XX--\r\n";
        let mut p = Params::new();
        parse_multipart(body, "multipart/form-data; boundary=XX", &mut p).unwrap();
        assert_eq!(p.str("provider_key"), Some("pk"));
        assert!(parse_multipart(b"junk", "multipart/form-data; boundary=XX", &mut p).is_err());
    }

    #[test]
    fn parse_nested_query_examples() {
        let mut p = Params::new();
        parse_nested_query(b"usage[hits]=1&usage[orders]=%232&app_id=a+b", &mut p).unwrap();
        let usage = p.get("usage").and_then(Value::as_hash).unwrap();
        assert_eq!(usage.str("orders"), Some("#2"));
        assert_eq!(p.str("app_id"), Some("a b"));
    }
}
