//! The streaming parser behind [`super::parse_authorization`] and
//! [`super::parse_error`].
//!
//! One pass over a `quick_xml::Reader<&[u8]>`: text and attribute values are
//! borrowed from the input and only turned into `String`s when stored. Every
//! failure is a [`Fail`] (a static reason and a byte position); nothing here
//! can panic on any input.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use quick_xml::Reader;
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesEnd, BytesRef, BytesStart, Event};

use super::{
    AppKeys, Authorization, ErrorDocument, HierarchyMetric, OAuthApplication, Period, UsageReport,
};

/// Why and where parsing stopped.
#[derive(Debug)]
pub(crate) struct Fail {
    /// What went wrong (never contains input bytes).
    pub(crate) reason: Cow<'static, str>,
    /// Byte offset in the input near the problem.
    pub(crate) pos: usize,
}

/// A parsed document.
#[derive(Debug)]
pub(crate) enum Document {
    /// `<status>`.
    Status(Authorization),
    /// `<error>`.
    Error(ErrorDocument),
}

/// Which root element is acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Only `<status>`.
    Status,
    /// Only `<error>`.
    Error,
    /// Either.
    Any,
}

/// Parses `input` as a `<status>` or `<error>` document: a status document in
/// the backend's plain shape by [`super::fast`] (an `<error>` document too),
/// anything else with the reader.
pub(crate) fn parse(input: &[u8], expect: Expect) -> Result<Document, Fail> {
    if expect != Expect::Error
        && let Some(auth) = super::fast::status(input)
    {
        return Ok(Document::Status(auth));
    }
    if expect != Expect::Status
        && let Some(error) = super::fast::error(input)
    {
        return Ok(Document::Error(error));
    }
    parse_general(input, expect)
}

/// Parses `input` with the quick-xml reader.
pub(crate) fn parse_general(input: &[u8], expect: Expect) -> Result<Document, Fail> {
    let mut parser = Parser::new(input);
    let (root, empty) = parser.root()?;
    match root.name().as_ref() {
        b"status" if expect != Expect::Error => parser.status(empty).map(Document::Status),
        b"error" if expect != Expect::Status => parser.error(&root, empty).map(Document::Error),
        _ => Err(parser.fail_at(
            match expect {
                Expect::Status => "expected a <status> root element",
                Expect::Error => "expected an <error> root element",
                Expect::Any => "expected a <status> or <error> root element",
            },
            0,
        )),
    }
}

struct Parser<'a> {
    input: &'a [u8],
    reader: Reader<&'a [u8]>,
    /// Bytes jumped over by hand (the raw `<reason>` text), which the reader's
    /// own error offsets do not count.
    skipped: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8]) -> Self {
        let mut reader = Reader::from_reader(input);
        let config = reader.config_mut();
        config.trim_text(false);
        // End tags are checked by the parser itself: it knows which element it
        // is in, and it moves the reader past some end tags by hand.
        config.check_end_names = false;
        config.expand_empty_elements = false;
        // A lone `&` in text is kept as text rather than failing the document.
        config.allow_dangling_amp = true;
        Parser {
            input,
            reader,
            skipped: 0,
        }
    }

    /// Current byte offset (the reader consumes the slice as it goes).
    fn pos(&self) -> usize {
        self.input.len().saturating_sub(self.reader.get_ref().len())
    }

    fn fail(&self, reason: &'static str) -> Fail {
        self.fail_at(reason, self.pos())
    }

    fn fail_at(&self, reason: &'static str, pos: usize) -> Fail {
        Fail {
            reason: Cow::Borrowed(reason),
            pos: pos.min(self.input.len()),
        }
    }

    fn truncated(&self) -> Fail {
        self.fail("document ends before its root element is closed")
    }

    fn next(&mut self) -> Result<Event<'a>, Fail> {
        self.reader.read_event().map_err(|err| {
            let pos = usize::try_from(self.reader.error_position())
                .unwrap_or(usize::MAX)
                .saturating_add(self.skipped);
            Fail {
                reason: describe(&err),
                pos: pos.min(self.input.len()),
            }
        })
    }

    /// Skips the prolog and returns the root element.
    fn root(&mut self) -> Result<(BytesStart<'a>, bool), Fail> {
        loop {
            match self.next()? {
                Event::Start(e) => return Ok((e, false)),
                Event::Empty(e) => return Ok((e, true)),
                Event::Text(t) => {
                    if !t.iter().all(u8::is_ascii_whitespace) {
                        return Err(self.fail("text before the root element"));
                    }
                }
                Event::GeneralRef(_) | Event::CData(_) => {
                    return Err(self.fail("text before the root element"));
                }
                Event::End(_) => return Err(self.fail("end tag before the root element")),
                Event::Eof => {
                    return Err(if self.input.iter().all(u8::is_ascii_whitespace) {
                        self.fail_at("empty document", 0)
                    } else {
                        self.fail("no root element")
                    });
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            }
        }
    }

    /// Fails unless `end` closes `name`.
    fn end(&self, end: &BytesEnd<'_>, name: &[u8]) -> Result<(), Fail> {
        if end.name().as_ref() == name {
            Ok(())
        } else {
            Err(self.fail("mismatched end tag"))
        }
    }

    /// Skips the rest of the element `name` whose start tag was just read.
    fn skip(&mut self, name: &[u8]) -> Result<(), Fail> {
        let mut depth = 1usize;
        loop {
            match self.next()? {
                Event::Start(_) => depth += 1,
                Event::End(e) => {
                    depth -= 1;
                    if depth == 0 {
                        return self.end(&e, name);
                    }
                }
                Event::Eof => return Err(self.truncated()),
                _ => {}
            }
        }
    }

    /// The text of the leaf element `name` whose start tag was just read.
    ///
    /// Fast path: plain text (no `&`) directly followed by `</name>` is taken
    /// from the input as is, and the reader moved past the end tag; anything
    /// else goes through the reader's events ([`Parser::text`]).
    fn leaf(&mut self, name: &[u8]) -> Result<Cow<'a, str>, Fail> {
        let rest: &'a [u8] = self.reader.get_ref();
        if let Some(lt) = rest.iter().position(|&b| b == b'<') {
            let (text, tail) = rest.split_at(lt);
            let end_len = name.len() + 3;
            if tail.len() >= end_len
                && tail[1] == b'/'
                && &tail[2..end_len - 1] == name
                && tail[end_len - 1] == b'>'
                && !text.contains(&b'&')
            {
                let text =
                    std::str::from_utf8(text).map_err(|_| self.fail("invalid UTF-8 in text"))?;
                *self.reader.get_mut() = &tail[end_len..];
                self.skipped = self.skipped.saturating_add(lt + end_len);
                return Ok(Cow::Borrowed(text));
            }
        }
        self.text(name)
    }

    /// The text content of the element `name` whose start tag was just read,
    /// entities resolved. Borrowed from the input unless it had to be assembled.
    fn text(&mut self, name: &[u8]) -> Result<Cow<'a, str>, Fail> {
        let mut acc: Cow<'a, str> = Cow::Borrowed("");
        loop {
            match self.next()? {
                Event::Text(t) => {
                    let piece = t.decode().map_err(|_| self.fail("invalid UTF-8 in text"))?;
                    append(&mut acc, piece);
                }
                Event::CData(c) => {
                    let piece = c
                        .decode()
                        .map_err(|_| self.fail("invalid UTF-8 in CDATA"))?;
                    append(&mut acc, piece);
                }
                Event::GeneralRef(r) => self.push_ref(&mut acc, &r)?,
                Event::Start(e) => self.skip(e.name().as_ref())?,
                Event::End(e) => {
                    self.end(&e, name)?;
                    return Ok(acc);
                }
                Event::Eof => return Err(self.truncated()),
                _ => {}
            }
        }
    }

    fn push_ref(&self, acc: &mut Cow<'a, str>, r: &BytesRef<'a>) -> Result<(), Fail> {
        if r.is_char_ref() {
            match r.resolve_char_ref() {
                Ok(Some(c)) => acc.to_mut().push(c),
                _ => return Err(self.fail("invalid character reference")),
            }
            return Ok(());
        }
        let c = match &**r {
            b"amp" => '&',
            b"lt" => '<',
            b"gt" => '>',
            b"quot" => '"',
            b"apos" => '\'',
            other => {
                // An unknown entity is kept as written.
                let name = std::str::from_utf8(other)
                    .map_err(|_| self.fail("invalid UTF-8 in entity reference"))?;
                let s = acc.to_mut();
                s.push('&');
                s.push_str(name);
                s.push(';');
                return Ok(());
            }
        };
        acc.to_mut().push(c);
        Ok(())
    }

    /// An attribute's value, entities resolved. apisonator writes the
    /// `app_keys` attributes without escaping, so a value that is not valid
    /// escaped XML (a raw `&`) is read leniently, as the backend wrote it.
    fn attr_value(&self, attr: &Attribute<'_>) -> Result<String, Fail> {
        match attr.decode_and_unescape_value(self.reader.decoder()) {
            Ok(value) => Ok(value.into_owned()),
            Err(_) => std::str::from_utf8(&attr.value)
                .map(unescape_lenient)
                .map_err(|_| self.fail("invalid attribute value")),
        }
    }

    /// The raw text of the leaf element `name` whose start tag was just read:
    /// everything up to the next `</name>` (the backend may write `<` and `&`
    /// in it unescaped), entities resolved leniently. The reader is moved
    /// past the end tag.
    fn raw_leaf(&mut self, name: &[u8]) -> Result<String, Fail> {
        let start = self.pos();
        let rest = self.input.get(start..).unwrap_or_default();
        let end_len = name.len() + 3;
        let Some(len) = rest.windows(end_len).position(|w| {
            w[0] == b'<' && w[1] == b'/' && &w[2..end_len - 1] == name && w[end_len - 1] == b'>'
        }) else {
            return Err(self.truncated());
        };
        let text =
            std::str::from_utf8(&rest[..len]).map_err(|_| self.fail("invalid UTF-8 in text"))?;
        let value = unescape_lenient(text);
        *self.reader.get_mut() = &rest[len + end_len..];
        self.skipped = self.skipped.saturating_add(len + end_len);
        Ok(value)
    }

    fn attrs<'s>(
        &self,
        start: &'s BytesStart<'a>,
    ) -> impl Iterator<Item = Result<Attribute<'s>, Fail>> + 's {
        let pos = self.pos();
        let len = self.input.len();
        let mut attrs = start.attributes();
        attrs.with_checks(false);
        attrs.map(move |a| {
            a.map_err(|_| Fail {
                reason: Cow::Borrowed("invalid attribute"),
                pos: pos.min(len),
            })
        })
    }

    /// The raw text of `<reason>`, whose start tag was just read.
    ///
    /// The backend inserts the reason without XML escaping, and it may echo an
    /// application key, referrer or redirect URL that the caller sent. Every
    /// element after the reason is escaped, so the reason ends at the *last*
    /// `</reason>` of the document; the reader is moved there.
    fn raw_reason(&mut self) -> Result<String, Fail> {
        let start = self.pos();
        let rest = self.input.get(start..).unwrap_or_default();
        let Some(len) = last_reason_end(rest) else {
            return Err(self.truncated());
        };
        let raw = &rest[..len];
        // Continue at `</reason>`, so the reader closes the element itself.
        *self.reader.get_mut() = &rest[len..];
        self.skipped = self.skipped.saturating_add(len);
        let text = std::str::from_utf8(raw).map_err(|_| self.fail("invalid UTF-8 in <reason>"))?;
        let reason = unescape_lenient(text);
        match self.next()? {
            Event::End(e) if e.name().as_ref() == b"reason" => Ok(reason),
            _ => Err(self.fail("malformed </reason>")),
        }
    }

    /// The children of `<status>`.
    fn status(&mut self, empty: bool) -> Result<Authorization, Fail> {
        let mut out = Authorization::default();
        let mut authorized = None;
        let mut open = !empty;
        while open {
            match self.next()? {
                Event::Start(e) => match e.name().as_ref() {
                    b"authorized" => {
                        if authorized.is_some() {
                            return Err(self.fail("more than one <authorized>"));
                        }
                        let at = self.pos();
                        let text = self.leaf(b"authorized")?;
                        authorized = Some(match text.trim() {
                            "true" => true,
                            "false" => false,
                            _ => return Err(self.fail_at("<authorized> is not true or false", at)),
                        });
                    }
                    b"reason" => out.reason = Some(self.raw_reason()?),
                    b"plan" => {
                        let text = self.leaf(b"plan")?;
                        out.plan = (!text.is_empty()).then(|| text.into_owned());
                    }
                    b"usage_reports" => self.usage_reports(&mut out.usage_reports)?,
                    b"application" => out.application = Some(self.application()?),
                    b"app_keys" => out.app_keys = Some(self.app_keys(&e, false)?),
                    b"hierarchy" => out.hierarchy = Some(self.hierarchy()?),
                    other => self.skip(other)?,
                },
                Event::Empty(e) => match e.name().as_ref() {
                    b"authorized" => return Err(self.fail("empty <authorized>")),
                    b"reason" => out.reason = Some(String::new()),
                    b"application" => out.application = Some(OAuthApplication::default()),
                    b"app_keys" => out.app_keys = Some(self.app_keys(&e, true)?),
                    b"hierarchy" => out.hierarchy = Some(Vec::new()),
                    _ => {}
                },
                Event::End(e) => {
                    self.end(&e, b"status")?;
                    open = false;
                }
                Event::Eof => return Err(self.truncated()),
                _ => {}
            }
        }
        match authorized {
            Some(authorized) => {
                out.authorized = authorized;
                Ok(out)
            }
            None => Err(self.fail("missing <authorized>")),
        }
    }

    fn usage_reports(&mut self, out: &mut Vec<UsageReport>) -> Result<(), Fail> {
        loop {
            match self.next()? {
                Event::Start(e) if e.name().as_ref() == b"usage_report" => {
                    let report = self.usage_report(&e, false)?;
                    out.push(report);
                }
                Event::Empty(e) if e.name().as_ref() == b"usage_report" => {
                    let report = self.usage_report(&e, true)?;
                    out.push(report);
                }
                Event::Start(e) => self.skip(e.name().as_ref())?,
                Event::End(e) => return self.end(&e, b"usage_reports"),
                Event::Eof => return Err(self.truncated()),
                _ => {}
            }
        }
    }

    fn usage_report(&mut self, start: &BytesStart<'a>, empty: bool) -> Result<UsageReport, Fail> {
        let mut metric = None;
        let mut period = None;
        let mut exceeded = false;
        for attr in self.attrs(start) {
            let attr = attr?;
            match attr.key.as_ref() {
                b"metric" => metric = Some(self.attr_value(&attr)?),
                b"period" => {
                    let name = std::str::from_utf8(&attr.value)
                        .map_err(|_| self.fail("invalid UTF-8 in period"))?;
                    period = Some(
                        Period::parse(name.trim()).ok_or_else(|| self.fail("unknown period"))?,
                    );
                }
                b"exceeded" => exceeded = attr.value.trim_ascii() == b"true",
                _ => {}
            }
        }
        let metric = metric.ok_or_else(|| self.fail("<usage_report> without metric"))?;
        let period = period.ok_or_else(|| self.fail("<usage_report> without period"))?;
        let (mut period_start, mut period_end, mut max_value, mut current_value) =
            (None, None, None, None);
        let mut open = !empty;
        while open {
            match self.next()? {
                Event::Start(e) => {
                    let at = self.pos();
                    match e.name().as_ref() {
                        b"period_start" => {
                            let t = self.leaf(b"period_start")?;
                            period_start = Some(
                                parse_time(t.as_bytes())
                                    .ok_or_else(|| self.fail_at("invalid date", at))?,
                            );
                        }
                        b"period_end" => {
                            let t = self.leaf(b"period_end")?;
                            period_end = Some(
                                parse_time(t.as_bytes())
                                    .ok_or_else(|| self.fail_at("invalid date", at))?,
                            );
                        }
                        b"max_value" => {
                            let t = self.leaf(b"max_value")?;
                            max_value = Some(
                                parse_u64(t.as_bytes())
                                    .ok_or_else(|| self.fail_at("invalid number", at))?,
                            );
                        }
                        b"current_value" => {
                            let t = self.leaf(b"current_value")?;
                            current_value = Some(
                                parse_u64(t.as_bytes())
                                    .ok_or_else(|| self.fail_at("invalid number", at))?,
                            );
                        }
                        other => self.skip(other)?,
                    }
                }
                Event::End(e) => {
                    self.end(&e, b"usage_report")?;
                    open = false;
                }
                Event::Eof => return Err(self.truncated()),
                _ => {}
            }
        }
        Ok(UsageReport {
            metric,
            period,
            period_start,
            period_end,
            max_value: max_value.ok_or_else(|| self.fail("<usage_report> without <max_value>"))?,
            current_value: current_value
                .ok_or_else(|| self.fail("<usage_report> without <current_value>"))?,
            exceeded,
        })
    }

    fn application(&mut self) -> Result<OAuthApplication, Fail> {
        let mut app = OAuthApplication::default();
        loop {
            match self.next()? {
                Event::Start(e) => match e.name().as_ref() {
                    // apisonator writes these two without escaping.
                    b"id" => app.id = self.raw_leaf(b"id")?,
                    b"key" => app.key = self.raw_leaf(b"key")?,
                    name @ (b"redirect_url" | b"redirect_uri") => {
                        app.redirect_url = self.leaf(name)?.into_owned();
                    }
                    other => self.skip(other)?,
                },
                Event::End(e) => {
                    self.end(&e, b"application")?;
                    return Ok(app);
                }
                Event::Eof => return Err(self.truncated()),
                _ => {}
            }
        }
    }

    fn app_keys(&mut self, start: &BytesStart<'a>, empty: bool) -> Result<AppKeys, Fail> {
        let mut keys = AppKeys::default();
        for attr in self.attrs(start) {
            let attr = attr?;
            match attr.key.as_ref() {
                b"app" => keys.app = self.attr_value(&attr)?,
                b"svc" => keys.service = self.attr_value(&attr)?,
                _ => {}
            }
        }
        let mut open = !empty;
        while open {
            match self.next()? {
                Event::Start(e) => {
                    if e.name().as_ref() == b"key" {
                        self.key_id(&e, &mut keys.keys)?;
                    }
                    self.skip(e.name().as_ref())?;
                }
                Event::Empty(e) if e.name().as_ref() == b"key" => {
                    self.key_id(&e, &mut keys.keys)?;
                }
                Event::End(e) => {
                    self.end(&e, b"app_keys")?;
                    open = false;
                }
                Event::Eof => return Err(self.truncated()),
                _ => {}
            }
        }
        Ok(keys)
    }

    fn key_id(&self, start: &BytesStart<'a>, keys: &mut Vec<String>) -> Result<(), Fail> {
        for attr in self.attrs(start) {
            let attr = attr?;
            if attr.key.as_ref() == b"id" {
                keys.push(self.attr_value(&attr)?);
            }
        }
        Ok(())
    }

    fn hierarchy(&mut self) -> Result<Vec<HierarchyMetric>, Fail> {
        let mut metrics = Vec::new();
        loop {
            match self.next()? {
                Event::Start(e) => {
                    if e.name().as_ref() == b"metric" {
                        metrics.push(self.hierarchy_metric(&e)?);
                    }
                    self.skip(e.name().as_ref())?;
                }
                Event::Empty(e) if e.name().as_ref() == b"metric" => {
                    metrics.push(self.hierarchy_metric(&e)?);
                }
                Event::End(e) => {
                    self.end(&e, b"hierarchy")?;
                    return Ok(metrics);
                }
                Event::Eof => return Err(self.truncated()),
                _ => {}
            }
        }
    }

    fn hierarchy_metric(&self, start: &BytesStart<'a>) -> Result<HierarchyMetric, Fail> {
        let mut name = None;
        let mut children = Vec::new();
        for attr in self.attrs(start) {
            let attr = attr?;
            match attr.key.as_ref() {
                b"name" => name = Some(self.attr_value(&attr)?),
                b"children" => {
                    let value = attr
                        .decode_and_unescape_value(self.reader.decoder())
                        .map_err(|_| self.fail("invalid attribute value"))?;
                    children = value.split_ascii_whitespace().map(String::from).collect();
                }
                _ => {}
            }
        }
        Ok(HierarchyMetric {
            name: name.ok_or_else(|| self.fail("hierarchy <metric> without name"))?,
            children,
        })
    }

    fn error(&mut self, root: &BytesStart<'a>, empty: bool) -> Result<ErrorDocument, Fail> {
        let mut code = String::new();
        for attr in self.attrs(root) {
            let attr = attr?;
            if attr.key.as_ref() == b"code" {
                code = self.attr_value(&attr)?;
            }
        }
        let message = if empty {
            String::new()
        } else {
            self.leaf(b"error")?.into_owned()
        };
        Ok(ErrorDocument { code, message })
    }
}

fn append<'a>(acc: &mut Cow<'a, str>, piece: Cow<'a, str>) {
    if acc.is_empty() {
        *acc = piece;
    } else {
        acc.to_mut().push_str(&piece);
    }
}

/// A fixed description of a reader error: quick-xml's own messages may quote
/// names or text from the input, which must not end up in logs.
fn describe(err: &quick_xml::Error) -> Cow<'static, str> {
    use quick_xml::Error;
    use quick_xml::errors::IllFormedError;
    match err {
        Error::Syntax(e) => Cow::Owned(format!("XML syntax error: {e}")),
        Error::IllFormed(IllFormedError::MismatchedEndTag { .. }) => {
            Cow::Borrowed("ill-formed XML: mismatched end tag")
        }
        Error::IllFormed(IllFormedError::UnmatchedEndTag(_)) => {
            Cow::Borrowed("ill-formed XML: end tag without start tag")
        }
        Error::IllFormed(_) => Cow::Borrowed("ill-formed XML"),
        Error::InvalidAttr(_) => Cow::Borrowed("invalid attribute"),
        Error::Encoding(_) => Cow::Borrowed("invalid UTF-8"),
        Error::Escape(_) => Cow::Borrowed("invalid entity or character reference"),
        Error::Namespace(_) => Cow::Borrowed("invalid namespace"),
        Error::Io(_) => Cow::Borrowed("I/O error while reading XML"),
    }
}

static REASON_END: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"</reason>"));

/// Offset of the last `</reason>` in `haystack`.
#[inline]
pub(super) fn last_reason_end(haystack: &[u8]) -> Option<usize> {
    REASON_END.find_iter(haystack).last()
}

/// Resolves the predefined entities and character references that are well
/// formed; anything else (a lone `&`, an unknown name) stays as written.
pub(crate) fn unescape_lenient(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let resolved = after
            .find(';')
            .filter(|&semi| semi <= 10)
            .and_then(|semi| resolve_entity(&after[..semi]).map(|c| (c, semi)));
        match resolved {
            Some((c, semi)) => {
                out.push(c);
                rest = &after[semi + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse::<u32>().ok()?,
            };
            char::from_u32(code).filter(|&c| c != '\0')
        }
    }
}

/// A non-negative integer, surrounding ASCII whitespace allowed.
pub(super) fn parse_u64(text: &[u8]) -> Option<u64> {
    let digits = text.trim_ascii();
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(n)
}

/// `%Y-%m-%d %H:%M:%S %z` (the backend always writes `+0000`), as UTC.
/// Surrounding ASCII whitespace allowed.
pub(super) fn parse_time(text: &[u8]) -> Option<DateTime<Utc>> {
    let b = text.trim_ascii();
    if b.len() == 25
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b' '
        && (b[20] == b'+' || b[20] == b'-')
    {
        let num = |at: usize, len: usize| -> Option<u32> {
            let mut n = 0u32;
            for &d in b.get(at..at + len)? {
                if !d.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + u32::from(d - b'0');
            }
            Some(n)
        };
        let year = i32::try_from(num(0, 4)?).ok()?;
        let date = NaiveDate::from_ymd_opt(year, num(5, 2)?, num(8, 2)?)?;
        let local = date.and_hms_opt(num(11, 2)?, num(14, 2)?, num(17, 2)?)?;
        let (off_h, off_m) = (num(21, 2)?, num(23, 2)?);
        if off_h > 23 || off_m > 59 {
            return None;
        }
        if off_h == 0 && off_m == 0 {
            return Some(local.and_utc());
        }
        let offset = i64::from(off_h * 3600 + off_m * 60);
        let offset = if b[20] == b'-' { -offset } else { offset };
        return Some(
            local
                .checked_sub_signed(TimeDelta::try_seconds(offset)?)?
                .and_utc(),
        );
    }
    let text = std::str::from_utf8(b).ok()?;
    DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S %z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn times() {
        let parse_time = |s: &str| super::parse_time(s.as_bytes());
        let t = parse_time("2010-05-15 00:00:00 +0000").unwrap();
        assert_eq!(t.to_rfc3339(), "2010-05-15T00:00:00+00:00");
        let t = parse_time("2010-04-22 23:55:45 +0200").unwrap();
        assert_eq!(t.to_rfc3339(), "2010-04-22T21:55:45+00:00");
        assert_eq!(
            parse_time("2010-04-22 23:55:45 +02:00").map(|t| t.to_rfc3339()),
            Some("2010-04-22T21:55:45+00:00".into())
        );
        assert!(parse_time("2010-13-22 23:55:45 +0000").is_none());
        assert!(parse_time("2010-02-30 00:00:00 +0000").is_none());
        assert!(parse_time("garbage").is_none());
        assert!(parse_time("").is_none());
        // Same instants as chrono for every day of a few years, leap days included.
        let mut day = chrono::NaiveDate::from_ymd_opt(1999, 12, 25).unwrap();
        while day.year() < 2002 {
            for (h, m, s, off) in [
                (0, 0, 0, "+0000"),
                (23, 59, 59, "-0130"),
                (12, 30, 5, "+1400"),
            ] {
                let text = format!("{} {h:02}:{m:02}:{s:02} {off}", day.format("%Y-%m-%d"));
                let chrono = chrono::DateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S %z")
                    .unwrap()
                    .with_timezone(&Utc);
                assert_eq!(parse_time(&text), Some(chrono), "{text}");
            }
            day = day.succ_opt().unwrap();
        }
        for text in [
            "2000-02-29 00:00:00 +0000",
            "0000-01-01 00:00:00 +0000",
            "9999-12-31 23:59:59 +0000",
        ] {
            let chrono = chrono::DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S %z")
                .map(|t| t.with_timezone(&Utc))
                .ok();
            assert_eq!(parse_time(text), chrono, "{text}");
        }
        assert!(parse_time("1900-02-29 00:00:00 +0000").is_none());
        assert!(parse_time("2010-05-15 24:00:00 +0000").is_none());
        assert!(parse_time("2010-05-15 00:00:60 +0000").is_none());
    }

    #[test]
    fn numbers() {
        let parse_u64 = |s: &str| super::parse_u64(s.as_bytes());
        assert_eq!(parse_u64(" 42 "), Some(42));
        assert_eq!(parse_u64("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64("18446744073709551616"), None);
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64(""), None);
        assert_eq!(parse_u64("1e3"), None);
    }

    #[test]
    fn lenient_unescape() {
        assert_eq!(unescape_lenient("a &amp; b"), "a & b");
        assert_eq!(unescape_lenient("x?a=1&b=2"), "x?a=1&b=2");
        assert_eq!(unescape_lenient("&#x41;&#66;&bogus;&"), "AB&bogus;&");
        assert_eq!(unescape_lenient("&#0;"), "&#0;");
        assert_eq!(unescape_lenient("&#xFFFFFFFFFF;"), "&#xFFFFFFFFFF;");
    }

    /// apisonator 3.4.3 writes the OAuth `<id>`/`<key>` and the `app_keys`
    /// attributes without escaping; these are its real answers for the
    /// application `a<b&c` with the key `k<1&2`.
    #[test]
    fn unescaped_values_of_the_real_backend() {
        let oauth = br#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><application><id>a<b&c</id><key>k<1&2</key><redirect_url>https://x/?a=1&amp;b=&lt;2&gt;</redirect_url></application><plan>pl</plan><usage_reports><usage_report metric="hits" period="minute"><period_start>2026-12-02 14:13:00 +0000</period_start><period_end>2026-12-02 14:14:00 +0000</period_end><max_value>5</max_value><current_value>0</current_value></usage_report></usage_reports></status>"#;
        let Ok(Document::Status(auth)) = parse(oauth, Expect::Status) else {
            panic!("the real OAuth answer must parse");
        };
        let app = auth.application.expect("<application>");
        assert_eq!(app.id, "a<b&c");
        assert_eq!(app.key, "k<1&2");
        assert_eq!(app.redirect_url, "https://x/?a=1&b=<2>");
        assert_eq!(auth.plan.as_deref(), Some("pl"));
        assert_eq!(auth.usage_reports.len(), 1);

        let keys = br#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>false</authorized><reason>application key "zz" is invalid</reason><plan>pl</plan><usage_reports><usage_report metric="hits" period="minute"><period_start>2026-12-02 14:13:00 +0000</period_start><period_end>2026-12-02 14:14:00 +0000</period_end><max_value>5</max_value><current_value>0</current_value></usage_report></usage_reports><app_keys app="a<b&c" svc="8001"><key id="k<1&2"/><key id="k&amp;3"/></app_keys></status>"#;
        let Ok(Document::Status(auth)) = parse(keys, Expect::Status) else {
            panic!("the real list_app_keys answer must parse");
        };
        let keys = auth.app_keys.expect("<app_keys>");
        assert_eq!(keys.app, "a<b&c");
        assert_eq!(keys.service, "8001");
        assert_eq!(keys.keys, ["k<1&2", "k&3"]);
        assert_eq!(
            auth.reason.as_deref(),
            Some(r#"application key "zz" is invalid"#)
        );
    }

    #[test]
    fn last_reason_end_is_the_last() {
        assert_eq!(last_reason_end(b"a</reason>b</reason>c"), Some(11));
        assert_eq!(last_reason_end(b"</reason"), None);
        assert_eq!(last_reason_end(b""), None);
    }
}
