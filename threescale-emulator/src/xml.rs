//! The backend's XML documents, byte for byte.
//!
//! The backend builds its status document by string concatenation (no whitespace, no
//! escaping except for the plan name and the OAuth redirect URL) and its error
//! document with Ruby's Builder (text escaped, invalid XML characters replaced by `*`).

use chrono::{DateTime, Utc};

use crate::period::{LimitPeriod, format_time};

/// The XML declaration every document starts with.
pub(crate) const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";

/// `String#encode(xml: :text)`: escapes `&`, `<` and `>`.
pub(crate) fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Builder's text escaping: C1 controls read as CP1252, characters XML does not allow
/// become U+FFFD (Builder's `REPLACEMENT_CHAR` on Rubies with `String#encode`), and `&`, `<`, `>` are escaped.
pub(crate) fn escape_builder(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let c = cp1252(c);
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            '\u{FFFE}' | '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Builder maps the C1 range to the characters CP1252 puts there.
fn cp1252(c: char) -> char {
    let mapped = match c as u32 {
        0x80 => 0x20AC,
        0x82 => 0x201A,
        0x83 => 0x0192,
        0x84 => 0x201E,
        0x85 => 0x2026,
        0x86 => 0x2020,
        0x87 => 0x2021,
        0x88 => 0x02C6,
        0x89 => 0x2030,
        0x8A => 0x0160,
        0x8B => 0x2039,
        0x8C => 0x0152,
        0x8E => 0x017D,
        0x91 => 0x2018,
        0x92 => 0x2019,
        0x93 => 0x201C,
        0x94 => 0x201D,
        0x95 => 0x2022,
        0x96 => 0x2013,
        0x97 => 0x2014,
        0x98 => 0x02DC,
        0x99 => 0x2122,
        0x9A => 0x0161,
        0x9B => 0x203A,
        0x9C => 0x0153,
        0x9E => 0x017E,
        0x9F => 0x0178,
        _ => return c,
    };
    char::from_u32(mapped).unwrap_or(c)
}

/// The error document: `<?xml ...?><error code="CODE">MESSAGE</error>`.
pub(crate) fn error_xml(code: &str, message: &str) -> String {
    format!(
        "{DECLARATION}<error code=\"{}\">{}</error>",
        escape_attr(code),
        escape_builder(message)
    )
}

fn escape_attr(s: &str) -> String {
    escape_builder(s).replace('"', "&quot;")
}

/// One `<usage_report>`.
#[derive(Clone, Debug)]
pub(crate) struct ReportLine<'a> {
    pub metric: &'a str,
    pub period: LimitPeriod,
    pub now: DateTime<Utc>,
    pub max_value: i64,
    pub current_value: i64,
    pub exceeded: bool,
}

/// The `<application>` section of the OAuth endpoints.
#[derive(Clone, Debug)]
pub(crate) struct AppSection<'a> {
    pub id: &'a str,
    pub first_key: &'a str,
    pub redirect_field: &'static str,
    pub redirect_url: Option<&'a str>,
}

/// Everything a `<status>` document shows.
#[derive(Clone, Debug)]
pub(crate) struct StatusDoc<'a> {
    pub reason: Option<&'a str>,
    pub application: Option<AppSection<'a>>,
    pub plan: &'a str,
    pub reports: Vec<ReportLine<'a>>,
    pub app_keys: Option<(&'a str, &'a str, &'a [String])>,
    /// For each report, the metric name and its direct children joined by spaces.
    pub hierarchy: Option<Vec<(&'a str, String)>>,
}

/// Maximum number of keys listed by `list_app_keys`.
const LIST_APP_KEYS_MAX: usize = 256;

pub(crate) fn status_xml(doc: &StatusDoc<'_>) -> String {
    let mut x = String::with_capacity(256 + doc.reports.len() * 200);
    x.push_str(DECLARATION);
    x.push_str("<status>");
    match doc.reason {
        None => x.push_str("<authorized>true</authorized>"),
        Some(reason) => {
            x.push_str("<authorized>false</authorized><reason>");
            x.push_str(reason);
            x.push_str("</reason>");
        }
    }
    if let Some(app) = &doc.application {
        x.push_str("<application><id>");
        x.push_str(app.id);
        x.push_str("</id><key>");
        x.push_str(app.first_key);
        x.push_str("</key><");
        x.push_str(app.redirect_field);
        x.push('>');
        if let Some(url) = app.redirect_url {
            x.push_str(&escape_text(url));
        }
        x.push_str("</");
        x.push_str(app.redirect_field);
        x.push_str("></application>");
    }
    x.push_str("<plan>");
    x.push_str(&escape_text(doc.plan));
    x.push_str("</plan>");
    if !doc.reports.is_empty() {
        x.push_str("<usage_reports>");
        for r in &doc.reports {
            push_report(&mut x, r);
        }
        x.push_str("</usage_reports>");
    }
    if let Some((app, svc, keys)) = doc.app_keys {
        x.push_str("<app_keys app=\"");
        x.push_str(app);
        x.push_str("\" svc=\"");
        x.push_str(svc);
        x.push_str("\">");
        for key in keys.iter().take(LIST_APP_KEYS_MAX) {
            x.push_str("<key id=\"");
            x.push_str(key);
            x.push_str("\"/>");
        }
        x.push_str("</app_keys>");
    }
    if let Some(h) = &doc.hierarchy {
        x.push_str("<hierarchy>");
        for (name, children) in h {
            x.push_str("<metric name=\"");
            x.push_str(name);
            x.push_str("\" children=\"");
            x.push_str(children);
            x.push_str("\"/>");
        }
        x.push_str("</hierarchy>");
    }
    x.push_str("</status>");
    x
}

fn push_report(x: &mut String, r: &ReportLine<'_>) {
    x.push_str("<usage_report metric=\"");
    x.push_str(r.metric);
    x.push_str("\" period=\"");
    x.push_str(r.period.as_str());
    x.push('"');
    x.push_str(if r.exceeded {
        " exceeded=\"true\">"
    } else {
        ">"
    });
    if r.period != LimitPeriod::Eternity {
        x.push_str("<period_start>");
        x.push_str(&format_time(r.period.start(r.now)));
        x.push_str("</period_start><period_end>");
        x.push_str(&format_time(r.period.end(r.now)));
        x.push_str("</period_end>");
    }
    x.push_str("<max_value>");
    x.push_str(&r.max_value.to_string());
    x.push_str("</max_value><current_value>");
    x.push_str(&r.current_value.to_string());
    x.push_str("</current_value></usage_report>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn builder_escaping() {
        assert_eq!(escape_builder("a\u{1}b\u{7f}"), "a\u{FFFD}b\u{7f}");
        assert_eq!(escape_builder("tab\there"), "tab\there");
        assert_eq!(escape_builder("\u{80}"), "\u{20AC}");
        assert_eq!(escape_builder("ñ"), "ñ");
        assert_eq!(escape_builder("<&>\"'"), "&lt;&amp;&gt;\"'");
    }

    #[test]
    fn denied_document_matches_reference() {
        let now = Utc.with_ymd_and_hms(2010, 5, 15, 12, 0, 0).unwrap();
        let doc = StatusDoc {
            reason: Some("usage limits are exceeded"),
            application: None,
            plan: "Basic",
            reports: vec![ReportLine {
                metric: "hits",
                period: LimitPeriod::Day,
                now,
                max_value: 4,
                current_value: 5,
                exceeded: true,
            }],
            app_keys: None,
            hierarchy: None,
        };
        assert_eq!(
            status_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><status><authorized>false</authorized><reason>usage limits are exceeded</reason><plan>Basic</plan><usage_reports><usage_report metric=\"hits\" period=\"day\" exceeded=\"true\"><period_start>2010-05-15 00:00:00 +0000</period_start><period_end>2010-05-16 00:00:00 +0000</period_end><max_value>4</max_value><current_value>5</current_value></usage_report></usage_reports></status>"
        );
    }

    #[test]
    fn optional_sections() {
        let now = Utc.with_ymd_and_hms(2010, 5, 15, 12, 0, 0).unwrap();
        let keys = vec!["k1".to_string(), "k2".to_string()];
        let doc = StatusDoc {
            reason: None,
            application: Some(AppSection {
                id: "app",
                first_key: "k1",
                redirect_field: "redirect_url",
                redirect_url: Some("http://a/?x=1&y=2"),
            }),
            plan: "A&B",
            reports: vec![ReportLine {
                metric: "hits",
                period: LimitPeriod::Eternity,
                now,
                max_value: 10,
                current_value: 3,
                exceeded: false,
            }],
            app_keys: Some(("app", "svc", &keys)),
            hierarchy: Some(vec![("hits", "a b".to_string())]),
        };
        assert_eq!(
            status_xml(&doc),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><status><authorized>true</authorized><application><id>app</id><key>k1</key><redirect_url>http://a/?x=1&amp;y=2</redirect_url></application><plan>A&amp;B</plan><usage_reports><usage_report metric=\"hits\" period=\"eternity\"><max_value>10</max_value><current_value>3</current_value></usage_report></usage_reports><app_keys app=\"app\" svc=\"svc\"><key id=\"k1\"/><key id=\"k2\"/></app_keys><hierarchy><metric name=\"hits\" children=\"a b\"/></hierarchy></status>"
        );
    }

    #[test]
    fn escape_text_examples() {
        assert_eq!(escape_text("a&b<c>\"d\""), "a&amp;b&lt;c&gt;\"d\"");
    }

    #[test]
    fn error_xml_examples() {
        let xml = error_xml(
            "application_not_found",
            "application with id=\"boo\" was not found",
        );
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><error code=\"application_not_found\">application with id=\"boo\" was not found</error>"
        );
    }
}
