//! Conformance: error codes, messages, statuses and headers, in the backend's order.

mod common;

use common::*;

const AUTH_PATHS: [&str; 2] = ["/transactions/authorize.xml", "/transactions/authrep.xml"];
const ALL_AUTH_PATHS: [&str; 4] = [
    "/transactions/authorize.xml",
    "/transactions/authrep.xml",
    "/transactions/oauth_authorize.xml",
    "/transactions/oauth_authrep.xml",
];

#[tokio::test]
async fn provider_and_service_error_matrix() {
    let h = start().await;
    let cases: &[(&str, u16, &str, &str)] = &[
        (
            "app_id=app1&app_key=key1",
            403,
            "provider_key_or_service_token_required",
            "Provider key or service token are required",
        ),
        (
            "service_token=tok1&app_id=app1",
            422,
            "service_id_missing",
            "Service ID is missing",
        ),
        (
            "service_token=bad&service_id=1001&app_id=app1",
            403,
            "service_token_invalid",
            "service token \"bad\" or service id \"1001\" is invalid",
        ),
        (
            "service_token=tok1&service_id=1002&app_id=app1",
            403,
            "service_token_invalid",
            "service token \"tok1\" or service id \"1002\" is invalid",
        ),
        (
            "service_token=tok1&service_id=9999&app_id=app1",
            403,
            "service_token_invalid",
            "service token \"tok1\" or service id \"9999\" is invalid",
        ),
        (
            "provider_key=unknown&app_id=app1",
            403,
            "provider_key_invalid_or_service_missing",
            "provider key \"unknown\" invalid and/or service ID missing",
        ),
        (
            "provider_key=pk1&service_id=9999&app_id=app1",
            403,
            "service_id_invalid",
            "service id \"9999\" is invalid",
        ),
        (
            "provider_key=unknown&service_id=1001&app_id=app1",
            403,
            "provider_key_invalid",
            "provider key \"unknown\" is invalid",
        ),
        (
            "provider_key=pk3&service_id=1001&app_id=app1",
            403,
            "service_id_invalid",
            "service id \"1001\" is invalid",
        ),
        (
            "provider_key=pk5&app_id=a5",
            403,
            "provider_key_invalid_or_service_missing",
            "provider key \"pk5\" invalid and/or service ID missing",
        ),
        (
            // a provider key wins over a valid token pair
            "provider_key=unknown&service_token=tok1&service_id=1001&app_id=app1",
            403,
            "provider_key_invalid",
            "provider key \"unknown\" is invalid",
        ),
        (
            // blank credentials are no credentials
            "provider_key=+&service_token=&service_id=1001&app_id=app1",
            403,
            "provider_key_or_service_token_required",
            "Provider key or service token are required",
        ),
    ];
    for path in ALL_AUTH_PATHS {
        for (query, status, code, message) in cases {
            let r = get(&h, &format!("{path}?{query}")).await;
            assert_error(&r, *status, code, message);
        }
    }
    // The report endpoint checks the same credentials, without normalizing them.
    for (query, status, code, message) in &cases[..cases.len() - 1] {
        let body = format!("{query}&transactions[0][app_id]=app1&transactions[0][usage][hits]=1");
        let r = report(&h, &body).await;
        assert_error(&r, *status, code, message);
    }
    let r = report(
        &h,
        "provider_key=+&service_token=&service_id=1001&transactions[0][app_id]=app1",
    )
    .await;
    assert_error(
        &r,
        403,
        "provider_key_invalid",
        "provider key \" \" is invalid",
    );
}

#[tokio::test]
async fn valid_credential_modes() {
    let h = start().await;
    for creds in [
        "provider_key=pk1",
        "provider_key=pk1&service_id=1001",
        "service_token=tok1&service_id=1001",
        "provider_key=+&service_token=tok1&service_id=1001",
    ] {
        for path in AUTH_PATHS {
            let r = get(&h, &format!("{path}?{creds}&app_id=app1&app_key=key1")).await;
            assert_eq!(r.status, 200, "{creds} {path}: {r:?}");
            assert_listener_headers(&r);
        }
        if !creds.starts_with("provider_key=+") {
            let body =
                format!("{creds}&transactions[0][app_id]=app1&transactions[0][usage][hits]=1");
            assert_eq!(report(&h, &body).await.status, 202, "{creds}");
        }
    }
    for creds in [
        "provider_key=pk2",
        "provider_key=pk2&service_id=2001",
        "service_token=tok3&service_id=2001",
    ] {
        for path in ALL_AUTH_PATHS {
            let r = get(&h, &format!("{path}?{creds}&app_id=oapp&app_key=osecret")).await;
            assert_eq!(r.status, 200, "{creds} {path}: {r:?}");
        }
    }
    // a service id with a legacy "prefix-" part resolves to the last part
    let r = get(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&service_id=foo-1001&app_id=app1&app_key=key1",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn application_errors() {
    let h = start().await;
    for path in AUTH_PATHS {
        let base = format!("{path}?provider_key=pk1");
        assert_error(
            &get(&h, &base).await,
            404,
            "application_not_found",
            "application id is missing",
        );
        assert_error(
            &get(&h, &format!("{base}&app_id=nope")).await,
            404,
            "application_not_found",
            "application with id=\"nope\" was not found",
        );
        assert_error(
            &get(&h, &format!("{base}&app_id=app1&user_key=uk1")).await,
            403,
            "authentication_error",
            "either app_id or user_key is allowed, not both",
        );
        // a lone user_key on a backend_version 2 service
        assert_error(
            &get(&h, &format!("{base}&user_key=uk1")).await,
            404,
            "application_not_found",
            "application id is missing",
        );
        // backend_version 1
        let v1 = format!("{path}?service_token=tok2&service_id=1002");
        assert_error(
            &get(&h, &v1).await,
            403,
            "user_key_invalid",
            "user key is missing",
        );
        assert_error(
            &get(&h, &format!("{v1}&user_key=bad")).await,
            403,
            "user_key_invalid",
            "user key \"bad\" is invalid",
        );
        assert_error(
            &get(&h, &format!("{v1}&app_id=legacy-app")).await,
            403,
            "user_key_invalid",
            "user key is missing",
        );
        assert_error(
            &get(&h, &format!("{v1}&user_key=uk1&app_id=legacy-app")).await,
            403,
            "authentication_error",
            "either app_id or user_key is allowed, not both",
        );
        assert_eq!(get(&h, &format!("{v1}&user_key=uk1")).await.status, 200);
    }
}

#[tokio::test]
async fn oauth_endpoints_need_an_app_id() {
    let h = start().await;
    for path in [
        "/transactions/oauth_authorize.xml",
        "/transactions/oauth_authrep.xml",
    ] {
        assert_error(
            &get(&h, &format!("{path}?provider_key=pk2")).await,
            404,
            "application_not_found",
            "application id is missing",
        );
        assert_error(
            &get(&h, &format!("{path}?provider_key=pk2&user_key=x")).await,
            404,
            "application_not_found",
            "application id is missing",
        );
        // on a non-oauth service the app id check still comes first...
        assert_error(
            &get(&h, &format!("{path}?provider_key=pk1")).await,
            404,
            "application_not_found",
            "application id is missing",
        );
        // ...then the denial
        let r = get(
            &h,
            &format!("{path}?provider_key=pk1&app_id=app1&app_key=key1"),
        )
        .await;
        assert_eq!(r.status, 409);
        assert!(
            r.body
                .starts_with(&format!("{DECL}<status><authorized>false</authorized><reason>oauth is not enabled</reason><application><id>app1</id><key>key1</key><redirect_url></redirect_url></application><plan>Basic</plan>")),
            "{}",
            r.body
        );
    }
}

#[tokio::test]
async fn denials_are_409_status_documents() {
    let h = start().await;
    let q = "/transactions/authorize.xml?provider_key=pk1";
    let denied = |reason: &str| status_doc(Some(reason), "Basic", &basic_reports(0, 0, 0, 0));

    let r = get(&h, &format!("{q}&app_id=app1")).await;
    assert_eq!(r.status, 409);
    assert_listener_headers(&r);
    assert_eq!(r.body, denied("application key is missing"));

    let r = get(&h, &format!("{q}&app_id=app1&app_key=")).await;
    assert_eq!(r.body, denied("application key is missing"));
    let r = get(&h, &format!("{q}&app_id=app1&app_key=bad")).await;
    assert_eq!(r.body, denied("application key \"bad\" is invalid"));
    // keys are trimmed
    assert_eq!(
        get(&h, &format!("{q}&app_id=app1&app_key=+key2+"))
            .await
            .status,
        200
    );
    // an app without keys accepts any key, or none
    assert_eq!(
        get(&h, &format!("{q}&app_id=nokeys&app_key=whatever"))
            .await
            .status,
        200
    );
    assert_eq!(get(&h, &format!("{q}&app_id=nokeys")).await.status, 200);

    let r = get(&h, &format!("{q}&app_id=suspended")).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body, denied("application is not active"));

    let r = get(&h, "/transactions/authrep.xml?provider_key=pk4&app_id=a4").await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body, status_doc(Some("service is not active"), "P", &[]));
}

#[tokio::test]
async fn validator_order_first_failure_wins() {
    let h = start().await;
    // Key comes before State: a suspended app with a wrong key... has no keys here, so
    // use app1's key check against a metric error: the denial hides the bad usage.
    let r = get(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=app1&app_key=bad&usage[nope]=1",
    )
    .await;
    assert_eq!(r.status, 409);
    assert!(
        r.body
            .contains("<reason>application key \"bad\" is invalid</reason>")
    );
    // A suspended app with a bad usage value: denied before the Limits validator.
    let r = get(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=suspended&usage[hits]=-1",
    )
    .await;
    assert_eq!(r.status, 409);
    // The same usage on an active app raises the error.
    let r = get(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=nokeys&usage[hits]=-1",
    )
    .await;
    assert_error(
        &r,
        403,
        "usage_value_invalid",
        "usage value \"-1\" for metric \"hits\" is invalid",
    );
}

#[tokio::test]
async fn referrer_filters() {
    let h = start().await;
    let q = "/transactions/authorize.xml?provider_key=pk3&app_id=refapp";
    let r = get(&h, q).await;
    assert_eq!(r.status, 409);
    assert_eq!(r.body, status_doc(Some("referrer is missing"), "P", &[]));
    let r = get(&h, &format!("{q}&referrer=example.org")).await;
    assert_eq!(
        r.body,
        status_doc(Some("referrer \"example.org\" is not allowed"), "P", &[])
    );
    for ok in ["foo.example.org", "a.b.example.org", "example.com", "*"] {
        assert_eq!(
            get(&h, &format!("{q}&referrer={ok}")).await.status,
            200,
            "{ok}"
        );
    }
    for bad in ["example.comm", "xexample.com", "example.org.evil"] {
        assert_eq!(
            get(&h, &format!("{q}&referrer={bad}")).await.status,
            409,
            "{bad}"
        );
    }
    // an app without filters passes
    let r = get(
        &h,
        "/transactions/authorize.xml?provider_key=pk3&app_id=nofilters",
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn oauth_redirect_url_and_keys() {
    let h = start().await;
    let q = "/transactions/oauth_authorize.xml?provider_key=pk2&app_id=oapp";
    let app = |field: &str| {
        format!(
            "<application><id>oapp</id><key>osecret</key><{field}>http://3scale.net/cb?a=1&amp;b=2</{field}></application>"
        )
    };
    let reports = [ur("hits", "day", 10, 0, false)];

    let r = get(&h, q).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        status_doc_with(None, &app("redirect_url"), "OAuth", &reports, "")
    );

    let r = get(&h, &format!("{q}&redirect_url=http://bad")).await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body,
        status_doc_with(
            Some("redirect_url \"http://bad\" is invalid"),
            &app("redirect_url"),
            "OAuth",
            &reports,
            ""
        )
    );
    let r = get(&h, &format!("{q}&redirect_uri=http://bad")).await;
    assert_eq!(
        r.body,
        status_doc_with(
            Some("redirect_uri \"http://bad\" is invalid"),
            &app("redirect_uri"),
            "OAuth",
            &reports,
            ""
        )
    );
    // redirect_url is used first when both are sent
    let good = "http%3A%2F%2F3scale.net%2Fcb%3Fa%3D1%26b%3D2";
    let r = get(
        &h,
        &format!("{q}&redirect_url={good}&redirect_uri=http://bad"),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = get(&h, &format!("{q}&redirect_uri={good}")).await;
    assert_eq!(
        r.body,
        status_doc_with(None, &app("redirect_uri"), "OAuth", &reports, "")
    );
    // empty redirect values pass
    assert_eq!(get(&h, &format!("{q}&redirect_url=")).await.status, 200);

    // OauthKey: absent passes, present must match, empty is "missing" even without keys
    assert_eq!(get(&h, &format!("{q}&app_key=osecret")).await.status, 200);
    let r = get(&h, &format!("{q}&app_key=nope")).await;
    assert!(
        r.body
            .contains("<reason>application key \"nope\" is invalid</reason>")
    );
    let r = get(
        &h,
        "/transactions/oauth_authorize.xml?provider_key=pk2&app_id=onokeys&app_key=",
    )
    .await;
    assert_eq!(r.status, 409);
    assert_eq!(
        r.body,
        status_doc_with(
            Some("application key is missing"),
            "<application><id>onokeys</id><key></key><redirect_url></redirect_url></application>",
            "OAuth",
            &reports,
            ""
        )
    );
    // plain authorize on an oauth (OIDC) service: OauthKey, no <application>
    let r = get(
        &h,
        "/transactions/authorize.xml?provider_key=pk2&app_id=oapp",
    )
    .await;
    assert_eq!(r.body, status_doc(None, "OAuth", &reports));
    let r = get(
        &h,
        "/transactions/authrep.xml?provider_key=pk2&app_id=oapp&app_key=bad",
    )
    .await;
    assert_eq!(r.status, 409);
}

#[tokio::test]
async fn usage_errors() {
    let h = start().await;
    for path in AUTH_PATHS {
        let q = format!("{path}?provider_key=pk1&app_id=nokeys");
        assert_error(
            &get(&h, &format!("{q}&usage[nope]=1")).await,
            404,
            "metric_invalid",
            "metric \"nope\" is invalid",
        );
        let cases = [
            ("-1", "usage value \"-1\" for metric \"hits\" is invalid"),
            (
                "%23%233",
                "usage value \"##3\" for metric \"hits\" is invalid",
            ),
            ("%23", "usage value \"#\" for metric \"hits\" is invalid"),
            (
                "-%2355",
                "usage value \"-#55\" for metric \"hits\" is invalid",
            ),
            (
                "tons!",
                "usage value \"tons!\" for metric \"hits\" is invalid",
            ),
            ("1.5", "usage value \"1.5\" for metric \"hits\" is invalid"),
            ("", "usage value for metric \"hits\" can not be empty"),
            ("+++", "usage value for metric \"hits\" can not be empty"),
        ];
        for (value, message) in cases {
            let r = get(&h, &format!("{q}&usage[hits]={value}")).await;
            assert_error(&r, 403, "usage_value_invalid", message);
        }
        // the value is checked before the name, entries in order
        let r = get(&h, &format!("{q}&usage[nope]=x&usage[hits]=1")).await;
        assert_error(
            &r,
            403,
            "usage_value_invalid",
            "usage value \"x\" for metric \"nope\" is invalid",
        );
        // a nested value is "empty"
        let r = get(&h, &format!("{q}&usage[hits][x]=1")).await;
        assert_error(
            &r,
            403,
            "usage_value_invalid",
            "usage value for metric \"hits\" can not be empty",
        );
        // usage not a hash: 403 with an empty body
        let r = get(&h, &format!("{q}&usage=1")).await;
        assert_eq!(r.status, 403);
        assert_eq!(r.body, "");
        assert_listener_headers(&r);
    }
}

#[tokio::test]
async fn parameter_errors() {
    let h = start().await;
    let q = "/transactions/authorize.xml?provider_key=pk1&app_id=app1&app_key=key1";
    // malformed nested hash
    assert_error(
        &get(&h, &format!("{q}&usage[]=1&usage[hits]=1")).await,
        400,
        "bad_request",
        "request contains syntax errors, should not be repeated without modification",
    );
    // bad %-encoding
    assert_error(
        &get(&h, &format!("{q}&x=%zz")).await,
        400,
        "bad_request",
        "Invalid query parameters: invalid %-encoding",
    );
    // invalid UTF-8 wins over missing credentials
    assert_error(
        &get(
            &h,
            "/transactions/authorize.xml?service_token=foo&user_key=%ff%fe",
        )
        .await,
        422,
        "not_valid_data",
        "all data must be valid UTF8",
    );
    // user_id
    assert_error(
        &get(&h, &format!("{q}&user_id=123")).await,
        400,
        "end_users_no_longer_supported",
        "End-users are no longer supported, do not specify the user_id parameter",
    );
    // credentials come before user_id
    assert_error(
        &get(&h, "/transactions/authrep.xml?user_id=1").await,
        403,
        "provider_key_or_service_token_required",
        "Provider key or service token are required",
    );
    // a string where a hash was (Sinatra's own 400)
    let r = get(&h, &format!("{q}&usage=&usage[hits]=1")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("text/html;charset=utf-8"));
    assert_eq!(
        r.body,
        "Invalid query parameters: expected Hash (got String) for param `usage&amp;#39;"
    );
    // too many parameters (short ones: a query string over 10 KiB never reaches
    // the backend, puma in front of it answers 400 first)
    let many = vec!["a"; 4096].join("&");
    let r = get(&h, &format!("{q}&{many}")).await;
    assert_error(
        &r,
        400,
        "bad_request",
        "total number of query parameters (4099) exceeds limit (4096)",
    );
    // unknown parameters are ignored
    assert_eq!(
        get(&h, &format!("{q}&access_token=x&timestamp=1&foo[bar]=1"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn no_body_empties_errors_too() {
    let h = start().await;
    let r = get(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=nope&no_body=1",
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body, "");
    assert_error_headers(&r);
    let r = get_ext(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=nope",
        "no_body=1",
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (404, ""));
    // with no_body an unknown metric is found before the validators
    let r = get_ext(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=app1&app_key=bad&usage[nope]=1",
        "no_body=1",
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (404, ""));
    // but the UTF-8 error keeps its body
    let r = get(&h, "/transactions/authorize.xml?provider_key=%ff&no_body=1").await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("not_valid_data"));
    // and the report honours no_body on its errors
    let r = post(&h, "/transactions.xml?no_body=1", "provider_key=pk1", None).await;
    assert_eq!((r.status, r.body.as_str()), (400, ""));
}

#[tokio::test]
async fn report_synchronous_errors() {
    let h = start().await;
    let tx = "transactions[0][app_id]=app1&transactions[0][usage][hits]=1";
    assert_error(
        &post(
            &h,
            "/transactions.xml",
            &format!("provider_key=pk1&{tx}"),
            Some("application/json"),
        )
        .await,
        400,
        "content_type_invalid",
        "invalid Content-Type: application/json",
    );
    assert_error(
        &report(&h, "provider_key=pk1").await,
        400,
        "transactions_is_blank",
        "transactions parameter is blank",
    );
    assert_error(
        &report(&h, "provider_key=pk1&transactions=").await,
        400,
        "transactions_is_blank",
        "transactions parameter is blank",
    );
    assert_error(
        &report(&h, "provider_key=pk1&transactions=abc").await,
        400,
        "transactions_format_invalid",
        "transactions format is invalid",
    );
    assert_error(
        &report(&h, "provider_key=pk1&transactions[]=1").await,
        400,
        "transactions_format_invalid",
        "transactions format is invalid",
    );
    assert_error(
        &report(&h, &format!("provider_key=pk1&{tx}&transactions[1]")).await,
        400,
        "transactions_has_nil_transaction",
        "transactions has a nil transaction",
    );
    assert_error(
        &report(
            &h,
            &format!("provider_key=pk1&{tx}&transactions[1][user_id]=1"),
        )
        .await,
        400,
        "end_users_no_longer_supported",
        "End-users are no longer supported, do not specify the user_id parameter",
    );
    // missing credentials win over bad encoding
    assert_error(
        &report(&h, "transactions=%f0%90%28%bc").await,
        403,
        "provider_key_or_service_token_required",
        "Provider key or service token are required",
    );
    assert_error(
        &report(&h, "provider_key=pk1&transactions=%f0%90%28%bc").await,
        422,
        "not_valid_data",
        "all data must be valid UTF8",
    );
    // an empty provider key is blank and does not fall back to the token
    assert_error(
        &report(
            &h,
            &format!("provider_key=&service_token=tok1&service_id=1001&{tx}"),
        )
        .await,
        403,
        "service_token_invalid",
        "service token \"tok1\" or service id \"1001\" is invalid",
    );
    // multipart and missing content types are accepted
    let r = post(
        &h,
        "/transactions.xml",
        &format!("provider_key=pk1&{tx}"),
        None,
    )
    .await;
    assert_eq!(r.status, 202);
    assert_listener_headers(&r);
    assert_eq!(r.body, "");
    let multipart = "--B\r\nContent-Disposition: form-data; name=\"provider_key\"\r\n\r\npk1\r\n--B\r\nContent-Disposition: form-data; name=\"transactions[0][app_id]\"\r\n\r\napp1\r\n--B\r\nContent-Disposition: form-data; name=\"transactions[0][usage][hits]\"\r\n\r\n2\r\n--B--\r\n";
    let r = post(
        &h,
        "/transactions.xml",
        multipart,
        Some("multipart/form-data; boundary=B"),
    )
    .await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(
        h.usage("1001", threescale_emulator::AppRef::app_id("app1"))
            .unwrap()
            .usage["hits"]
            .day,
        3
    );
    // query-string parameters are merged in
    let r = post(
        &h,
        "/transactions.xml?provider_key=pk1",
        tx,
        Some("application/x-www-form-urlencoded"),
    )
    .await;
    assert_eq!(r.status, 202);
}

#[tokio::test]
async fn routes_and_service_endpoints() {
    let h = start().await;
    let r = get(&h, "/transactions.xml").await;
    assert_eq!((r.status, r.body.as_str()), (404, ""));
    assert_eq!(r.header("content-type"), Some(XML_CT));
    assert_eq!(r.header("x-cascade"), Some("pass"));
    let r = post(&h, "/transaction/authorize.xml", "", None).await;
    assert_eq!(r.status, 404);
    assert_eq!(post(&h, "/foo.html", "", None).await.status, 404);
    assert_eq!(get(&h, "/available").await.status, 404);

    let r = request(&h, reqwest::Method::HEAD, "/available").await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));

    let r = get(&h, "/status").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.body,
        "{\"status\":\"ok\",\"version\":{\"backend\":\"3.4.3\"}}"
    );

    let r = get(&h, "/check.txt").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(r.header("content-type"), Some("text/plain;charset=utf-8"));

    let r = request(&h, reqwest::Method::OPTIONS, "/transactions/authrep.xml").await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-max-age"), Some("86400"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, PATCH, PUT, DELETE")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some(
            "Authorization, Accept-Encoding, Content-Type, Cache-Control, Accept, If-Match, If-Modified-Since, If-None-Match, If-Unmodified-Since, X-Requested-With, X-HTTP-Method-Override, 3scale-options"
        )
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    // HEAD on an auth route runs it without a body
    let r = request(
        &h,
        reqwest::Method::HEAD,
        "/transactions/authorize.xml?provider_key=pk1&app_id=nope",
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (404, ""));
}

#[tokio::test]
async fn auth_errors_are_written_to_the_service_error_log() {
    let h = start().await;
    get(
        &h,
        "/transactions/authorize.xml?provider_key=pk1&app_id=nope",
    )
    .await;
    get(
        &h,
        "/transactions/authorize.xml?provider_key=unknown&app_id=nope",
    )
    .await;
    let log = h.errors("1001").unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].code, "application_not_found");
    assert_eq!(log[0].message, "application with id=\"nope\" was not found");
    assert_eq!(log[0].timestamp, "2010-05-15 12:00:00 UTC");
}
