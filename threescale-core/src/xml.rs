//! Parsing the backend's XML answers (quick-xml, streaming) into typed values.
//!
//! [`parse_authorization`] reads a `<status>` document (the answer of authorize,
//! authrep and the OAuth calls), [`parse_error`] an `<error code="…">` document.
//! Both read the bytes in one streaming pass, borrow from the input until a value
//! is stored, ignore unknown elements and never panic: any input that is not
//! the expected document gives an [`XmlError`].
//!
//! ```
//! use threescale_core::xml::{parse_authorization, Period};
//! let doc = br#"<?xml version="1.0" encoding="UTF-8"?><status><authorized>true</authorized><plan>Basic</plan><usage_reports><usage_report metric="hits" period="day"><period_start>2010-05-15 00:00:00 +0000</period_start><period_end>2010-05-16 00:00:00 +0000</period_end><max_value>100</max_value><current_value>2</current_value></usage_report></usage_reports></status>"#;
//! let auth = parse_authorization(doc).unwrap();
//! assert!(auth.authorized);
//! assert_eq!(auth.plan.as_deref(), Some("Basic"));
//! assert_eq!(auth.usage_reports[0].period, Period::Day);
//! assert_eq!(auth.usage_reports[0].max_value, 100);
//! ```

use chrono::{DateTime, Utc};

mod fast;
mod parser;

pub(crate) use parser::{Document, Expect, Fail, parse as parse_document, unescape_lenient};

/// A limit period, as the backend names it.
///
/// ```
/// use threescale_core::xml::Period;
/// assert_eq!(Period::parse("eternity"), Some(Period::Eternity));
/// assert_eq!(Period::Week.as_str(), "week");
/// assert_eq!(Period::parse("second"), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// `minute`
    Minute,
    /// `hour`
    Hour,
    /// `day`
    Day,
    /// `week`
    Week,
    /// `month`
    Month,
    /// `year`
    Year,
    /// `eternity` (no start, no end)
    Eternity,
}

impl Period {
    /// The backend's name for the period.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
            Period::Year => "year",
            Period::Eternity => "eternity",
        }
    }

    /// Parses the backend's name (`"minute"` … `"eternity"`).
    pub fn parse(name: &str) -> Option<Period> {
        Some(match name {
            "minute" => Period::Minute,
            "hour" => Period::Hour,
            "day" => Period::Day,
            "week" => Period::Week,
            "month" => Period::Month,
            "year" => Period::Year,
            "eternity" => Period::Eternity,
            _ => return None,
        })
    }
}

/// One `<usage_report>`: a limit of the application's plan and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageReport {
    /// Metric system name.
    pub metric: String,
    /// Limit period.
    pub period: Period,
    /// Start of the current period (`None` for eternity).
    pub period_start: Option<DateTime<Utc>>,
    /// End of the current period, exclusive (`None` for eternity).
    pub period_end: Option<DateTime<Utc>>,
    /// The limit.
    pub max_value: u64,
    /// The counter (on authrep, including this request's usage when authorized).
    pub current_value: u64,
    /// `exceeded="true"`: the stored value is over the limit.
    pub exceeded: bool,
}

/// The `<application>` section of the OAuth endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OAuthApplication {
    /// Application id.
    pub id: String,
    /// The application's first key (empty when it has none).
    pub key: String,
    /// Its redirect URL (empty when unset); the element may be `redirect_uri`.
    pub redirect_url: String,
}

/// The `<app_keys>` section (`list_app_keys` extension).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AppKeys {
    /// `app` attribute.
    pub app: String,
    /// `svc` attribute.
    pub service: String,
    /// Key ids.
    pub keys: Vec<String>,
}

/// One `<metric>` of the `<hierarchy>` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HierarchyMetric {
    /// Metric name.
    pub name: String,
    /// Names of its direct children.
    pub children: Vec<String>,
}

/// A parsed `<status>` document: the answer of authorize / authrep.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Authorization {
    /// `<authorized>`.
    pub authorized: bool,
    /// `<reason>` when denied.
    pub reason: Option<String>,
    /// `<plan>` (None when absent or empty).
    pub plan: Option<String>,
    /// `<usage_reports>`, in document order.
    pub usage_reports: Vec<UsageReport>,
    /// `<application>` (OAuth endpoints only).
    pub application: Option<OAuthApplication>,
    /// `<app_keys>` (list_app_keys extension only).
    pub app_keys: Option<AppKeys>,
    /// `<hierarchy>` (hierarchy extension only).
    pub hierarchy: Option<Vec<HierarchyMetric>>,
}

/// A parsed `<error code="...">message</error>` document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorDocument {
    /// The error code, e.g. `user_key_invalid`.
    pub code: String,
    /// The message text (unescaped).
    pub message: String,
}

/// The XML could not be read. Carries a short, printable excerpt of the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed backend XML: {reason} (near {excerpt:?})")]
pub struct XmlError {
    /// What went wrong.
    pub reason: String,
    /// At most 64 characters of the input around the problem.
    pub excerpt: String,
}

impl XmlError {
    /// Builds an error from a failure at byte `pos` of `input`, with an excerpt
    /// from which every secret of `secrets` is masked.
    pub(crate) fn from_fail(
        fail: Fail,
        input: &[u8],
        secrets: &crate::backend::redact::Secrets,
    ) -> XmlError {
        XmlError {
            reason: secrets.redact(&fail.reason).into_owned(),
            excerpt: crate::backend::redact::excerpt(input, fail.pos, secrets),
        }
    }
}

/// Parses a `<status>` document (authorize, authrep, oauth_authorize,
/// oauth_authrep) into an [`Authorization`].
///
/// The `<reason>` text is taken as the backend writes it (not XML-escaped):
/// everything up to the last `</reason>` of the document, so an application key
/// or referrer echoed in it cannot inject elements. Entities in it are
/// unescaped when well formed and kept literally otherwise.
///
/// ```
/// use threescale_core::xml::parse_authorization;
/// let doc = b"<status><authorized>false</authorized><reason>usage limits are exceeded</reason><plan>Basic</plan></status>";
/// let auth = parse_authorization(doc).unwrap();
/// assert!(!auth.authorized);
/// assert_eq!(auth.reason.as_deref(), Some("usage limits are exceeded"));
/// assert!(parse_authorization(b"<status><authorized>tru").is_err());
/// ```
pub fn parse_authorization(bytes: &[u8]) -> Result<Authorization, XmlError> {
    match parser::parse(bytes, Expect::Status) {
        Ok(Document::Status(auth)) => Ok(auth),
        Ok(Document::Error(_)) => Err(XmlError {
            reason: "expected a <status> document, found <error>".into(),
            excerpt: crate::backend::redact::excerpt(
                bytes,
                0,
                &crate::backend::redact::Secrets::new(),
            ),
        }),
        Err(fail) => Err(XmlError::from_fail(
            fail,
            bytes,
            &crate::backend::redact::Secrets::new(),
        )),
    }
}

/// Parses an `<error code="…">message</error>` document into an [`ErrorDocument`]
/// (a missing `code` attribute gives an empty code).
///
/// ```
/// use threescale_core::xml::parse_error;
/// let doc = br#"<?xml version="1.0" encoding="UTF-8"?><error code="application_not_found">application with id="boo" was not found</error>"#;
/// let err = parse_error(doc).unwrap();
/// assert_eq!(err.code, "application_not_found");
/// assert_eq!(err.message, r#"application with id="boo" was not found"#);
/// ```
pub fn parse_error(bytes: &[u8]) -> Result<ErrorDocument, XmlError> {
    match parser::parse(bytes, Expect::Error) {
        Ok(Document::Error(doc)) => Ok(doc),
        Ok(Document::Status(_)) => Err(XmlError {
            reason: "expected an <error> document, found <status>".into(),
            excerpt: crate::backend::redact::excerpt(
                bytes,
                0,
                &crate::backend::redact::Secrets::new(),
            ),
        }),
        Err(fail) => Err(XmlError::from_fail(
            fail,
            bytes,
            &crate::backend::redact::Secrets::new(),
        )),
    }
}
