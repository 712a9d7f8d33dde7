//! Differential conformance: the same requests to the real 3scale backend
//! (apisonator) and to the project's emulator, compared answer by answer.
//!
//! The real backend is the oracle. When `THREESCALE_APISONATOR_URL` is set (the
//! CI step starts apisonator through its kit and seeds it with
//! `tests/data/differential-seed.json`), [`emulator_agrees_with_apisonator`]
//! starts the emulator from the same JSON, sends every request of [`cases`] to
//! both, in the same order, and compares the status, the body (XML, with period
//! timestamps normalised when they differ) and the `3scale-*` headers. The
//! differences that are intended are listed in [`INTENDED`], each with its
//! reason; any other difference fails the test, and so does an entry of
//! [`INTENDED`] whose request now agrees. Without the variable the test says it
//! was skipped and passes.
//!
//! apisonator applies usage (authrep, report) in its worker a moment after it
//! answers: after every request that may change usage, the test reports one hit
//! for a sentinel application and polls it until the worker has applied it (the
//! worker runs jobs in order), so that the next request reads settled counters.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use threescale::emulator::{Emulator, EmulatorConfig};

/// The services, plans, limits and applications of both backends.
const SEED: &str = include_str!("data/differential-seed.json");

/// The provider key of the seed's main services.
const PK: &str = "pk-diff";

/// The differences that are intended: (request name, reason). Everything else
/// that differs fails the suite, and an entry whose request agrees fails it too.
///
/// Besides these, [`compare`] normalises what legitimately differs in every
/// answer: period timestamps when a request straddled a period boundary
/// between the two backends, `3scale-limit-reset` within 2 seconds, and the
/// order of the `<app_keys>` keys (a Redis set in apisonator, in no defined
/// order).
const INTENDED: &[(&str, &str)] = &[(
    "internal/errors-without-credentials",
    "the emulator's internal API takes no credentials (a local test double whose \
     error log tests read without setup); apisonator's wants basic auth (401)",
)];

/// One request, sent to both backends.
#[derive(Clone, Debug)]
struct Req {
    /// Unique name (used in [`INTENDED`] and in failure messages).
    name: String,
    /// `GET` or `POST`.
    method: &'static str,
    /// Path and query, sent as written.
    target: String,
    /// Extra request headers.
    headers: Vec<(&'static str, String)>,
    /// A form body (`application/x-www-form-urlencoded`), for POST.
    body: Option<String>,
    /// Sent over a plain TCP connection exactly as written (an HTTP client
    /// would normalise `/./` and `/../` away).
    raw: bool,
    /// With the internal API's basic auth.
    internal_auth: bool,
}

impl Req {
    /// Whether apisonator may change usage counters for this request (its
    /// worker applies them asynchronously).
    fn mutates(&self) -> bool {
        self.target.contains("authrep") || self.method == "POST"
    }
}

/// Builds the list of requests.
#[derive(Default)]
struct Cases {
    list: Vec<Req>,
}

impl Cases {
    fn push(&mut self, name: impl Into<String>, method: &'static str, target: impl Into<String>) {
        self.list.push(Req {
            name: name.into(),
            method,
            target: target.into(),
            headers: Vec::new(),
            body: None,
            raw: false,
            internal_auth: false,
        });
    }

    /// A GET of `target` sent byte for byte over TCP.
    fn raw_get(&mut self, name: impl Into<String>, target: &str) {
        self.push(name, "GET", target);
        self.list.last_mut().expect("just pushed").raw = true;
    }

    /// A GET of `path?query`.
    fn get(&mut self, name: impl Into<String>, path: &str, query: &str) {
        let target = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        self.push(name, "GET", target);
    }

    /// A GET with a `3scale-options` header.
    fn get_opt(&mut self, name: impl Into<String>, path: &str, query: &str, options: &str) {
        self.get(name, path, query);
        let last = self.list.last_mut().expect("just pushed");
        last.headers.push(("3scale-options", options.to_string()));
    }

    /// A GET with one arbitrary header.
    fn get_h(
        &mut self,
        name: impl Into<String>,
        path: &str,
        query: &str,
        header: (&'static str, &str),
    ) {
        self.get(name, path, query);
        let last = self.list.last_mut().expect("just pushed");
        last.headers.push((header.0, header.1.to_string()));
    }

    /// A request to the internal API with its basic auth.
    fn internal(&mut self, name: impl Into<String>, method: &'static str, target: &str) {
        self.push(name, method, target);
        self.list.last_mut().expect("just pushed").internal_auth = true;
    }

    /// A report: `POST /transactions.xml` with a form body.
    fn report(&mut self, name: impl Into<String>, body: &str) {
        self.push(name, "POST", "/transactions.xml");
        self.list.last_mut().expect("just pushed").body = Some(body.to_string());
    }

    /// A report with a `3scale-options` header.
    fn report_opt(&mut self, name: impl Into<String>, body: &str, options: &str) {
        self.report(name, body);
        let last = self.list.last_mut().expect("just pushed");
        last.headers.push(("3scale-options", options.to_string()));
    }
}

const AUTHORIZE: &str = "/transactions/authorize.xml";
const AUTHREP: &str = "/transactions/authrep.xml";
const OAUTH_AUTHORIZE: &str = "/transactions/oauth_authorize.xml";
const OAUTH_AUTHREP: &str = "/transactions/oauth_authrep.xml";

/// Every request of the suite, in the order it is sent.
fn cases() -> Vec<Req> {
    let mut c = Cases::default();
    let both = [("authorize", AUTHORIZE), ("authrep", AUTHREP)];

    // Provider key, service token and service id.
    for (ep, path) in both {
        let q = |rest: &str| rest.to_string();
        c.get(format!("{ep}/no-credentials"), path, "user_key=uk-gold");
        c.get(
            format!("{ep}/provider-key-invalid"),
            path,
            "provider_key=nope&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/provider-key-empty"),
            path,
            "provider_key=&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/provider-key-default-service"),
            path,
            &q("provider_key=pk-diff&user_key=uk-gold"),
        );
        c.get(
            format!("{ep}/provider-key-service-id"),
            path,
            "provider_key=pk-diff&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/provider-key-service-id-unknown"),
            path,
            "provider_key=pk-diff&service_id=9999&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/provider-key-service-id-foreign"),
            path,
            "provider_key=pk-other&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/provider-key-service-id-empty"),
            path,
            "provider_key=pk-diff&service_id=&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-token"),
            path,
            "service_token=tok-9101&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-token-second"),
            path,
            "service_token=tok-9101-b&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-token-no-service-id"),
            path,
            "service_token=tok-9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-token-invalid"),
            path,
            "service_token=nope&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-token-other-service"),
            path,
            "service_token=tok-9102&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-token-empty"),
            path,
            "service_token=&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-token-and-provider-key"),
            path,
            "service_token=tok-9101&provider_key=pk-diff&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-token-bad-provider-key-good"),
            path,
            "service_token=nope&provider_key=pk-diff&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-suspended"),
            path,
            "provider_key=pk-diff&service_id=9104&app_id=app-x&app_key=key-x",
        );
        c.get(
            format!("{ep}/other-provider"),
            path,
            "provider_key=pk-other&app_id=app-o&app_key=key-o",
        );
    }

    // User keys (backend_version 1).
    for (ep, path) in both {
        let s = "provider_key=pk-diff&service_id=9101";
        c.get(format!("{ep}/user-key-missing"), path, s);
        c.get(
            format!("{ep}/user-key-empty"),
            path,
            &format!("{s}&user_key="),
        );
        c.get(
            format!("{ep}/user-key-invalid"),
            path,
            &format!("{s}&user_key=nope"),
        );
        c.get(
            format!("{ep}/user-key-suspended"),
            path,
            &format!("{s}&user_key=uk-susp"),
        );
        c.get(
            format!("{ep}/user-key-with-app-id"),
            path,
            &format!("{s}&app_id=u-gold"),
        );
        c.get(
            format!("{ep}/user-key-free-plan"),
            path,
            &format!("{s}&user_key=uk-free"),
        );
        c.get(
            format!("{ep}/user-key-referrer-not-required"),
            path,
            &format!("{s}&user_key=uk-ref&referrer=evil.org"),
        );
        c.get(
            format!("{ep}/user-key-escaped"),
            path,
            &format!("{s}&user_key=%3Cuk%26%22x%22%3E"),
        );
    }

    // Application ids, keys, referrers, states (backend_version 2).
    for (ep, path) in both {
        let s = "provider_key=pk-diff&service_id=9102";
        c.get(format!("{ep}/app-id-missing"), path, s);
        c.get(format!("{ep}/app-id-empty"), path, &format!("{s}&app_id="));
        c.get(
            format!("{ep}/app-id-unknown"),
            path,
            &format!("{s}&app_id=nope&app_key=key-1"),
        );
        c.get(
            format!("{ep}/app-id-escaped"),
            path,
            &format!("{s}&app_id=%3Ca%26b%3E"),
        );
        c.get(
            format!("{ep}/app-key-first"),
            path,
            &format!("{s}&app_id=app-1&app_key=key-1"),
        );
        c.get(
            format!("{ep}/app-key-second"),
            path,
            &format!("{s}&app_id=app-1&app_key=key-1b"),
        );
        c.get(
            format!("{ep}/app-key-invalid"),
            path,
            &format!("{s}&app_id=app-1&app_key=nope"),
        );
        c.get(
            format!("{ep}/app-key-missing"),
            path,
            &format!("{s}&app_id=app-1"),
        );
        c.get(
            format!("{ep}/app-key-empty"),
            path,
            &format!("{s}&app_id=app-1&app_key="),
        );
        c.get(
            format!("{ep}/app-key-escaped"),
            path,
            &format!("{s}&app_id=app-1&app_key=%3Ck%26%22%3E"),
        );
        c.get(
            format!("{ep}/app-without-keys-any-key"),
            path,
            &format!("{s}&app_id=app-nokeys&app_key=whatever"),
        );
        c.get(
            format!("{ep}/app-without-keys-no-key"),
            path,
            &format!("{s}&app_id=app-nokeys"),
        );
        c.get(
            format!("{ep}/app-suspended"),
            path,
            &format!("{s}&app_id=app-susp&app_key=key-susp"),
        );
        c.get(
            format!("{ep}/app-user-key-on-v2"),
            path,
            &format!("{s}&user_key=uk-gold"),
        );
        c.get(
            format!("{ep}/referrer-missing"),
            path,
            &format!("{s}&app_id=app-ref&app_key=key-ref"),
        );
        c.get(
            format!("{ep}/referrer-wildcard"),
            path,
            &format!("{s}&app_id=app-ref&app_key=key-ref&referrer=www.example.com"),
        );
        c.get(
            format!("{ep}/referrer-wildcard-deep"),
            path,
            &format!("{s}&app_id=app-ref&app_key=key-ref&referrer=a.b.example.com"),
        );
        c.get(
            format!("{ep}/referrer-apex"),
            path,
            &format!("{s}&app_id=app-ref&app_key=key-ref&referrer=example.com"),
        );
        c.get(
            format!("{ep}/referrer-exact"),
            path,
            &format!("{s}&app_id=app-ref&app_key=key-ref&referrer=localhost"),
        );
        c.get(
            format!("{ep}/referrer-invalid"),
            path,
            &format!("{s}&app_id=app-ref&app_key=key-ref&referrer=evil.org"),
        );
        c.get(
            format!("{ep}/referrer-escaped"),
            path,
            &format!("{s}&app_id=app-ref&app_key=key-ref&referrer=%3Cevil%26%3E"),
        );
        c.get(
            format!("{ep}/referrer-bypass"),
            path,
            &format!("{s}&app_id=app-ref&app_key=key-ref&referrer=*"),
        );
        c.get(
            format!("{ep}/referrer-app-without-filters"),
            path,
            &format!("{s}&app_id=app-1&app_key=key-1&referrer=evil.org"),
        );
        c.get(
            format!("{ep}/oauth-service-app-id-only"),
            path,
            "provider_key=pk-diff&service_id=9103&app_id=oa-1",
        );
        c.get(
            format!("{ep}/oauth-service-bad-key"),
            path,
            "provider_key=pk-diff&service_id=9103&app_id=oa-1&app_key=nope",
        );
    }

    // The OAuth pair.
    for (ep, path) in [
        ("oauth_authorize", OAUTH_AUTHORIZE),
        ("oauth_authrep", OAUTH_AUTHREP),
    ] {
        let s = "provider_key=pk-diff&service_id=9103";
        c.get(format!("{ep}/app"), path, &format!("{s}&app_id=oa-1"));
        c.get(
            format!("{ep}/app-with-key"),
            path,
            &format!("{s}&app_id=oa-1&app_key=oa-key"),
        );
        c.get(
            format!("{ep}/app-bad-key"),
            path,
            &format!("{s}&app_id=oa-1&app_key=nope"),
        );
        c.get(
            format!("{ep}/redirect-url-ok"),
            path,
            &format!("{s}&app_id=oa-1&redirect_url=https%3A%2F%2Fcb.example.com%2Fcb"),
        );
        c.get(
            format!("{ep}/redirect-url-bad"),
            path,
            &format!("{s}&app_id=oa-1&redirect_url=https%3A%2F%2Fevil.org%2F%3Fa%3D1%26b%3D2"),
        );
        c.get(
            format!("{ep}/redirect-uri-ok"),
            path,
            &format!("{s}&app_id=oa-1&redirect_uri=https%3A%2F%2Fcb.example.com%2Fcb"),
        );
        c.get(
            format!("{ep}/redirect-uri-bad"),
            path,
            &format!("{s}&app_id=oa-1&redirect_uri=https%3A%2F%2Fevil.org"),
        );
        c.get(
            format!("{ep}/no-keys-no-redirect"),
            path,
            &format!("{s}&app_id=oa-2"),
        );
        c.get(
            format!("{ep}/unknown-app"),
            path,
            &format!("{s}&app_id=nope"),
        );
        c.get(format!("{ep}/missing-app"), path, s);
        c.get(
            format!("{ep}/suspended-app"),
            path,
            &format!("{s}&app_id=oa-susp"),
        );
        c.get(
            format!("{ep}/access-token"),
            path,
            &format!("{s}&access_token=tkn"),
        );
        c.get(
            format!("{ep}/user-key"),
            path,
            &format!("{s}&user_key=uk-gold"),
        );
        // (An application with one key: apisonator shows the first member of a
        // Redis set, in no defined order.)
        c.get(format!("{ep}/non-oauth-service"), path, "provider_key=pk-diff&service_id=9102&app_id=app-ref&app_key=key-ref&referrer=localhost");
        c.get(
            format!("{ep}/non-oauth-service-no-keys"),
            path,
            "provider_key=pk-diff&service_id=9102&app_id=app-nokeys",
        );
        c.get(
            format!("{ep}/user-key-service"),
            path,
            "provider_key=pk-diff&service_id=9101&user_key=uk-gold",
        );
        c.get(
            format!("{ep}/service-token"),
            path,
            "service_token=tok-9103&service_id=9103&app_id=oa-1",
        );
        c.get(
            format!("{ep}/provider-key-invalid"),
            path,
            "provider_key=nope&service_id=9103&app_id=oa-1",
        );
        c.get(
            format!("{ep}/usage"),
            path,
            &format!("{s}&app_id=oa-1&usage%5Bhits%5D=1"),
        );
        c.get(
            format!("{ep}/usage-unknown-metric"),
            path,
            &format!("{s}&app_id=oa-1&usage%5Bnope%5D=1"),
        );
    }
    // OAuth limits: oa-lim has 3 hits a month.
    for i in 1..=4 {
        c.get(
            format!("oauth_authrep/limit-{i}"),
            OAUTH_AUTHREP,
            "provider_key=pk-diff&service_id=9103&app_id=oa-lim&usage%5Bhits%5D=1",
        );
    }
    c.get(
        "oauth_authorize/limit-after",
        OAUTH_AUTHORIZE,
        "provider_key=pk-diff&service_id=9103&app_id=oa-lim",
    );
    c.get_opt(
        "oauth_authorize/limit-headers",
        OAUTH_AUTHORIZE,
        "provider_key=pk-diff&service_id=9103&app_id=oa-lim",
        "limit_headers=1&rejection_reason_header=1",
    );

    // Usage values: metrics, children, `#N`, invalid values.
    for (ep, path) in both {
        let s = "provider_key=pk-diff&service_id=9101&user_key=uk-gold";
        for (name, usage) in [
            ("hits", "usage%5Bhits%5D=1"),
            ("child", "usage%5Borders%5D=2"),
            ("two-metrics", "usage%5Borders%5D=1&usage%5Bexports%5D=3"),
            ("zero", "usage%5Bhits%5D=0"),
            ("unknown-metric", "usage%5Bnope%5D=1"),
            ("unknown-and-known", "usage%5Bhits%5D=1&usage%5Bnope%5D=1"),
            ("not-a-number", "usage%5Bhits%5D=abc"),
            ("negative", "usage%5Bhits%5D=-1"),
            ("decimal", "usage%5Bhits%5D=1.5"),
            ("empty-value", "usage%5Bhits%5D="),
            ("plus-sign", "usage%5Bhits%5D=%2B2"),
            ("spaces", "usage%5Bhits%5D=%202%20"),
            ("huge", "usage%5Bhits%5D=99999999999999999999999"),
            ("set", "usage%5Bexports%5D=%2310"),
            ("set-empty", "usage%5Bexports%5D=%23"),
            ("set-bad", "usage%5Bexports%5D=%23x"),
            ("disabled-metric", "usage%5Bdisabled%5D=1"),
            ("disabled-metric-zero", "usage%5Bdisabled%5D=0"),
            ("usage-string", "usage=5"),
            ("usage-nested", "usage%5Bhits%5D%5Bx%5D=1"),
            ("usage-array", "usage%5B%5D=1"),
            ("unencoded-brackets", "usage[hits]=1"),
        ] {
            c.get(format!("{ep}/usage-{name}"), path, &format!("{s}&{usage}"));
        }
    }

    // Limits and hierarchy: u-small has hits 6/day, orders 3/hour (child of
    // hits), search 2/year (child of hits), exports 4/eternity.
    let small = "provider_key=pk-diff&service_id=9101&user_key=uk-small";
    c.get("limits/authorize-fresh", AUTHORIZE, small);
    for i in 1..=4 {
        c.get(
            format!("limits/authrep-orders-{i}"),
            AUTHREP,
            &format!("{small}&usage%5Borders%5D=1"),
        );
    }
    c.get("limits/authorize-after-orders", AUTHORIZE, small);
    c.get(
        "limits/authorize-orders-would-exceed",
        AUTHORIZE,
        &format!("{small}&usage%5Borders%5D=1"),
    );
    c.get(
        "limits/authorize-hits-within",
        AUTHORIZE,
        &format!("{small}&usage%5Bhits%5D=3"),
    );
    c.get(
        "limits/authorize-hits-over",
        AUTHORIZE,
        &format!("{small}&usage%5Bhits%5D=4"),
    );
    c.get(
        "limits/authrep-search-2",
        AUTHREP,
        &format!("{small}&usage%5Bsearch%5D=2"),
    );
    c.get(
        "limits/authrep-search-over",
        AUTHREP,
        &format!("{small}&usage%5Bsearch%5D=1"),
    );
    c.get(
        "limits/authrep-hits-over",
        AUTHREP,
        &format!("{small}&usage%5Bhits%5D=2"),
    );
    c.get(
        "limits/authrep-hits-to-limit",
        AUTHREP,
        &format!("{small}&usage%5Bhits%5D=1"),
    );
    c.get("limits/authorize-exhausted", AUTHORIZE, small);
    c.get(
        "limits/authorize-exhausted-zero-usage",
        AUTHORIZE,
        &format!("{small}&usage%5Bhits%5D=0"),
    );
    c.get_opt(
        "limits/exhausted-rejection-header",
        AUTHORIZE,
        small,
        "rejection_reason_header=1",
    );
    c.get_opt(
        "limits/exhausted-limit-headers",
        AUTHORIZE,
        small,
        "limit_headers=1",
    );
    c.get_opt(
        "limits/exhausted-all-headers",
        AUTHREP,
        &format!("{small}&usage%5Bexports%5D=1"),
        "rejection_reason_header=1&limit_headers=1",
    );
    // `#N` sets a counter instead of adding to it.
    c.get(
        "set/authrep-exports-3",
        AUTHREP,
        "provider_key=pk-diff&service_id=9101&user_key=uk-small2&usage%5Bexports%5D=%233",
    );
    c.get(
        "set/authrep-exports-add-1",
        AUTHREP,
        "provider_key=pk-diff&service_id=9101&user_key=uk-small2&usage%5Bexports%5D=1",
    );
    c.get(
        "set/authorize-exports-set-2",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-small2&usage%5Bexports%5D=%232",
    );
    c.get(
        "set/authrep-exports-set-9",
        AUTHREP,
        "provider_key=pk-diff&service_id=9101&user_key=uk-small2&usage%5Bexports%5D=%239",
    );
    c.get(
        "set/authrep-exports-set-1",
        AUTHREP,
        "provider_key=pk-diff&service_id=9101&user_key=uk-small2&usage%5Bexports%5D=%231",
    );
    c.get(
        "set/authrep-hits-set-0",
        AUTHREP,
        "provider_key=pk-diff&service_id=9101&user_key=uk-small2&usage%5Bhits%5D=%230",
    );
    c.get(
        "set/authorize-after",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-small2",
    );
    // Three levels (lines -> orders -> hits), app-hier: hits 3/day, lines 2/week.
    let hier = "provider_key=pk-diff&service_id=9102&app_id=app-hier&app_key=key-hier";
    c.get_opt("hierarchy/authorize", AUTHORIZE, hier, "hierarchy=1");
    c.get_opt(
        "hierarchy/authrep-lines",
        AUTHREP,
        &format!("{hier}&usage%5Blines%5D=1"),
        "hierarchy=1",
    );
    c.get("hierarchy/authorize-after-lines", AUTHORIZE, hier);
    c.get(
        "hierarchy/authrep-orders",
        AUTHREP,
        &format!("{hier}&usage%5Borders%5D=1"),
    );
    c.get(
        "hierarchy/authrep-lines-exceeds-hits",
        AUTHREP,
        &format!("{hier}&usage%5Blines%5D=2"),
    );
    c.get(
        "hierarchy/authrep-lines-last",
        AUTHREP,
        &format!("{hier}&usage%5Blines%5D=1"),
    );
    c.get_opt(
        "hierarchy/authorize-exhausted",
        AUTHORIZE,
        hier,
        "hierarchy=1&limit_headers=1&rejection_reason_header=1",
    );
    c.get_opt(
        "hierarchy/user-key-service",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-gold",
        "hierarchy=1",
    );
    c.get_opt(
        "hierarchy/no-limits",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-free",
        "hierarchy=1",
    );
    c.get_opt(
        "hierarchy/denied",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=nope",
        "hierarchy=1",
    );
    c.get_opt(
        "hierarchy/zero",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-gold",
        "hierarchy=0",
    );
    c.get_opt(
        "hierarchy/true",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-gold",
        "hierarchy=true",
    );
    // app-lim: hits 3/day through app keys.
    let lim = "provider_key=pk-diff&service_id=9102&app_id=app-lim&app_key=key-lim";
    for i in 1..=4 {
        c.get_opt(
            format!("app-limits/authrep-{i}"),
            AUTHREP,
            &format!("{lim}&usage%5Bhits%5D=1"),
            "limit_headers=1",
        );
    }
    c.get_opt(
        "app-limits/authorize-after",
        AUTHORIZE,
        lim,
        "limit_headers=1&rejection_reason_header=1",
    );
    c.get_opt(
        "app-limits/bad-key-first",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9102&app_id=app-lim&app_key=nope",
        "rejection_reason_header=1",
    );

    // The extensions on allowed and denied answers.
    for (ep, path) in both {
        let ok = "provider_key=pk-diff&service_id=9101&user_key=uk-gold";
        let bad = "provider_key=pk-diff&service_id=9101&user_key=nope";
        let app = "provider_key=pk-diff&service_id=9102&app_id=app-1&app_key=key-1";
        let app_bad = "provider_key=pk-diff&service_id=9102&app_id=app-1&app_key=nope";
        for (name, opts) in [
            ("rejection-reason-header", "rejection_reason_header=1"),
            (
                "rejection-reason-header-true",
                "rejection_reason_header=true",
            ),
            ("rejection-reason-header-0", "rejection_reason_header=0"),
            ("limit-headers", "limit_headers=1"),
            ("no-body", "no_body=1"),
            ("no-body-true", "no_body=true"),
            ("list-app-keys", "list_app_keys=1"),
            ("flat-usage", "flat_usage=1"),
            (
                "all",
                "rejection_reason_header=1&limit_headers=1&hierarchy=1&list_app_keys=1",
            ),
            ("unknown", "whatever=1"),
            ("empty", ""),
            ("spaces", "limit_headers=1; rejection_reason_header=1"),
        ] {
            c.get_opt(format!("{ep}/ext-{name}-ok"), path, ok, opts);
            c.get_opt(format!("{ep}/ext-{name}-denied"), path, bad, opts);
            if matches!(name, "list-app-keys" | "all" | "no-body") {
                c.get_opt(format!("{ep}/ext-{name}-app"), path, app, opts);
                c.get_opt(format!("{ep}/ext-{name}-app-denied"), path, app_bad, opts);
            }
        }
        c.get_opt(
            format!("{ep}/ext-no-body-provider-invalid"),
            path,
            "provider_key=nope&user_key=uk-gold",
            "no_body=1",
        );
        c.get_opt(
            format!("{ep}/ext-rejection-provider-invalid"),
            path,
            "provider_key=nope&user_key=uk-gold",
            "rejection_reason_header=1",
        );
        c.get_opt(
            format!("{ep}/ext-list-app-keys-no-keys"),
            path,
            "provider_key=pk-diff&service_id=9102&app_id=app-nokeys",
            "list_app_keys=1",
        );
    }
    // flat_usage: usage is not propagated to parents (u-flat: orders 3/hour
    // and hits 6/day).
    let flat = "provider_key=pk-diff&service_id=9101&user_key=uk-flat";
    c.get_opt(
        "flat/authrep-orders",
        AUTHREP,
        &format!("{flat}&usage%5Borders%5D=2"),
        "flat_usage=1",
    );
    c.get("flat/authorize-after", AUTHORIZE, flat);
    c.report_opt("flat/report-orders", &format!("provider_key={PK}&service_id=9101&transactions%5B0%5D%5Buser_key%5D=uk-flat&transactions%5B0%5D%5Busage%5D%5Borders%5D=1"), "flat_usage=1");
    c.get("flat/authorize-after-report", AUTHORIZE, flat);

    // Reports.
    let t = |i: u32, cred: &str, usage: &str| {
        format!("transactions%5B{i}%5D%5B{cred}&transactions%5B{i}%5D%5Busage%5D%5B{usage}")
    };
    let base = format!("provider_key={PK}&service_id=9101");
    c.report(
        "report/one",
        &format!("{base}&{}", t(0, "user_key%5D=uk-report", "hits%5D=2")),
    );
    c.get(
        "report/read-back-one",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-report",
    );
    c.report(
        "report/batch",
        &format!(
            "{base}&{}&{}",
            t(0, "user_key%5D=uk-report", "orders%5D=1"),
            t(1, "user_key%5D=uk-report", "exports%5D=5")
        ),
    );
    c.get(
        "report/read-back-batch",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-report",
    );
    c.report(
        "report/set",
        &format!(
            "{base}&{}",
            t(0, "user_key%5D=uk-report", "exports%5D=%2320")
        ),
    );
    c.get(
        "report/read-back-set",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-report",
    );
    c.report(
        "report/service-token",
        &format!(
            "service_token=tok-9101&service_id=9101&{}",
            t(0, "user_key%5D=uk-report", "hits%5D=1")
        ),
    );
    c.report(
        "report/app-id",
        &format!(
            "provider_key={PK}&service_id=9102&{}",
            t(0, "app_id%5D=app-1", "lines%5D=1")
        ),
    );
    c.get(
        "report/read-back-app-id",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9102&app_id=app-1&app_key=key-1",
    );
    c.report(
        "report/default-service",
        &format!(
            "provider_key={PK}&{}",
            t(0, "user_key%5D=uk-report", "hits%5D=1")
        ),
    );
    c.report(
        "report/unknown-app",
        &format!("{base}&{}", t(0, "user_key%5D=nope", "hits%5D=1")),
    );
    c.report(
        "report/unknown-metric",
        &format!("{base}&{}", t(0, "user_key%5D=uk-report", "nope%5D=1")),
    );
    c.report(
        "report/invalid-value",
        &format!("{base}&{}", t(0, "user_key%5D=uk-report", "hits%5D=abc")),
    );
    c.report(
        "report/provider-key-invalid",
        &format!(
            "provider_key=nope&service_id=9101&{}",
            t(0, "user_key%5D=uk-report", "hits%5D=1")
        ),
    );
    c.report(
        "report/no-credentials",
        &format!(
            "service_id=9101&{}",
            t(0, "user_key%5D=uk-report", "hits%5D=1")
        ),
    );
    c.report(
        "report/service-token-invalid",
        &format!(
            "service_token=nope&service_id=9101&{}",
            t(0, "user_key%5D=uk-report", "hits%5D=1")
        ),
    );
    c.report(
        "report/service-id-invalid",
        &format!(
            "provider_key={PK}&service_id=9999&{}",
            t(0, "user_key%5D=uk-report", "hits%5D=1")
        ),
    );
    c.report("report/no-transactions", &base);
    c.report(
        "report/transactions-empty",
        &format!("{base}&transactions="),
    );
    c.report(
        "report/transactions-string",
        &format!("{base}&transactions=abc"),
    );
    c.report(
        "report/suspended-service",
        &format!(
            "provider_key={PK}&service_id=9104&{}",
            t(0, "app_id%5D=app-x", "hits%5D=1")
        ),
    );
    c.report(
        "report/suspended-app",
        &format!("{base}&{}", t(0, "user_key%5D=uk-susp", "hits%5D=1")),
    );
    c.report(
        "report/over-limit-accepted",
        &format!("{base}&{}", t(0, "user_key%5D=uk-small", "hits%5D=50")),
    );
    c.get("report/read-back-over-limit", AUTHORIZE, small);
    c.report(
        "report/unencoded",
        &format!("{base}&transactions[0][user_key]=uk-report&transactions[0][usage][hits]=1"),
    );
    c.get(
        "report/read-back-all",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-report",
    );
    // Timestamps: u-ts (small plan; exports counts for eternity).
    let ts = |stamp: &str| {
        format!(
            "{base}&transactions%5B0%5D%5Buser_key%5D=uk-ts&transactions%5B0%5D%5Busage%5D%5Bexports%5D=1&transactions%5B0%5D%5Btimestamp%5D={stamp}"
        )
    };
    c.report("timestamp/utc", &ts("2010-05-16%2013%3A47%3A12%20%2B0000"));
    c.report("timestamp/offset", &ts("2010-05-16%2013%3A47%3A12%20-0700"));
    c.report("timestamp/empty", &ts(""));
    c.report("timestamp/garbage", &ts("not-a-time"));
    c.get(
        "timestamp/read-back",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-ts",
    );
    c.report("timestamp/now-hits", &format!("{base}&transactions%5B0%5D%5Buser_key%5D=uk-ts&transactions%5B0%5D%5Busage%5D%5Bhits%5D=1&transactions%5B0%5D%5Btimestamp%5D=2010-01-01%2000%3A00%3A00%20%2B0000"));
    c.get(
        "timestamp/read-back-hits",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-ts",
    );

    // Requests the backend does not serve.
    c.get(
        "other/unknown-path",
        "/transactions/nope.xml",
        "provider_key=pk-diff",
    );
    c.get(
        "other/authorize-json",
        "/transactions/authorize.json",
        "provider_key=pk-diff&user_key=uk-gold",
    );
    c.push(
        "other/post-authorize",
        "POST",
        "/transactions/authorize.xml?provider_key=pk-diff&user_key=uk-gold",
    );
    c.get(
        "other/get-report",
        "/transactions.xml",
        "provider_key=pk-diff",
    );
    c.get("other/root", "/", "");
    c.get_h(
        "other/authorize-post-form-in-query",
        AUTHORIZE,
        "provider_key=pk-diff&user_key=uk-gold&usage%5Bhits%5D=1",
        ("content-type", "text/plain"),
    );

    // Request paths that rack-protection cleans before routing.
    let gold = "provider_key=pk-diff&service_id=9101&user_key=uk-gold";
    c.get(
        "path/double-slash-start",
        "//transactions/authorize.xml",
        gold,
    );
    c.get(
        "path/double-slash-middle",
        "/transactions//authorize.xml",
        gold,
    );
    c.raw_get("path/dot", &format!("/./transactions/authorize.xml?{gold}"));
    c.raw_get(
        "path/dot-dot",
        &format!("/x/../transactions/authorize.xml?{gold}"),
    );
    c.raw_get(
        "path/encoded-dot-dot",
        &format!("/x/%2e%2e/transactions/authorize.xml?{gold}"),
    );
    c.raw_get(
        "path/backslash",
        &format!("/x/..%5Ctransactions/authorize.xml?{gold}"),
    );
    c.raw_get("path/traversal-to-status", "/transactions/../status");
    c.get("path/encoded-slash", "/transactions%2Fauthorize.xml", gold);
    // Malformed `3scale-options`.
    c.get_opt("options/malformed-percent", AUTHORIZE, gold, "%%%");
    c.get_opt(
        "options/malformed-escape",
        AUTHORIZE,
        gold,
        "limit_headers=%zz",
    );
    c.get_opt("options/only-name", AUTHORIZE, gold, "limit_headers");
    // Control characters echoed in an error message.
    c.get(
        "echo/control-character",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=a%01b%7Fc",
    );
    c.get(
        "echo/invalid-utf8",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=a%FFb",
    );
    // A very long query.
    c.raw_get(
        "other/long-query",
        &format!("{AUTHORIZE}?{gold}&x={}", "a".repeat(11 * 1024)),
    );
    c.raw_get(
        "other/query-under-limit",
        &format!("{AUTHORIZE}?{gold}&x={}", "a".repeat(9 * 1024)),
    );
    // Report bodies.
    c.report(
        "report/usage-string",
        &format!(
            "{base}&transactions%5B0%5D%5Buser_key%5D=uk-report&transactions%5B0%5D%5Busage%5D=5"
        ),
    );
    c.report(
        "report/usage-missing",
        &format!("{base}&transactions%5B0%5D%5Buser_key%5D=uk-report"),
    );
    c.push(
        "report/multipart-without-boundary",
        "POST",
        "/transactions.xml",
    );
    {
        let last = c.list.last_mut().expect("just pushed");
        last.body = Some(format!(
            "{base}&{}",
            t(0, "user_key%5D=uk-report", "hits%5D=1")
        ));
        last.headers
            .push(("content-type", "multipart/form-data".to_string()));
    }
    c.push("report/multipart-empty", "POST", "/transactions.xml");
    {
        let last = c.list.last_mut().expect("just pushed");
        last.body = Some(String::new());
        last.headers.push((
            "content-type",
            "multipart/form-data; boundary=xyz".to_string(),
        ));
    }
    c.get(
        "report/read-back-bodies",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=uk-report",
    );
    // Report timestamps as Ruby's `Date._parse` reads them (today's date in
    // several spellings; exports counts for eternity on u-ts).
    let today = chrono::Utc::now().date_naive();
    let now = chrono::Utc::now();
    for (name, stamp) in [
        ("iso", today.format("%Y-%m-%d").to_string()),
        ("slashes-d-m-y", today.format("%d/%m/%Y").to_string()),
        ("dots", today.format("%d.%m.%Y").to_string()),
        ("basic-iso", now.format("%Y%m%dT%H%M%SZ").to_string()),
        ("month-name", today.format("%d-%b-%y").to_string()),
        ("cet", now.format("%Y-%m-%d %H:%M:%S CET").to_string()),
        ("cest", now.format("%Y-%m-%d %H:%M:%S CEST").to_string()),
        ("bst", now.format("%Y-%m-%d %H:%M:%S BST").to_string()),
        ("jst", now.format("%Y-%m-%d %H:%M:%S JST").to_string()),
        (
            "gmt-plus",
            now.format("%Y-%m-%d %H:%M:%S GMT+2").to_string(),
        ),
        (
            "rfc2822",
            now.format("%a, %d %b %Y %H:%M:%S +0000").to_string(),
        ),
        ("future", "2999-01-01 00:00:00 +0000".to_string()),
    ] {
        let encoded: String = form_urlencoded::byte_serialize(stamp.as_bytes()).collect();
        c.report(format!("timestamp/{name}"), &ts(&encoded));
        c.get(
            format!("timestamp/read-back-{name}"),
            AUTHORIZE,
            "provider_key=pk-diff&service_id=9101&user_key=uk-ts",
        );
    }
    // Values apisonator writes without escaping (an application id and key
    // holding `<` and `&`): the client must read them.
    c.get(
        "unescaped/oauth-authorize",
        OAUTH_AUTHORIZE,
        "provider_key=pk-diff&service_id=9103&app_id=oa%3C%26x",
    );
    c.get(
        "unescaped/oauth-authrep",
        OAUTH_AUTHREP,
        "provider_key=pk-diff&service_id=9103&app_id=oa%3C%26x&app_key=k%3C%261",
    );
    c.get_opt(
        "unescaped/list-app-keys",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9102&app_id=app%3C%26k&app_key=k%3C%262",
        "list_app_keys=1",
    );
    c.get_opt(
        "unescaped/list-app-keys-denied",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9102&app_id=app%3C%26k&app_key=nope",
        "list_app_keys=1",
    );
    // The internal API's error log without credentials.
    c.get(
        "internal/errors-without-credentials",
        "/internal/services/9101/errors/",
        "per_page=1",
    );
    // What the error log records of the extensions: `no_body` from the header
    // or the deprecated parameter becomes a boolean.
    c.get_opt(
        "context/no-body-header-without-value-and-param",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=nb1&no_body=x",
        "no_body",
    );
    c.get(
        "context/no-body-param-empty",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=nb2&no_body=",
    );
    c.get_opt(
        "context/no-body-header-without-value",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=nb3",
        "no_body",
    );
    c.get_opt(
        "context/nested-options",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=nb4&no_body=0",
        "a[b]=1&c[]=2&c[]=3&d",
    );
    c.get_h(
        "context/forwarded-for",
        AUTHORIZE,
        "provider_key=pk-diff&service_id=9101&user_key=nb5",
        ("x-forwarded-for", "203.0.113.9, 10.0.0.1"),
    );
    c.get_h(
        "context/user-agent",
        AUTHREP,
        "provider_key=pk-diff&service_id=9101&user_key=nb6",
        ("user-agent", "probe/1.0"),
    );
    // The error log's path without the final slash, other methods, bad paging.
    c.internal(
        "internal/errors-no-slash",
        "GET",
        "/internal/services/9101/errors",
    );
    c.internal(
        "internal/errors-no-slash-query",
        "GET",
        "/internal/services/9101/errors?per_page=1",
    );
    c.internal(
        "internal/errors-no-slash-unknown-service",
        "GET",
        "/internal/services/9999/errors",
    );
    c.internal(
        "internal/errors-unknown-service",
        "GET",
        "/internal/services/9999/errors/",
    );
    c.internal(
        "internal/errors-post",
        "POST",
        "/internal/services/9101/errors/",
    );
    c.internal(
        "internal/errors-per-page-zero",
        "GET",
        "/internal/services/9101/errors/?per_page=0",
    );
    c.internal(
        "internal/errors-page-beyond",
        "GET",
        "/internal/services/9104/errors/?page=500&per_page=2",
    );
    // The health check with a foreign Referer.
    c.get_h(
        "other/status-foreign-referer",
        "/status",
        "",
        ("referer", "https://evil.org/"),
    );

    c.list
}

/// The answer of one backend, reduced to what is compared.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    /// `3scale-*` headers (names lower-cased), sorted.
    headers: BTreeMap<String, String>,
    body: String,
}

async fn send(client: &reqwest::Client, base: &str, req: &Req) -> Answer {
    if req.raw {
        return send_raw(base, req).await;
    }
    let url = format!("{base}{}", req.target);
    let mut builder = match req.method {
        "POST" => client.post(&url),
        _ => client.get(&url),
    };
    for (name, value) in &req.headers {
        builder = builder.header(*name, value);
    }
    if req.internal_auth {
        let (user, password) = internal_credentials();
        builder = builder.basic_auth(user, Some(password));
    }
    if let Some(body) = &req.body {
        builder = builder
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone());
    }
    let resp = match builder.send().await {
        Ok(resp) => resp,
        // puma answers a request line it refuses with a bare status line
        // and closes the connection before reading the request, which the
        // client reports as an error: the request is sent again over TCP.
        Err(e) if e.is_request() || e.is_body() || e.is_decode() => {
            return send_raw(base, req).await;
        }
        Err(e) => {
            return Answer {
                status: 0,
                headers: BTreeMap::new(),
                body: format!("no HTTP answer ({})", error_kind(&e)),
            };
        }
    };
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("3scale-"))
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = resp
        .text()
        .await
        .unwrap_or_else(|e| panic!("{}: body from {base}: {e}", req.name));
    Answer {
        status,
        headers,
        body,
    }
}

/// Sends `req` over a fresh TCP connection as written and reads the answer
/// until the server closes it.
async fn send_raw(base: &str, req: &Req) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let authority = base.trim_start_matches("http://");
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n",
        req.method, req.target
    );
    for (name, value) in &req.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = req.body.clone().unwrap_or_default();
    if req.body.is_some() {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let failed = |what: &str| Answer {
        status: 0,
        headers: BTreeMap::new(),
        body: format!("no HTTP answer ({what})"),
    };
    let Ok(mut stream) = tokio::net::TcpStream::connect(authority).await else {
        return failed("connect");
    };
    // The server may close before reading everything; what it answered is
    // still read below.
    let _ = stream.write_all(head.as_bytes()).await;
    // Read until the answer is complete, the server closes, or it stays idle
    // for a second (puma's bare 400 has no length and the connection lingers).
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&chunk[..n]),
        }
        if complete(&raw) {
            break;
        }
    }
    if raw.is_empty() {
        return failed("nothing read");
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let mut headers = BTreeMap::new();
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().to_string();
            if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
            if name.starts_with("3scale-") {
                headers.insert(name, value);
            }
        }
    }
    let body = if chunked {
        let mut out = String::new();
        let mut rest = payload;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                break;
            };
            if size == 0 || after.len() < size {
                break;
            }
            out.push_str(&after[..size]);
            rest = after[size..].trim_start_matches("\r\n");
        }
        out
    } else {
        payload.to_string()
    };
    Answer {
        status,
        headers,
        body,
    }
}

/// Whether `raw` holds a whole HTTP answer (by its length or final chunk).
fn complete(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let head = head.to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with("0\r\n\r\n");
    }
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .is_some_and(|n| body.len() >= n)
}

/// A short, stable description of a transport error.
fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "closed"
    }
}

/// `s` from a little before byte `at` (on a character boundary).
fn around(s: &str, at: usize) -> &str {
    let mut start = at.saturating_sub(40).min(s.len());
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    &s[start..]
}

/// At most 160 characters of `s`.
fn short(s: &str) -> String {
    match s.char_indices().nth(160) {
        Some((at, _)) => format!("{}… ({} bytes)", &s[..at], s.len()),
        None => s.to_string(),
    }
}

/// Sorts the `<key id="…"/>` elements of `<app_keys>`: apisonator lists the
/// members of a Redis set, whose order is not defined (it changes from one
/// Redis process to the next).
fn sort_app_keys(body: &str) -> String {
    let Some(start) = body.find("<app_keys") else {
        return body.to_string();
    };
    let Some(open_end) = body[start..].find('>').map(|i| start + i + 1) else {
        return body.to_string();
    };
    let Some(close) = body[open_end..].find("</app_keys>").map(|i| open_end + i) else {
        return body.to_string();
    };
    let inner = &body[open_end..close];
    let mut keys: Vec<&str> = inner
        .split_inclusive("/>")
        .filter(|k| !k.is_empty())
        .collect();
    if keys.concat() != inner {
        return body.to_string();
    }
    keys.sort_unstable();
    format!("{}{}{}", &body[..open_end], keys.concat(), &body[close..])
}

/// Replaces the text of every `<period_start>` and `<period_end>` with `*`.
fn normalise_periods(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    loop {
        let next = ["<period_start>", "<period_end>"]
            .iter()
            .filter_map(|tag| rest.find(tag).map(|at| (at, *tag)))
            .min();
        let Some((at, tag)) = next else {
            out.push_str(rest);
            return out;
        };
        let open_end = at + tag.len();
        out.push_str(&rest[..open_end]);
        let close = format!("</{}", &tag[1..]);
        match rest[open_end..].find(&close) {
            Some(len) => {
                out.push('*');
                rest = &rest[open_end + len..];
            }
            None => rest = &rest[open_end..],
        }
    }
}

/// How two answers differ (`None`: they agree). Period timestamps are compared
/// as written unless the bodies differ only there (a request that straddled a
/// period boundary between the two backends); `3scale-limit-reset` (seconds
/// to the end of the period) may differ by the time between the two requests.
fn compare(real: &Answer, emulated: &Answer) -> Option<String> {
    let mut problems = Vec::new();
    if real.status != emulated.status {
        problems.push(format!(
            "status: apisonator {} / emulator {}",
            real.status, emulated.status
        ));
    }
    let names: std::collections::BTreeSet<&String> =
        real.headers.keys().chain(emulated.headers.keys()).collect();
    for name in names {
        let (a, e) = (real.headers.get(name), emulated.headers.get(name));
        let same = match (a, e) {
            (Some(a), Some(e)) if name == "3scale-limit-reset" => {
                match (a.parse::<i64>(), e.parse::<i64>()) {
                    (Ok(a), Ok(e)) => (a - e).abs() <= 2,
                    _ => a == e,
                }
            }
            (a, e) => a == e,
        };
        if !same {
            problems.push(format!("header {name}: apisonator {a:?} / emulator {e:?}"));
        }
    }
    let (real_body, emulated_body) = (sort_app_keys(&real.body), sort_app_keys(&emulated.body));
    if real_body != emulated_body
        && normalise_periods(&real_body) != normalise_periods(&emulated_body)
    {
        let at = real
            .body
            .bytes()
            .zip(emulated.body.bytes())
            .position(|(a, e)| a != e)
            .unwrap_or(real.body.len().min(emulated.body.len()));
        problems.push(format!(
            "body (from byte {at}):\n      apisonator {:?}\n      emulator   {:?}",
            short(around(&real.body, at)),
            short(around(&emulated.body, at))
        ));
    }
    (!problems.is_empty()).then(|| problems.join("\n    "))
}

/// Waits until apisonator's worker has applied every job queued so far: one
/// more hit reported for the sentinel application, then its counter polled.
struct Barrier {
    base: String,
    sent: u64,
}

impl Barrier {
    async fn new(client: &reqwest::Client, base: &str) -> Barrier {
        let sent = sentinel_hits(client, base).await;
        Barrier {
            base: base.to_string(),
            sent,
        }
    }

    async fn wait(&mut self, client: &reqwest::Client) {
        let resp = client
            .post(format!("{}/transactions.xml", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "provider_key={PK}&service_id=9199&transactions%5B0%5D%5Bapp_id%5D=sentinel&transactions%5B0%5D%5Busage%5D%5Bhits%5D=1"
            ))
            .send()
            .await
            .expect("sentinel report");
        assert_eq!(resp.status().as_u16(), 202, "sentinel report");
        self.sent += 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if sentinel_hits(client, &self.base).await >= self.sent {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "apisonator's worker did not apply the sentinel report {} within 20 s",
                self.sent
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// The sentinel application's hits (eternity), as the backend reports them.
async fn sentinel_hits(client: &reqwest::Client, base: &str) -> u64 {
    let body = client
        .get(format!(
            "{base}/transactions/authorize.xml?provider_key={PK}&service_id=9199&app_id=sentinel"
        ))
        .send()
        .await
        .expect("sentinel authorize")
        .text()
        .await
        .expect("sentinel body");
    let value = body
        .split("<current_value>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .and_then(|v| v.parse().ok());
    value.unwrap_or_else(|| panic!("no sentinel counter in {body:?}"))
}

/// The internal API's basic auth: the kit's `APISO_INTERNAL_USER` and
/// `APISO_INTERNAL_PASSWORD`, `system`/`password` by default (the emulator
/// ignores it).
fn internal_credentials() -> (String, String) {
    let user = std::env::var("APISO_INTERNAL_USER").unwrap_or_else(|_| "system".into());
    let password = std::env::var("APISO_INTERNAL_PASSWORD").unwrap_or_else(|_| "password".into());
    (user, password)
}

/// The (code, message, context_info) of each entry of a service's error log;
/// the backend's own address in `context_info.url` is replaced by `BASE`.
async fn error_log(
    client: &reqwest::Client,
    base: &str,
    path: &str,
) -> Vec<(String, String, serde_json::Value)> {
    let (user, password) = internal_credentials();
    let resp = client
        .get(format!("{base}{path}"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap_or_else(|e| panic!("error log {base}{path}: {e}"));
    let status = resp.status();
    let headers = format!("{:?}", resp.headers());
    let text = resp.text().await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("error log {base}{path} ({status}) is not JSON ({e}): {text:?} {headers}")
    });
    json["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors list in {json}"))
        .iter()
        .map(|e| {
            let mut context = e["context_info"].clone();
            if let Some(url) = context.get_mut("url")
                && let Some(text) = url.as_str()
            {
                *url = serde_json::Value::String(text.replace(base, "BASE"));
            }
            (
                e["code"].as_str().unwrap_or_default().to_string(),
                e["message"].as_str().unwrap_or_default().to_string(),
                context,
            )
        })
        .collect()
}

/// Whether the project's client parses an XML answer of the real backend
/// (`None`: it does, or the body is not one of the backend's XML documents).
fn client_reads(body: &str) -> Option<String> {
    let after_decl = body.split_once("?>").map_or(body, |(_, rest)| rest);
    if after_decl.starts_with("<status>") {
        match threescale::xml::parse_authorization(body.as_bytes()) {
            Ok(auth) if auth.authorized == body.contains("<authorized>true</authorized>") => None,
            Ok(_) => Some("<authorized> read wrong".to_string()),
            Err(e) => Some(e.to_string()),
        }
    } else if after_decl.starts_with("<error") {
        threescale::xml::parse_error(body.as_bytes())
            .err()
            .map(|e| e.to_string())
    } else {
        None
    }
}

/// The seed, as the emulator's config.
fn emulator_config() -> EmulatorConfig {
    EmulatorConfig::from_yaml_str(SEED).expect("the seed is a valid emulator config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_agrees_with_apisonator() {
    let Ok(real) = std::env::var("THREESCALE_APISONATOR_URL") else {
        eprintln!(
            "differential suite skipped: THREESCALE_APISONATOR_URL is not set \
             (.ci/run sets it when the apisonator kit is available)"
        );
        return;
    };
    let real = real.trim_end_matches('/').to_string();
    let emulator = Emulator::start(emulator_config())
        .await
        .expect("emulator starts");
    let emulated = emulator.url();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut barrier = Barrier::new(&client, &real).await;

    let cases = cases();
    let mut agree = 0usize;
    let mut intended = Vec::new();
    let mut unexpected = Vec::new();
    let mut stale = Vec::new();
    for req in &cases {
        let a = send(&client, &real, req).await;
        let e = send(&client, &emulated, req).await;
        if req.mutates() {
            barrier.wait(&client).await;
        }
        if let Some(problem) = client_reads(&a.body) {
            unexpected.push(format!(
                "{}: the client cannot read apisonator's answer: {problem}",
                req.name
            ));
        }
        let reason = INTENDED.iter().find(|(name, _)| *name == req.name);
        match (compare(&a, &e), reason) {
            (None, None) => agree += 1,
            (None, Some(_)) => {
                agree += 1;
                stale.push(req.name.clone());
            }
            (Some(_), Some((name, why))) => intended.push(format!("{name}: {why}")),
            (Some(diff), None) => unexpected.push(format!(
                "{} ({} {})\n    {diff}",
                req.name,
                req.method,
                short(&req.target)
            )),
        }
    }
    // Report errors are not in the answers but in each service's error log:
    // its codes and messages, newest first, must be the same.
    let mut compared = cases.len();
    for service in ["9101", "9102", "9103", "9104"] {
        compared += 1;
        let path = format!("/internal/services/{service}/errors/?per_page=1000");
        let a = error_log(&client, &real, &path).await;
        let e = error_log(&client, &emulated, &path).await;
        if a == e {
            agree += 1;
        } else {
            let at = a.iter().zip(&e).take_while(|(x, y)| x == y).count();
            unexpected.push(format!(
                "error log of service {service} ({} and {} entries), from entry {at}:\n      apisonator {:?}\n      emulator   {:?}",
                a.len(),
                e.len(),
                a.get(at),
                e.get(at)
            ));
        }
    }
    println!(
        "differential: {compared} requests compared, {agree} agree, {} intended differences, {} unexpected",
        intended.len(),
        unexpected.len()
    );
    for line in &intended {
        println!("  intended: {line}");
    }
    emulator.shutdown().await;
    assert!(
        unexpected.is_empty(),
        "{} requests differ from apisonator:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    assert!(
        stale.is_empty(),
        "listed as intended differences but agree now (remove them from INTENDED): {stale:?}"
    );
}

#[test]
fn the_suite_is_well_formed() {
    let cases = cases();
    assert!(cases.len() >= 200, "only {} requests", cases.len());
    let mut names = std::collections::HashSet::new();
    for req in &cases {
        assert!(
            names.insert(req.name.as_str()),
            "duplicate name {}",
            req.name
        );
        assert!(req.target.starts_with('/'), "{}", req.name);
    }
    for (name, reason) in INTENDED {
        assert!(
            names.contains(name),
            "INTENDED names an unknown request {name}"
        );
        assert!(!reason.is_empty(), "{name} has no reason");
    }
    // The seed loads into the emulator, and every service has the provider key
    // apisonator needs.
    let config = emulator_config();
    assert!(config.services.iter().all(|s| s.provider_key.is_some()));
    assert!(config.services.iter().any(|s| s.id == "9199"));
}

#[test]
fn normalisation_hides_only_what_legitimately_differs() {
    let body = "<a><period_start>2026-12-02 00:00:00 +0000</period_start><period_end>x</period_end><max_value>5</max_value></a>";
    assert_eq!(
        normalise_periods(body),
        "<a><period_start>*</period_start><period_end>*</period_end><max_value>5</max_value></a>"
    );
    let a = Answer {
        status: 200,
        headers: BTreeMap::from([("3scale-limit-reset".to_string(), "100".to_string())]),
        body: body.to_string(),
    };
    let mut e = a.clone();
    e.headers
        .insert("3scale-limit-reset".to_string(), "99".to_string());
    e.body = body.replace("2026-12-02", "2026-12-03");
    assert_eq!(compare(&a, &e), None);
    e.body = body.replace("<max_value>5", "<max_value>6");
    assert!(compare(&a, &e).is_some());
    let keys = |k: &str| format!("<status><app_keys app=\"a\" svc=\"1\">{k}</app_keys></status>");
    let mut e = a.clone();
    let mut a = a.clone();
    a.body = keys(r#"<key id="k2"/><key id="k1"/>"#);
    e.body = keys(r#"<key id="k1"/><key id="k2"/>"#);
    assert_eq!(compare(&a, &e), None);
    e.body = keys(r#"<key id="k1"/><key id="k3"/>"#);
    assert!(compare(&a, &e).is_some());
    let a = Answer {
        body: body.to_string(),
        ..a
    };
    let mut e = a.clone();
    e.headers
        .insert("3scale-limit-reset".to_string(), "10".to_string());
    assert!(compare(&a, &e).is_some());
    let mut e = a.clone();
    e.status = 409;
    assert!(compare(&a, &e).is_some());
}
