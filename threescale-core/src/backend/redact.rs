//! Masking the secrets of a call out of everything the client reports.
//!
//! The backend echoes credentials in its messages (`user key "X" is invalid`),
//! a proxy may echo the request URL, and an XML excerpt may cut a secret in
//! half. [`Secrets`] holds every form in which a secret of the current call can
//! appear (as sent, XML-escaped, XML-unescaped, percent-encoded, form-encoded) and replaces each
//! occurrence, or each part of one that a window cuts, with `***`.
//!
//! Only whole values are masked: an occurrence (or a run of adjacent
//! occurrences) is masked when it does not continue a word on either side, so
//! the user key `k` masks `user key "k"` and `user_key=k&`, but never the `k`
//! of `user_key_invalid`. A word is a run of ASCII letters, digits and `_`.

use std::borrow::Cow;
use std::ops::Range;

use super::params::encode_component;

/// What replaces a secret.
pub(crate) const MASK: &str = "***";

/// Most characters an excerpt holds.
pub(crate) const EXCERPT_CHARS: usize = 64;

/// The secrets of one call, in every form they can take in a response.
#[derive(Clone, Debug, Default)]
pub(crate) struct Secrets {
    needles: Vec<Vec<u8>>,
    max_len: usize,
}

impl Secrets {
    /// No secrets.
    pub(crate) fn new() -> Self {
        Secrets::default()
    }

    /// Adds a secret value (empty values are ignored).
    pub(crate) fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut text_escaped = String::with_capacity(secret.len());
        let mut attr_escaped = String::with_capacity(secret.len());
        for c in secret.chars() {
            match c {
                '&' => {
                    text_escaped.push_str("&amp;");
                    attr_escaped.push_str("&amp;");
                }
                '<' => {
                    text_escaped.push_str("&lt;");
                    attr_escaped.push_str("&lt;");
                }
                '>' => {
                    text_escaped.push_str("&gt;");
                    attr_escaped.push_str("&gt;");
                }
                '"' => {
                    text_escaped.push(c);
                    attr_escaped.push_str("&quot;");
                }
                '\'' => {
                    text_escaped.push(c);
                    attr_escaped.push_str("&apos;");
                }
                _ => {
                    text_escaped.push(c);
                    attr_escaped.push(c);
                }
            }
        }
        let mut percent = String::new();
        encode_component(&mut percent, secret);
        let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        // The backend writes a reason unescaped and the parser resolves the
        // entities in it: a secret holding `&amp;` comes back as `&`.
        let unescaped = if secret.contains('&') {
            crate::xml::unescape_lenient(secret)
        } else {
            String::new()
        };
        let mut forms: Vec<Vec<u8>> = vec![secret.as_bytes().to_vec()];
        for form in [text_escaped, attr_escaped, percent, form, unescaped] {
            if !form.is_empty() && !forms.iter().any(|f| f == form.as_bytes()) {
                forms.push(form.into_bytes());
            }
        }
        for form in forms {
            self.max_len = self.max_len.max(form.len());
            self.needles.push(form);
        }
    }

    /// Byte ranges of `haystack` covered by whole secrets, sorted and merged
    /// (adjacent occurrences form one run), looking for occurrences that lie
    /// within `window` and judging word boundaries on all of `haystack`.
    fn ranges(&self, haystack: &[u8], window: Range<usize>) -> Vec<Range<usize>> {
        let window = window.start.min(haystack.len())..window.end.min(haystack.len());
        let area = &haystack[window.clone()];
        let mut found = Vec::new();
        for needle in &self.needles {
            if needle.len() > area.len() {
                continue;
            }
            let first = needle[0];
            for i in 0..=area.len() - needle.len() {
                if area[i] == first && area[i..].starts_with(needle) {
                    let start = window.start + i;
                    found.push(start..start + needle.len());
                }
            }
        }
        found.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(found.len());
        for r in found {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        merged.retain(|r| is_whole(haystack, r));
        merged
    }

    /// `text` with every occurrence of a secret replaced by `***`.
    pub(crate) fn redact<'s>(&self, text: &'s str) -> Cow<'s, str> {
        if self.needles.is_empty() {
            return Cow::Borrowed(text);
        }
        let ranges = self.ranges(text.as_bytes(), 0..text.len());
        if ranges.is_empty() {
            return Cow::Borrowed(text);
        }
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(text.len());
        let mut at = 0;
        for r in ranges {
            out.extend_from_slice(&bytes[at..r.start]);
            out.extend_from_slice(MASK.as_bytes());
            at = r.end;
        }
        out.extend_from_slice(&bytes[at..]);
        Cow::Owned(String::from_utf8_lossy(&out).into_owned())
    }

    /// Redacts an owned string in place of a copy.
    pub(crate) fn redact_owned(&self, text: String) -> String {
        match self.redact(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(redacted) => redacted,
        }
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the run `r` of `haystack` is a whole value: it neither continues a
/// word before it nor after it.
fn is_whole(haystack: &[u8], r: &Range<usize>) -> bool {
    let joined_before = r.start > 0 && is_word(haystack[r.start - 1]) && is_word(haystack[r.start]);
    let joined_after =
        r.end < haystack.len() && is_word(haystack[r.end]) && is_word(haystack[r.end - 1]);
    !joined_before && !joined_after
}

/// At most [`EXCERPT_CHARS`] printable characters of `body` around byte `pos`
/// (starting a little before it), with the secrets masked, including a secret
/// that the window only partly covers. Control characters become spaces.
pub(crate) fn excerpt(body: &[u8], pos: usize, secrets: &Secrets) -> String {
    const BEFORE: usize = 16;
    let len = body.len();
    let pos = pos.min(len);
    let mut start = pos.saturating_sub(BEFORE);
    // Do not start in the middle of a UTF-8 sequence.
    while start < pos && body.get(start).is_some_and(|b| b & 0xC0 == 0x80) {
        start += 1;
    }
    let end = start.saturating_add(EXCERPT_CHARS * 4).min(len);

    let lo = start.saturating_sub(secrets.max_len);
    let hi = end.saturating_add(secrets.max_len).min(len);
    let ranges = secrets.ranges(body, lo..hi);

    let mut out = Vec::with_capacity(end - start);
    let mut at = start;
    for r in ranges {
        let (rs, re) = (r.start, r.end);
        if re <= start || rs >= end {
            continue;
        }
        if rs > at {
            out.extend_from_slice(&body[at..rs]);
        }
        out.extend_from_slice(MASK.as_bytes());
        at = at.max(re.min(end));
    }
    if at < end {
        out.extend_from_slice(&body[at..end]);
    }
    String::from_utf8_lossy(&out)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(EXCERPT_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_form() {
        let mut s = Secrets::new();
        s.add("k&y <1>");
        s.add("");
        assert_eq!(
            s.redact(r#"application key "k&y <1>" is invalid"#),
            r#"application key "***" is invalid"#
        );
        assert_eq!(s.redact("raw k&amp;y &lt;1&gt; here"), "raw *** here");
        assert_eq!(s.redact("q=k%26y%20%3C1%3E"), "q=***");
        assert_eq!(s.redact("q=k%26y+%3C1%3E"), "q=***");
        assert_eq!(s.redact("nothing"), "nothing");
    }

    #[test]
    fn masks_whole_values_never_parts_of_words() {
        let mut s = Secrets::new();
        s.add("k");
        assert_eq!(s.redact("user_key_invalid"), "user_key_invalid");
        assert_eq!(
            s.redact(r#"user key "k" is invalid"#),
            r#"user key "***" is invalid"#
        );
        assert_eq!(s.redact("user_key=k&x=ka"), "user_key=***&x=ka");
        assert_eq!(s.redact("k"), "***");
        assert_eq!(s.redact("k-k"), "***-***");
        let mut s = Secrets::new();
        s.add("abc");
        s.add("def");
        // Adjacent secrets are one run, masked as a whole.
        assert_eq!(s.redact("abcdef in the body"), "*** in the body");
        assert_eq!(s.redact("xabcdef"), "xabcdef");
        // An edge of the secret that is not a word character is a boundary.
        let mut s = Secrets::new();
        s.add("-x=");
        assert_eq!(s.redact("a-x=b"), "a***b");
        assert_eq!(
            excerpt(b"user_key_invalid", 0, &Secrets::new()),
            "user_key_invalid"
        );
        let mut s = Secrets::new();
        s.add("e");
        assert_eq!(
            excerpt(b"user_key_invalid e", 4, &s),
            "user_key_invalid ***"
        );
    }

    #[test]
    fn excerpt_masks_cut_secrets() {
        let mut s = Secrets::new();
        s.add("SECRETVALUE");
        // The secret is a whole value (not glued to a word), as the backend
        // writes values: quoted, in a parameter or in an element.
        let body = b"0123456789abcde=SECRETVALUE tail";
        // The window starts in the middle of the secret.
        let e = excerpt(body, 16 + 16 + 5, &s);
        assert!(!e.contains("VALUE") && !e.contains("ALUE"), "{e}");
        assert!(e.starts_with("***"), "{e}");
        let e = excerpt(body, 0, &s);
        assert_eq!(e, "0123456789abcde=*** tail");
        let long = [b'x'; 500];
        assert_eq!(excerpt(&long, 200, &Secrets::new()).chars().count(), 64);
        assert_eq!(excerpt(b"a\nb\x00\xff", 0, &Secrets::new()), "a b \u{fffd}");
        assert_eq!(excerpt(b"", 10, &s), "");
    }
}
