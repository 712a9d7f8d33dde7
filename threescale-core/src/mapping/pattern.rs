//! Mapping-rule patterns: APIcast's `regexpify` and a fast matcher for the
//! patterns that need no regex engine.

use super::path::is_placeholder_byte;

/// The regex a placeholder becomes (after APIcast's `.` escaping).
pub(crate) const PLACEHOLDER_REGEX: &str = r"([\w\-\.~%!$&'()*+,;=@:]+)";

/// Characters that make a pattern need the regex engine (besides a final `$`).
const META: &[u8] = b"\\*+()[]|^$";

/// A pattern split as APIcast reads it: slashes collapsed, query cut off,
/// placeholders found.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    /// Literal text between placeholders (`parts.len() == placeholders + 1`).
    pub parts: Vec<String>,
    /// The text after the first `?` of the original pattern, if any.
    pub query: Option<&'a str>,
}

/// Splits `pattern` (already checked to start with `/`) into literal parts and
/// placeholders, as `regexpify` does: collapse `//+`, cut at the first `?`,
/// replace each `\{.+?\}`. Leftover braces are an error.
pub(crate) fn parse(pattern: &str) -> Result<Parsed<'_>, String> {
    let (path, query) = match pattern.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pattern, None),
    };
    // Collapsing slashes and cutting the query commute: neither touches the other.
    let mut collapsed = String::with_capacity(path.len());
    let mut prev_slash = false;
    for c in path.chars() {
        if c == '/' {
            if prev_slash {
                continue;
            }
            prev_slash = true;
        } else {
            prev_slash = false;
        }
        collapsed.push(c);
    }

    let bytes = collapsed.as_bytes();
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut last = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' {
            // `\{.+?\}`: the first `}` at least two bytes on, no newline between.
            let mut j = i + 1;
            let mut close = None;
            while j < bytes.len() && bytes[j] != b'\n' {
                if bytes[j] == b'}' && j >= i + 2 {
                    close = Some(j);
                    break;
                }
                j += 1;
            }
            if let Some(j) = close {
                current.push_str(&collapsed[last..i]);
                parts.push(std::mem::take(&mut current));
                i = j + 1;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    current.push_str(&collapsed[last..]);
    parts.push(current);

    for part in &parts {
        if let Some(pos) = part.find(['{', '}']) {
            let what = if part[pos..].starts_with("{}") {
                "an empty placeholder `{}`".to_string()
            } else {
                format!("a `{}` without its pair", &part[pos..pos + 1])
            };
            return Err(format!(
                "unbalanced braces: {what} (placeholders are `{{name}}`)"
            ));
        }
    }
    Ok(Parsed { parts, query })
}

/// One piece of a simple pattern.
#[derive(Clone, Debug)]
pub(crate) enum Piece {
    /// Literal bytes.
    Lit(Box<[u8]>),
    /// `n` adjacent placeholders: at least `n` placeholder characters.
    Var(usize),
}

/// How a rule's path is matched.
#[derive(Clone, Debug)]
pub(crate) enum PathMatcher {
    /// Literals and placeholders only, optionally anchored with a final `$`.
    Simple {
        pieces: Box<[Piece]>,
        anchored: bool,
    },
    /// Anything else: the regex APIcast builds, run by the `regex` crate.
    Regex(regex::bytes::Regex),
}

/// A compiled path pattern and the literal prefix every matching path starts with.
#[derive(Clone, Debug)]
pub(crate) struct CompiledPath {
    pub matcher: PathMatcher,
    pub prefix: Box<[u8]>,
}

/// The regex source APIcast runs for these parts (with the leading `^`).
pub(crate) fn regex_source(parts: &[String]) -> String {
    let mut re = String::from("^");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            re.push_str(PLACEHOLDER_REGEX);
        }
        for c in part.chars() {
            if c == '.' {
                re.push_str(r"\.");
            } else {
                re.push(c);
            }
        }
    }
    re
}

/// Compiles the parsed parts.
pub(crate) fn compile(parts: &[String]) -> Result<CompiledPath, String> {
    if let Some(simple) = simple(parts) {
        return Ok(simple);
    }
    check_pcre_only_syntax(parts)?;
    let source = regex_source(parts);
    let regex = regex::bytes::RegexBuilder::new(&source)
        .unicode(false)
        .size_limit(1 << 20)
        .build()
        .or_else(|_| {
            // Non-ASCII inside a class needs Unicode mode. The matched path is
            // always ASCII, where both modes agree.
            regex::bytes::RegexBuilder::new(&source)
                .size_limit(1 << 20)
                .build()
        })
        .map_err(|e| {
            let msg = e.to_string();
            let msg = msg
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .trim_start_matches("error: ")
                .to_string();
            format!("not a valid regular expression ({source}): {msg}")
        })?;
    Ok(CompiledPath {
        matcher: PathMatcher::Regex(regex),
        prefix: regex_prefix(parts),
    })
}

/// The simple form, when the pattern has no regex syntax but a final `$` and
/// no placeholder–literal–placeholder run inside one segment.
fn simple(parts: &[String]) -> Option<CompiledPath> {
    let last = parts.len() - 1;
    let mut anchored = false;
    for (i, part) in parts.iter().enumerate() {
        let mut text = part.as_bytes();
        if i == last && text.last() == Some(&b'$') {
            text = &text[..text.len() - 1];
            anchored = true;
        }
        if text.iter().any(|b| META.contains(b)) {
            return None;
        }
    }
    let mut pieces: Vec<Piece> = Vec::with_capacity(parts.len() * 2);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            match pieces.last_mut() {
                Some(Piece::Var(n)) => *n += 1,
                _ => pieces.push(Piece::Var(1)),
            }
        }
        let mut text = part.as_bytes();
        if i == last && anchored {
            text = &text[..text.len() - 1];
        }
        if !text.is_empty() {
            pieces.push(Piece::Lit(text.into()));
        }
    }
    // A placeholder, a literal without `/`, then another placeholder would need
    // nested backtracking: leave those to the regex engine (linear time).
    for w in pieces.windows(3) {
        if let [Piece::Var(_), Piece::Lit(l), Piece::Var(_)] = w
            && !l.contains(&b'/')
        {
            return None;
        }
    }
    let prefix = match pieces.first() {
        Some(Piece::Lit(l)) => l.clone(),
        _ => Box::default(),
    };
    Some(CompiledPath {
        matcher: PathMatcher::Simple {
            pieces: pieces.into(),
            anchored,
        },
        prefix,
    })
}

/// The literal text every match starts with, for a regex pattern.
fn regex_prefix(parts: &[String]) -> Box<[u8]> {
    if parts.iter().any(|p| p.contains('|')) {
        return Box::default();
    }
    let first = &parts[0];
    let end = first
        .char_indices()
        .find(|(_, c)| c.is_ascii() && META.contains(&(*c as u8)));
    let prefix = match end {
        None => first.as_str(),
        Some((i, c)) if c == '*' || c == '+' => {
            // The quantifier applies to the character before it.
            let head = &first[..i];
            match head.char_indices().next_back() {
                Some((j, _)) => &head[..j],
                None => head,
            }
        }
        Some((i, _)) => &first[..i],
    };
    prefix.as_bytes().into()
}

/// Rejects quantifier sequences that PCRE reads differently from the `regex`
/// crate (`*+`, `++` are possessive in PCRE; `**`, `+*` are errors there).
fn check_pcre_only_syntax(parts: &[String]) -> Result<(), String> {
    for part in parts {
        let b = part.as_bytes();
        let mut i = 0;
        let mut in_class = false;
        let mut class_start = 0;
        while i < b.len() {
            let c = b[i];
            if c == b'\\' {
                i += 2;
                continue;
            }
            if in_class {
                // `]` right after `[` or `[^` is a literal.
                if c == b']' && i > class_start {
                    in_class = false;
                }
                i += 1;
                continue;
            }
            match c {
                b'[' => {
                    in_class = true;
                    class_start = i + 1;
                    if b.get(i + 1) == Some(&b'^') {
                        class_start += 1;
                    }
                }
                b'*' | b'+' if matches!(b.get(i + 1), Some(b'*' | b'+')) => {
                    return Err(format!(
                        "`{}` is PCRE-only quantifier syntax (possessive or repeated quantifier)",
                        &part[i..i + 2]
                    ));
                }
                _ => {}
            }
            i += 1;
        }
    }
    Ok(())
}

impl CompiledPath {
    /// Whether the normalised path `path` matches.
    #[inline]
    pub(super) fn is_match(&self, path: &[u8]) -> bool {
        match &self.matcher {
            PathMatcher::Simple { pieces, anchored } => match_pieces(pieces, *anchored, path, 0),
            PathMatcher::Regex(re) => re.is_match(path),
        }
    }
}

/// Matches `pieces` against `path[pos..]`. Recursion depth is bounded by the
/// number of pieces; backtracking happens only for a placeholder followed by a
/// literal, where it is linear in the placeholder run (see [`simple`]).
fn match_pieces(pieces: &[Piece], anchored: bool, path: &[u8], pos: usize) -> bool {
    let Some((first, rest)) = pieces.split_first() else {
        return !anchored || pos == path.len();
    };
    match first {
        Piece::Lit(lit) => {
            path.len() >= pos + lit.len()
                && path[pos..pos + lit.len()] == lit[..]
                && match_pieces(rest, anchored, path, pos + lit.len())
        }
        Piece::Var(min) => {
            let run = path[pos..]
                .iter()
                .take_while(|&&b| is_placeholder_byte(b))
                .count();
            if run < *min {
                return false;
            }
            let end = pos + run;
            match rest.first() {
                None => !anchored || end == path.len(),
                // The run stops at the first non-placeholder byte; a literal
                // starting with `/` can only start there.
                Some(Piece::Lit(lit)) if lit[0] == b'/' => match_pieces(rest, anchored, path, end),
                Some(_) => (pos + min..=end)
                    .rev()
                    .any(|k| match_pieces(rest, anchored, path, k)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(p: &str) -> CompiledPath {
        compile(&parse(p).unwrap().parts).unwrap()
    }

    #[test]
    fn regexpify_like_apicast() {
        let parts = parse("//foo///{id}.json?x={y}").unwrap();
        assert_eq!(parts.parts, vec!["/foo/".to_string(), ".json".to_string()]);
        assert_eq!(parts.query, Some("x={y}"));
        assert_eq!(
            regex_source(&parts.parts),
            format!(r"^/foo/{PLACEHOLDER_REGEX}\.json")
        );
        assert!(parse("/a{").is_err());
        assert!(parse("/a}").is_err());
        assert!(parse("/a{}").is_err());
        assert_eq!(parse("/{a{b}").unwrap().parts.len(), 2);
    }

    #[test]
    fn simple_and_regex_kinds() {
        assert!(matches!(
            compiled("/a/{b}/c$").matcher,
            PathMatcher::Simple { .. }
        ));
        assert!(matches!(
            compiled("/{a}.{b}").matcher,
            PathMatcher::Regex(_)
        ));
        assert!(matches!(compiled("/a*").matcher, PathMatcher::Regex(_)));
        assert_eq!(&*compiled("/foo*").prefix, b"/fo");
        assert_eq!(&*compiled("/a(b|c)").prefix, b"");
        assert_eq!(&*compiled("/v1/(x)").prefix, b"/v1/");
        assert!(compile(&parse("/a*+").unwrap().parts).is_err());
        assert!(compile(&parse("/a(").unwrap().parts).is_err());
    }

    #[test]
    fn simple_matching() {
        let p = compiled("/foo/{id}.json");
        assert!(p.is_match(b"/foo/1.2.json"));
        assert!(p.is_match(b"/foo/1.json/x"));
        assert!(!p.is_match(b"/foo/.json"));
        let p = compiled("/{a}{b}$");
        assert!(p.is_match(b"/ab"));
        assert!(!p.is_match(b"/a"));
        let p = compiled("/x/{id}$");
        assert!(p.is_match(b"/x/1"));
        assert!(!p.is_match(b"/x/1/"));
        assert!(!p.is_match(b"/x/"));
    }
}
