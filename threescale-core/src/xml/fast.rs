//! A direct scanner for `<status>` and `<error>` documents as the backend
//! writes them.
//!
//! apisonator builds its status XML by string concatenation: always the same
//! elements, no whitespace, no entities in names. Going through the reader's
//! events for such a document costs more than the whole scan below (the event
//! loop alone is several times the budget of the XML benchmark), so
//! [`status`] (and [`error`]) read that shape straight from the bytes.
//!
//! It accepts a strict subset of what [`super::parser`] accepts and gives the
//! same value for it; on anything else (an entity, a comment, an unknown or
//! self-closing element where a full one is expected, single quotes, a bad
//! number...) it returns `None` and the general parser decides, including every
//! error report. Equality on the accepted subset is checked by property tests.

use chrono::{DateTime, Utc};

use super::parser::{last_reason_end, parse_time, unescape_lenient};
use super::{
    AppKeys, Authorization, ErrorDocument, HierarchyMetric, OAuthApplication, Period, UsageReport,
};

/// The declaration the backend writes.
const DECLARATION: &[u8] = br#"<?xml version="1.0" encoding="UTF-8"?>"#;

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn rest(&self) -> &'a [u8] {
        self.b.get(self.i..).unwrap_or_default()
    }

    #[inline(always)]
    fn ws(&mut self) {
        // XML white space only (not form feed, unlike `is_ascii_whitespace`).
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, lit: &[u8]) -> bool {
        if self.rest().starts_with(lit) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    /// `<name` followed by `>` (`Some(false)`) or `/>` (`Some(true)`); the name
    /// is returned with it. `None` when the next thing is not a start tag
    /// without attributes.
    #[inline]
    fn start_tag(&mut self) -> Option<(&'a [u8], bool)> {
        let rest = self.rest();
        if rest.first() != Some(&b'<') {
            return None;
        }
        let mut j = 1;
        while let Some(&b) = rest.get(j) {
            match b {
                b'>' => {
                    self.i += j + 1;
                    return Some((&rest[1..j], false));
                }
                b'/' if rest.get(j + 1) == Some(&b'>') => {
                    self.i += j + 2;
                    return Some((&rest[1..j], true));
                }
                b'a'..=b'z' | b'_' => j += 1,
                _ => return None,
            }
        }
        None
    }

    /// The plain text of the element `name` whose start tag was just read: the
    /// bytes up to the next `<`, which must begin `</name>`. `None` if the text
    /// holds `&` (an entity) or the end tag is not next.
    #[inline]
    fn leaf(&mut self, name: &[u8]) -> Option<&'a [u8]> {
        let rest = self.rest();
        let j = memchr::memchr2(b'<', b'&', rest)?;
        if rest[j] == b'&' {
            return None;
        }
        let n = name.len();
        let tail = &rest[j..];
        if tail.len() < n + 3 || tail[1] != b'/' || &tail[2..2 + n] != name || tail[2 + n] != b'>' {
            return None;
        }
        self.i += j + n + 3;
        Some(&rest[..j])
    }

    /// Digits followed by `end`.
    #[inline(always)]
    fn number(&mut self, end: &[u8]) -> Option<u64> {
        let rest = self.rest();
        let mut n: u64 = 0;
        let mut j = 0;
        while let Some(&d) = rest.get(j) {
            if !d.is_ascii_digit() {
                break;
            }
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            j += 1;
        }
        if j == 0 || !rest[j..].starts_with(end) {
            return None;
        }
        self.i += j + end.len();
        Some(n)
    }

    /// The 25 bytes of a `YYYY-MM-DD HH:MM:SS +0000` time followed by `end`.
    #[inline(always)]
    fn time(&mut self, end: &[u8]) -> Option<&'a [u8]> {
        const LEN: usize = 25;
        let rest = self.rest();
        if rest.len() < LEN || !rest[LEN..].starts_with(end) {
            return None;
        }
        self.i += LEN + end.len();
        Some(&rest[..LEN])
    }

    #[inline]
    fn leaf_str(&mut self, name: &[u8]) -> Option<&'a str> {
        std::str::from_utf8(self.leaf(name)?).ok()
    }

    /// After `<name`: ` key="value"` pairs up to `>` (returns `Some(false)`) or
    /// `/>` (`Some(true)`), each passed to `f`. Values holding `&` or `<`,
    /// single quotes or spaces around `=` are left to the general parser.
    fn attrs(&mut self, mut f: impl FnMut(&[u8], &'a str) -> Option<()>) -> Option<bool> {
        loop {
            let before = self.i;
            self.ws();
            if self.eat(b">") {
                return Some(false);
            }
            if self.eat(b"/>") {
                return Some(true);
            }
            if self.i == before {
                return None;
            }
            let rest = self.rest();
            let eq = rest.iter().position(|&b| b == b'=')?;
            let key = &rest[..eq];
            let name_start = |b: &u8| b.is_ascii_alphabetic() || matches!(b, b'_' | b':');
            let name_char =
                |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-' | b'.');
            if !key.first().is_some_and(name_start) || !key.iter().all(name_char) {
                return None;
            }
            if rest.get(eq + 1) != Some(&b'"') {
                return None;
            }
            let value_start = eq + 2;
            let len = memchr::memchr3(b'"', b'&', b'<', rest.get(value_start..)?)?;
            if rest[value_start + len] != b'"' {
                return None;
            }
            let value = &rest[value_start..value_start + len];
            f(key, std::str::from_utf8(value).ok()?)?;
            self.i += value_start + len + 1;
        }
    }

    /// `<name` followed by white space, `>` or `/`.
    #[inline(always)]
    fn open(&mut self, name: &[u8]) -> bool {
        let rest = self.rest();
        if rest.len() > name.len() + 1
            && rest[0] == b'<'
            && &rest[1..=name.len()] == name
            && matches!(
                rest[name.len() + 1],
                b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/'
            )
        {
            self.i += name.len() + 1;
            true
        } else {
            false
        }
    }
}

/// Period boundaries repeat from report to report: parse each text once.
#[derive(Default)]
struct Times<'a> {
    seen: [Option<(&'a [u8], DateTime<Utc>)>; 4],
    next: usize,
}

impl<'a> Times<'a> {
    #[inline]
    fn parse(&mut self, text: &'a [u8]) -> Option<DateTime<Utc>> {
        for (seen, time) in self.seen.iter().flatten() {
            if *seen == text {
                return Some(*time);
            }
        }
        let time = parse_time(text)?;
        self.seen[self.next % 4] = Some((text, time));
        self.next += 1;
        Some(time)
    }
}

/// Skips the declaration (and a byte order mark and white space before it).
#[inline]
fn prolog(c: &mut Cursor<'_>) -> Option<()> {
    if !c.eat(DECLARATION) {
        c.eat(b"\xEF\xBB\xBF");
        c.ws();
        if c.rest().starts_with(b"<?xml") {
            let end = c.rest().windows(2).position(|w| w == b"?>")?;
            c.i += end + 2;
        }
    }
    c.ws();
    Some(())
}

/// The `<error code="…">message</error>` document in `input`, if it has the
/// backend's plain shape: a code of `[a-z0-9_]`, a message without entities
/// or markup, nothing but white space after it.
pub(super) fn error(input: &[u8]) -> Option<ErrorDocument> {
    let mut c = Cursor { b: input, i: 0 };
    prolog(&mut c)?;
    if !c.eat(b"<error code=\"") {
        return None;
    }
    let rest = c.rest();
    let code_len = rest
        .iter()
        .position(|&b| !matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))?;
    let code = std::str::from_utf8(&rest[..code_len]).ok()?;
    c.i += code_len;
    if !c.eat(b"\">") {
        return None;
    }
    let message = c.leaf_str(b"error")?;
    c.ws();
    if !c.rest().is_empty() {
        return None;
    }
    Some(ErrorDocument {
        code: code.to_string(),
        message: message.to_string(),
    })
}

/// The `<status>` document in `input`, if it has the backend's plain shape.
pub(super) fn status(input: &[u8]) -> Option<Authorization> {
    let mut c = Cursor { b: input, i: 0 };
    prolog(&mut c)?;
    if !c.eat(b"<status>") {
        return None;
    }
    let mut out = Authorization::default();
    let mut authorized = None;
    let mut times = Times::default();
    loop {
        c.ws();
        if c.eat(b"</status>") {
            break;
        }
        if c.eat(b"<authorized>") {
            if authorized.is_some() {
                return None;
            }
            authorized = Some(if c.eat(b"true</authorized>") {
                true
            } else if c.eat(b"false</authorized>") {
                false
            } else {
                return None;
            });
            continue;
        }
        if c.eat(b"<plan>") {
            let plan = c.leaf_str(b"plan")?;
            out.plan = (!plan.is_empty()).then(|| plan.to_string());
            continue;
        }
        if c.eat(b"<usage_reports>") {
            usage_reports(&mut c, &mut times, &mut out.usage_reports)?;
            continue;
        }
        if c.open(b"app_keys") {
            out.app_keys = Some(app_keys(&mut c)?);
            continue;
        }
        let (name, empty) = c.start_tag()?;
        match (name, empty) {
            (b"reason", false) => {
                let rest = c.rest();
                let len = last_reason_end(rest)?;
                let text = std::str::from_utf8(&rest[..len]).ok()?;
                out.reason = Some(unescape_lenient(text));
                c.i += len + b"</reason>".len();
            }
            (b"application", false) => out.application = Some(application(&mut c)?),
            (b"application", true) => out.application = Some(OAuthApplication::default()),
            (b"hierarchy", false) => out.hierarchy = Some(hierarchy(&mut c)?),
            (b"hierarchy", true) => out.hierarchy = Some(Vec::new()),
            // Empty elements the general parser ignores too.
            (b"plan" | b"usage_reports", true) => {}
            _ => return None,
        }
    }
    out.authorized = authorized?;
    Some(out)
}

fn usage_reports<'a>(
    c: &mut Cursor<'a>,
    times: &mut Times<'a>,
    out: &mut Vec<UsageReport>,
) -> Option<()> {
    loop {
        c.ws();
        if c.eat(b"</usage_reports>") {
            return Some(());
        }
        if !c.open(b"usage_report") {
            return None;
        }
        let (mut metric, mut period, mut exceeded) = (None, None, false);
        let empty = c.attrs(|key, value| {
            match key {
                b"metric" => metric = Some(value),
                b"period" => period = Some(Period::parse(value)?),
                b"exceeded" => exceeded = value.as_bytes().trim_ascii() == b"true",
                _ => {}
            }
            Some(())
        })?;
        if empty {
            return None;
        }
        let (mut start, mut end, mut max, mut current) = (None, None, None, None);
        loop {
            c.ws();
            if c.eat(b"<period_start>") {
                start = Some(times.parse(c.time(b"</period_start>")?)?);
            } else if c.eat(b"<period_end>") {
                end = Some(times.parse(c.time(b"</period_end>")?)?);
            } else if c.eat(b"<max_value>") {
                max = Some(c.number(b"</max_value>")?);
            } else if c.eat(b"<current_value>") {
                current = Some(c.number(b"</current_value>")?);
            } else if c.eat(b"</usage_report>") {
                break;
            } else {
                return None;
            }
        }
        out.push(UsageReport {
            metric: metric?.to_string(),
            period: period?,
            period_start: start,
            period_end: end,
            max_value: max?,
            current_value: current?,
            exceeded,
        });
    }
}

fn application(c: &mut Cursor<'_>) -> Option<OAuthApplication> {
    let mut app = OAuthApplication::default();
    loop {
        c.ws();
        if c.eat(b"</application>") {
            return Some(app);
        }
        let (name, false) = c.start_tag()? else {
            return None;
        };
        let text = c.leaf_str(name)?.to_string();
        match name {
            b"id" => app.id = text,
            b"key" => app.key = text,
            b"redirect_url" | b"redirect_uri" => app.redirect_url = text,
            _ => return None,
        }
    }
}

fn app_keys(c: &mut Cursor<'_>) -> Option<AppKeys> {
    let mut keys = AppKeys::default();
    let empty = c.attrs(|key, value| {
        match key {
            b"app" => keys.app = value.to_string(),
            b"svc" => keys.service = value.to_string(),
            _ => {}
        }
        Some(())
    })?;
    if empty {
        return Some(keys);
    }
    loop {
        c.ws();
        if c.eat(b"</app_keys>") {
            return Some(keys);
        }
        if !c.open(b"key") {
            return None;
        }
        let empty = c.attrs(|key, value| {
            if key == b"id" {
                keys.keys.push(value.to_string());
            }
            Some(())
        })?;
        if !empty {
            return None;
        }
    }
}

fn hierarchy(c: &mut Cursor<'_>) -> Option<Vec<HierarchyMetric>> {
    let mut metrics = Vec::new();
    loop {
        c.ws();
        if c.eat(b"</hierarchy>") {
            return Some(metrics);
        }
        if !c.open(b"metric") {
            return None;
        }
        let (mut name, mut children) = (None, Vec::new());
        let empty = c.attrs(|key, value| {
            match key {
                b"name" => name = Some(value.to_string()),
                b"children" => {
                    children = value.split_ascii_whitespace().map(String::from).collect();
                }
                _ => {}
            }
            Some(())
        })?;
        if !empty {
            return None;
        }
        metrics.push(HierarchyMetric {
            name: name?,
            children,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::{Document, Expect, parse_general};
    use super::*;
    use proptest::prelude::*;

    const SAMPLES: &[&str] = &[
        r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><plan>Basic</plan><usage_reports><usage_report metric="hits" period="month"><period_start>2010-05-01 00:00:00 +0000</period_start><period_end>2010-06-01 00:00:00 +0000</period_end><max_value>10000</max_value><current_value>5</current_value></usage_report><usage_report metric="hits" period="eternity"><max_value>10</max_value><current_value>3</current_value></usage_report></usage_reports></status>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>false</authorized><reason>usage limits are exceeded</reason><plan>Basic</plan><usage_reports><usage_report metric="hits" period="day" exceeded="true"><period_start>2010-05-15 00:00:00 +0000</period_start><period_end>2010-05-16 00:00:00 +0000</period_end><max_value>4</max_value><current_value>5</current_value></usage_report></usage_reports></status>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><application><id>APPID</id><key>KEY1</key><redirect_url>http://3scale.net</redirect_url></application><plan>Basic</plan></status>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>false</authorized><reason>redirect_uri "http://x/?a=1&b=2" is invalid</reason><application><id>A</id><key></key><redirect_uri></redirect_uri></application><plan>Basic</plan></status>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><plan>P</plan><app_keys app="APPID" svc="2555417777820"><key id="k1"/><key id="k2"/></app_keys><hierarchy><metric name="parent_metric" children="child_metric_1 child_metric_2"/><metric name="child_metric_1" children=""/></hierarchy></status>"#,
        r#"<status><authorized>true</authorized><app_keys app="a" svc="s"/><hierarchy/><plan/></status>"#,
        "\u{feff}\n<?xml version=\"1.0\"?>\n<status>\n  <authorized>true</authorized>\n  <plan>Basic</plan>\n</status>\n",
    ];

    fn general(input: &[u8]) -> Option<Authorization> {
        match parse_general(input, Expect::Status) {
            Ok(Document::Status(a)) => Some(a),
            _ => None,
        }
    }

    #[test]
    fn samples_take_the_fast_path_and_agree() {
        for sample in SAMPLES {
            let fast = status(sample.as_bytes());
            assert!(fast.is_some(), "{sample}");
            assert_eq!(fast, general(sample.as_bytes()), "{sample}");
        }
    }

    const ERRORS: &[&str] = &[
        r#"<?xml version="1.0" encoding="UTF-8"?><error code="application_not_found">application with id="boo" was not found</error>"#,
        r#"<?xml version="1.0" encoding="UTF-8"?><error code="user_key_invalid">user key "k" is invalid</error>"#,
        r#"<error code="provider_key_invalid"></error>"#,
        "<?xml version=\"1.0\"?>\n<error code=\"metric_invalid\">metric \"x\" is invalid</error>\n",
    ];

    fn general_error(input: &[u8]) -> Option<ErrorDocument> {
        match parse_general(input, Expect::Error) {
            Ok(Document::Error(e)) => Some(e),
            _ => None,
        }
    }

    #[test]
    fn error_samples_take_the_fast_path_and_agree() {
        for sample in ERRORS {
            let fast = error(sample.as_bytes());
            assert!(fast.is_some(), "{sample}");
            assert_eq!(fast, general_error(sample.as_bytes()), "{sample}");
        }
        for doc in [
            r#"<error code="a">x &amp; y</error>"#,
            r#"<error code="a"/>"#,
            r#"<error code='a'>x</error>"#,
            r#"<error code="A b">x</error>"#,
            r#"<error code="a">x</error><more/>"#,
            r#"<error code="a">x<b/></error>"#,
            r#"<error id="1" code="a">x</error>"#,
        ] {
            assert_eq!(error(doc.as_bytes()), None, "{doc}");
        }
    }

    #[test]
    fn declines_what_it_does_not_know() {
        for doc in [
            "<status><authorized>true</authorized><plan>A &amp; B</plan></status>",
            "<status><authorized> true </authorized></status>",
            "<status><authorized>true</authorized><!-- c --></status>",
            "<status><authorized>true</authorized><future/></status>",
            "<status><authorized>true</authorized><app_keys app='a'/></status>",
            "<status><authorized>true</authorized>",
            "<status xmlns=\"x\"><authorized>true</authorized></status>",
            "<status><authorized>true</authorized><usage_reports><usage_report metric=\"m\" period=\"day\"><max_value>x</max_value><current_value>1</current_value></usage_report></usage_reports></status>",
        ] {
            assert_eq!(status(doc.as_bytes()), None, "{doc}");
        }
    }

    fn mutate(doc: &mut Vec<u8>, ops: &[(usize, u8, u8)]) {
        for &(at, kind, byte) in ops {
            let len = doc.len();
            if len == 0 {
                doc.push(byte);
                continue;
            }
            let at = at % len;
            match kind % 5 {
                0 => doc.truncate(at),
                1 => doc[at] = byte,
                2 => doc.insert(at, byte),
                3 => {
                    doc.remove(at);
                }
                _ => {
                    let piece: &[u8] = match byte % 8 {
                        0 => b" ",
                        1 => b"&amp;",
                        2 => b"</reason>",
                        3 => b"<reason>",
                        4 => b"/>",
                        5 => b"\"",
                        6 => b"<authorized>true</authorized>",
                        _ => b"'",
                    };
                    doc.splice(at..at, piece.iter().copied());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 2048,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Whatever the fast path accepts, the general parser parses the same.
        #[test]
        fn fast_path_agrees_with_the_general_parser(
            sample in prop::sample::select(SAMPLES.to_vec()),
            ops in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..5),
        ) {
            let mut doc = sample.as_bytes().to_vec();
            mutate(&mut doc, &ops);
            if let Some(fast) = status(&doc) {
                prop_assert_eq!(Some(fast), general(&doc), "{}", String::from_utf8_lossy(&doc));
            }
        }

        /// Whatever the error fast path accepts, the general parser parses the same.
        #[test]
        fn error_fast_path_agrees_with_the_general_parser(
            sample in prop::sample::select(ERRORS.to_vec()),
            ops in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..5),
        ) {
            let mut doc = sample.as_bytes().to_vec();
            mutate(&mut doc, &ops);
            if let Some(fast) = error(&doc) {
                prop_assert_eq!(Some(fast), general_error(&doc), "{}", String::from_utf8_lossy(&doc));
            }
        }

        #[test]
        fn fast_path_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = status(&bytes);
            let mut doc = b"<status><authorized>true</authorized>".to_vec();
            doc.extend_from_slice(&bytes);
            if let Some(fast) = status(&doc) {
                prop_assert_eq!(Some(fast), general(&doc));
            }
        }
    }
}
