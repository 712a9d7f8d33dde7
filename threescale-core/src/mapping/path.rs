//! The request path as the gateway matches it: nginx's `$uri` (percent-decoded,
//! slashes merged, dot segments resolved), re-escaped with nginx's
//! `ngx_escape_uri(NGX_ESCAPE_URI)`.

use std::borrow::Cow;

/// Whether `ngx_escape_uri` with the `NGX_ESCAPE_URI` table escapes `b`:
/// bytes 0x00–0x20, `"`, `#`, `%`, `<`, `>`, `?`, `\`, `^`, `` ` ``, `{`, `|`,
/// `}` and 0x7F–0xFF.
#[inline]
pub(crate) fn needs_escape(b: u8) -> bool {
    b <= 0x20
        || b >= 0x7F
        || matches!(
            b,
            b'"' | b'#' | b'%' | b'<' | b'>' | b'?' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
        )
}

/// Whether `b` belongs to the placeholder class `[\w\-.~%!$&'()*+,;=@:]`.
#[inline]
pub(crate) fn is_placeholder_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'_' | b'-'
                | b'.'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b'@'
                | b':'
        )
}

#[inline]
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Normalises a raw request path (percent-encoded, as received) into the string
/// the gateway matches mapping rules against.
///
/// Steps (nginx `ngx_http_parse_complex_uri` with `merge_slashes on`, then
/// APIcast's `escape_uri`):
/// - `%XX` is decoded (upper- or lowercase hex); `%2F` becomes a real `/`
///   that takes part in slash merging and dot segments; a decoded `%`, `#` or
///   `?` is kept as a plain character;
/// - runs of `/` are merged; `.` and `..` segments are resolved;
/// - a raw `?` or `#` ends the path;
/// - the result is escaped again: bytes 0x00–0x20 and 0x7F–0xFF, `"`, `#`,
///   `%`, `<`, `>`, `?`, `\`, `^`, `` ` ``, `{`, `|`, `}` become `%XX` (uppercase).
///
/// Where nginx would answer `400 Bad Request` (an invalid `%` escape, `%00`, a
/// `..` above the root), this function does not fail: a `%` not followed by two
/// hex digits is kept as a literal `%` (escaped as `%25`), `%00` is kept as a
/// byte (`%00`), and `..` above the root stays at the root. An empty path is `/`.
///
/// The result is always ASCII. When nothing changes, no allocation is made.
///
/// ```
/// use threescale_core::mapping::normalize_path;
/// assert_eq!(normalize_path("/orders/12"), "/orders/12");
/// assert_eq!(normalize_path("/foo%20/bar/"), "/foo%20/bar/");
/// assert_eq!(normalize_path("//a/./b/../c%2Fd"), "/a/c/d");
/// assert_eq!(normalize_path("/caf%c3%a9"), "/caf%C3%A9");
/// assert_eq!(normalize_path("/100%25"), "/100%25");
/// ```
pub fn normalize_path(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    if is_already_normal(bytes) {
        return Cow::Borrowed(raw);
    }
    let uri = nginx_uri(bytes);
    let mut out = String::with_capacity(uri.len() + 8);
    for &b in &uri {
        if needs_escape(b) {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0x0F) as usize] as char);
        } else {
            out.push(b as char);
        }
    }
    Cow::Owned(out)
}

/// True when normalising `raw` would give `raw` back: it starts with `/`, has
/// no byte that is decoded or escaped, no `//` and no `.`/`..` segment.
fn is_already_normal(raw: &[u8]) -> bool {
    if raw.first() != Some(&b'/') {
        return false;
    }
    let mut prev_slash = false;
    for (i, &b) in raw.iter().enumerate() {
        if needs_escape(b) {
            return false;
        }
        match b {
            b'/' => {
                if prev_slash {
                    return false;
                }
                prev_slash = true;
            }
            b'.' if prev_slash => {
                let rest = &raw[i + 1..];
                let dot_segment = matches!(rest, [] | [b'/', ..] | [b'.'] | [b'.', b'/', ..]);
                if dot_segment {
                    return false;
                }
                prev_slash = false;
            }
            _ => prev_slash = false,
        }
    }
    true
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Usual,
    Slash,
    Dot,
    DotDot,
}

/// nginx's `$uri` for a raw path: decoded, merged, dot segments resolved.
fn nginx_uri(raw: &[u8]) -> Vec<u8> {
    let mut u: Vec<u8> = Vec::with_capacity(raw.len() + 1);
    if raw.is_empty() {
        u.push(b'/');
        return u;
    }
    let mut state = State::Usual;
    let mut i = 0;
    while i < raw.len() {
        let mut ch = raw[i];
        i += 1;
        match ch {
            // A raw `?` starts the arguments, a raw `#` the fragment.
            b'?' | b'#' => break,
            b'%' => {
                let hi = raw.get(i).copied().and_then(hex_value);
                let lo = raw.get(i + 1).copied().and_then(hex_value);
                // A bad escape is a 400 in nginx; here it stays a literal `%`.
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    i += 2;
                    let decoded = (hi << 4) | lo;
                    if matches!(decoded, b'%' | b'#' | b'?') {
                        // nginx writes these as they are and goes on as usual.
                        u.push(decoded);
                        state = State::Usual;
                        continue;
                    }
                    // Any other decoded byte is processed in the current state.
                    ch = decoded;
                }
            }
            _ => {}
        }
        state = step(&mut u, state, ch);
    }
    match state {
        State::Dot => {
            u.pop();
        }
        State::DotDot => resolve_dot_dot(&mut u),
        State::Usual | State::Slash => {}
    }
    u
}

/// One step of the state machine for a (possibly decoded) byte.
#[inline]
fn step(u: &mut Vec<u8>, state: State, ch: u8) -> State {
    match (state, ch) {
        (State::Usual, b'/') => {
            u.push(ch);
            State::Slash
        }
        (State::Usual, _) => {
            u.push(ch);
            State::Usual
        }
        (State::Slash, b'/') => State::Slash,
        (State::Slash, b'.') => {
            u.push(ch);
            State::Dot
        }
        (State::Dot, b'/') => {
            u.pop();
            State::Slash
        }
        (State::Dot, b'.') => {
            u.push(ch);
            State::DotDot
        }
        (State::DotDot, b'/') => {
            resolve_dot_dot(u);
            State::Slash
        }
        (State::Slash | State::Dot | State::DotDot, _) => {
            u.push(ch);
            State::Usual
        }
    }
}

/// `u` ends with `/..`: drop it and the segment before it, keeping the slash
/// that precedes that segment. Above the root it stays at the root.
fn resolve_dot_dot(u: &mut Vec<u8>) {
    let base = u.len().saturating_sub(3);
    match u[..base].iter().rposition(|&b| b == b'/') {
        Some(pos) => u.truncate(pos + 1),
        None if u.first() == Some(&b'/') => u.truncate(1),
        None => u.clear(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples() {
        let cases = [
            ("/", "/"),
            ("", "/"),
            ("/foo /test", "/foo%20/test"),
            ("/foo%20/bar/", "/foo%20/bar/"),
            ("/one/12%2012", "/one/12%2012"),
            ("/a%2Fb", "/a/b"),
            ("/a%2f%2F/b", "/a/b"),
            ("/a%252F", "/a%252F"),
            ("/a%zz", "/a%25zz"),
            ("/a%2", "/a%252"),
            ("/a%", "/a%25"),
            ("/a/./b", "/a/b"),
            ("/a/.", "/a/"),
            ("/a/..", "/"),
            ("/a/b/../c", "/a/c"),
            ("/../a", "/a"),
            ("/a/%2e%2E/b", "/b"),
            ("/a/.b", "/a/.b"),
            ("/a/..b", "/a/..b"),
            ("/a/...", "/a/..."),
            ("///a//b///", "/a/b/"),
            ("/a#frag", "/a"),
            ("/a%23b", "/a%23b"),
            ("/a%3Fb", "/a%3Fb"),
            ("/a%3fb", "/a%3Fb"),
            ("/$=!,;:@&'()*+~-._", "/$=!,;:@&'()*+~-._"),
            ("/\"<>\\^`{|}", "/%22%3C%3E%5C%5E%60%7B%7C%7D"),
            ("/%C3%A9", "/%C3%A9"),
            ("/é", "/%C3%A9"),
            ("/%00", "/%00"),
            ("/%7e", "/~"),
            ("/a/b/%2E%2E", "/a/"),
            ("/a/.%2e/", "/"),
            ("/[x]", "/[x]"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_path(raw), want, "raw {raw:?}");
        }
    }

    #[test]
    fn borrowed_when_unchanged() {
        assert!(matches!(
            normalize_path("/v1/orders/12.json"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(normalize_path("/a//b"), Cow::Owned(_)));
    }
}
