//! The operators' console over HTTP: accounts, sessions, CSRF, the login limit and the
//! security headers, on both engines.

use std::time::Duration;

use esim_courier_console::{hash_password, ConsoleConfig, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use esim_courier_store::Role;
use esim_courier_tests::{on_both_backends, spawn_app, AppOptions, Backend, TestApp};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;

on_both_backends!(
    every_admin_page_without_a_session_goes_to_the_login_page,
    a_login_opens_a_new_session_and_a_logout_ends_it_on_the_server,
    a_wrong_password_opens_nothing_and_the_sixth_failure_in_a_minute_is_refused,
    logins_sent_at_once_get_no_more_guesses_than_the_limit,
    control_characters_in_a_name_a_search_or_an_order_number_are_answered_not_failed,
    a_post_without_its_forms_token_is_refused,
    an_idle_session_expires,
    keyset_pages_over_1000_orders_show_each_once,
    filters_and_search_find_exactly_the_matching_orders_and_the_csv_is_safe,
    a_viewer_reads_but_cannot_act_and_an_action_needs_its_forms_token,
    a_reveal_shows_the_code_on_its_answer_only_and_is_audited,
    a_resend_and_a_bulk_retry_from_the_console_go_through_the_outbox_on_record,
    two_resends_confirmed_at_once_are_two_emails_not_a_failure,
    a_filtered_retry_of_three_thousand_dead_letters_is_asked_and_done,
    the_overview_counts_what_the_store_holds_and_the_alerts_page_lists_each_alert,
    a_stored_value_that_does_not_read_back_is_not_called_an_unreachable_database,
);

const PASSWORD: &str = "a long enough passphrase";

/// A client that shows redirects instead of following them, and keeps no cookies: each test
/// sends exactly the cookies it means to.
fn client() -> reqwest::Client {
    esim_courier_tests::http_client_builder()
        .redirect(Policy::none())
        .build()
        .expect("a client")
}

async fn app(backend: Backend, console: ConsoleConfig) -> Option<TestApp> {
    let options = AppOptions {
        dispatcher: false,
        console,
        ..AppOptions::default()
    };
    spawn_app(backend, options).await
}

async fn add_user(app: &TestApp, name: &str, role: Role) {
    let hash = hash_password(PASSWORD).expect("hashes");
    assert!(app
        .store
        .add_console_user(name, role, &hash, "test")
        .await
        .expect("added"));
}

/// The value of cookie `name` set by `headers`, and the whole `Set-Cookie` line.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|line| {
            let value = line[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
            (value, line.to_owned())
        })
}

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    for (name, value) in [
        ("content-security-policy", "default-src 'self'"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: {name}"
        );
    }
}

/// The login page's CSRF cookie and the same token from its form.
async fn login_form(app: &TestApp) -> (String, String) {
    let res = client()
        .get(format!("{}/admin/login", app.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    assert_security_headers(res.headers(), "the login page");
    let (cookie, _) = set_cookie(res.headers(), LOGIN_CSRF_COOKIE).expect("a CSRF cookie");
    let html = res.text().await.expect("HTML");
    (cookie, form_token(&html))
}

/// Logs in: the answer's status and the session id it set, if any.
async fn log_in(
    app: &TestApp,
    user: &str,
    password: &str,
    old_session: Option<&str>,
) -> (u16, Option<String>) {
    let (csrf_cookie, token) = login_form(app).await;
    let mut cookies = format!("{LOGIN_CSRF_COOKIE}={csrf_cookie}");
    if let Some(old) = old_session {
        cookies.push_str(&format!("; {SESSION_COOKIE}={old}"));
    }
    let res = client()
        .post(format!("{}/admin/login", app.base))
        .header("cookie", cookies)
        .form(&[
            ("username", user),
            ("password", password),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .expect("answers");
    let status = res.status().as_u16();
    let session = set_cookie(res.headers(), SESSION_COOKIE).map(|(value, line)| {
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
            assert!(line.contains(attribute), "{line}");
        }
        if status == 303 {
            assert_eq!(
                res.headers().get(LOCATION).and_then(|v| v.to_str().ok()),
                Some("/admin/")
            );
        }
        value
    });
    (status, session.filter(|v| !v.is_empty()))
}

/// GETs `path` with `session`: the status and the body.
async fn get(app: &TestApp, path: &str, session: Option<&str>) -> (u16, String, HeaderMap) {
    let mut req = client().get(format!("{}{path}", app.base));
    if let Some(s) = session {
        req = req.header("cookie", format!("{SESSION_COOKIE}={s}"));
    }
    let res = req.send().await.expect("answers");
    let headers = res.headers().clone();
    (
        res.status().as_u16(),
        res.text().await.expect("text"),
        headers,
    )
}

/// The `csrf_token` of a console page's form.
fn form_token(html: &str) -> String {
    esim_courier_tests::console::form_token(html).expect("a csrf_token field")
}

async fn every_admin_page_without_a_session_goes_to_the_login_page(backend: Backend) {
    let Some(app) = app(backend, ConsoleConfig::default()).await else {
        return;
    };
    for path in [
        "/admin",
        "/admin/",
        "/admin/orders",
        "/admin/dead-letters",
        "/admin/anything/at/all",
    ] {
        let (status, _, headers) = get(&app, path, None).await;
        assert_eq!(status, 303, "{path}");
        assert_eq!(
            headers.get(LOCATION).and_then(|v| v.to_str().ok()),
            Some("/admin/login"),
            "{path}"
        );
        assert_security_headers(&headers, path);
        let (status, _, _) = get(&app, path, Some("not-a-session")).await;
        assert_eq!(status, 303, "{path} with a made-up session id");
    }
    app.stop().await;
}

async fn a_login_opens_a_new_session_and_a_logout_ends_it_on_the_server(backend: Backend) {
    let Some(app) = app(backend, ConsoleConfig::default()).await else {
        return;
    };
    add_user(&app, "ops-ana", Role::Operator).await;
    let (status, first) = log_in(&app, "ops-ana", PASSWORD, None).await;
    assert_eq!(status, 303);
    let first = first.expect("a session cookie");
    let (status, page, headers) = get(&app, "/admin/", Some(&first)).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("ops-ana") && page.contains("operator"),
        "{page}"
    );
    assert_security_headers(&headers, "the overview");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM console_sessions").await,
        1,
        "one session"
    );
    // The id in the database is the cookie's hash, never the id itself.
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM console_sessions WHERE id_hash = '{first}'"
        ))
        .await,
        0
    );

    // Logging in again from the same browser: a new id, and the old one is worthless.
    let (status, second) = log_in(&app, "ops-ana", PASSWORD, Some(&first)).await;
    assert_eq!(status, 303);
    let second = second.expect("a session cookie");
    assert_ne!(first, second);
    assert_eq!(get(&app, "/admin/", Some(&first)).await.0, 303);
    let (status, page, _) = get(&app, "/admin/", Some(&second)).await;
    assert_eq!(status, 200);

    // Logging out ends the session on the server: the cookie, sent again, opens nothing.
    let res = client()
        .post(format!("{}/admin/logout", app.base))
        .header("cookie", format!("{SESSION_COOKIE}={second}"))
        .form(&[("csrf_token", form_token(&page))])
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(get(&app, "/admin/", Some(&second)).await.0, 303);
    assert_eq!(app.count("SELECT COUNT(*) FROM console_sessions").await, 0);

    // A removed user's sessions end with the account.
    let (_, third) = log_in(&app, "ops-ana", PASSWORD, None).await;
    let third = third.expect("a session cookie");
    assert!(app
        .store
        .remove_console_user("ops-ana", "test")
        .await
        .expect("removed"));
    assert_eq!(get(&app, "/admin/", Some(&third)).await.0, 303);
    app.stop().await;
}

async fn a_wrong_password_opens_nothing_and_the_sixth_failure_in_a_minute_is_refused(
    backend: Backend,
) {
    let Some(app) = app(backend, ConsoleConfig::default()).await else {
        return;
    };
    add_user(&app, "ops-ben", Role::Viewer).await;
    for attempt in 1..=5 {
        let (status, session) = log_in(&app, "ops-ben", "not the password at all", None).await;
        assert_eq!((status, session), (401, None), "attempt {attempt}");
    }
    // The sixth in the minute is refused before the password is even checked: the right one
    // does not get in either.
    let (status, session) = log_in(&app, "ops-ben", PASSWORD, None).await;
    assert_eq!((status, session), (429, None));
    // An unknown user name is no different from a wrong password.
    let (status, session) = log_in(&app, "nobody", PASSWORD, None).await;
    assert_eq!(status, 429, "the same client address is past its limit");
    assert_eq!(session, None);
    assert_eq!(app.count("SELECT COUNT(*) FROM console_sessions").await, 0);
    app.stop().await;
}

/// A script sends 30 wrong passwords at once: no more of them are checked than the limit
/// allows (5 a minute), however they interleave. Successful logins are not failures.
async fn logins_sent_at_once_get_no_more_guesses_than_the_limit(backend: Backend) {
    let Some(app) = app(backend, ConsoleConfig::default()).await else {
        return;
    };
    add_user(&app, "ops-dan", Role::Operator).await;
    for attempt in 1..=6 {
        let (status, session) = log_in(&app, "ops-dan", PASSWORD, None).await;
        assert_eq!(status, 303, "login {attempt}");
        assert!(session.is_some());
    }
    let (csrf_cookie, token) = login_form(&app).await;
    let tries = (0..30).map(|i| {
        let (base, csrf_cookie, token) = (app.base.clone(), csrf_cookie.clone(), token.clone());
        async move {
            client()
                .post(format!("{base}/admin/login"))
                .header("cookie", format!("{LOGIN_CSRF_COOKIE}={csrf_cookie}"))
                .form(&[
                    ("username", "ops-dan"),
                    ("password", &format!("guess number {i}")),
                    ("csrf_token", &token),
                ])
                .send()
                .await
                .expect("answers")
                .status()
                .as_u16()
        }
    });
    let mut statuses = futures_util::future::join_all(tries).await;
    statuses.sort_unstable();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (5, 25), "{statuses:?}");
    let (status, _) = log_in(&app, "ops-dan", PASSWORD, None).await;
    assert_eq!(status, 429, "the right password waits out the minute too");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM console_login_failures WHERE source = 'user:ops-dan'")
            .await,
        5
    );
    app.stop().await;
}

/// A NUL or another control character where a name, a search or an order number goes is
/// answered as any other wrong value, on PostgreSQL too (which refuses text holding a NUL).
async fn control_characters_in_a_name_a_search_or_an_order_number_are_answered_not_failed(
    backend: Backend,
) {
    let Some(app) = app(backend, ConsoleConfig::default()).await else {
        return;
    };
    add_user(&app, "ops-eve", Role::Operator).await;
    let (status, session) = log_in(&app, "ops\0eve", PASSWORD, None).await;
    assert_eq!((status, session), (401, None), "no such user");
    let (status, session) = log_in(&app, "ops-eve", PASSWORD, None).await;
    assert_eq!(status, 303);
    let session = session.expect("a session cookie");
    for (path, want) in [
        ("/admin/orders?q=%00", 400),
        ("/admin/orders?q=B1%1B%5B2J", 400),
        ("/admin/orders.csv?q=%00", 400),
        ("/admin/orders?after=1%3A%00", 400),
        ("/admin/orders/B%001", 404),
    ] {
        let (status, body, _) = get(&app, path, Some(&session)).await;
        assert_eq!(status, want, "{path}: {body}");
    }
    let (_, page, _) = get(&app, "/admin/", Some(&session)).await;
    let res = client()
        .post(format!("{}/admin/orders/B%001/resend", app.base))
        .header("cookie", format!("{SESSION_COOKIE}={session}"))
        .form(&[
            ("csrf_token", form_token(&page).as_str()),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 404);
    app.stop().await;
}

async fn a_post_without_its_forms_token_is_refused(backend: Backend) {
    let Some(app) = app(backend, ConsoleConfig::default()).await else {
        return;
    };
    add_user(&app, "ops-cleo", Role::Operator).await;
    let (csrf_cookie, token) = login_form(&app).await;
    for (cookie, field) in [
        (None, Some(token.as_str())),
        (Some(csrf_cookie.as_str()), None),
        (Some(csrf_cookie.as_str()), Some("0000")),
    ] {
        let mut req = client().post(format!("{}/admin/login", app.base));
        if let Some(c) = cookie {
            req = req.header("cookie", format!("{LOGIN_CSRF_COOKIE}={c}"));
        }
        let mut form = vec![("username", "ops-cleo"), ("password", PASSWORD)];
        if let Some(f) = field {
            form.push(("csrf_token", f));
        }
        let res = req.form(&form).send().await.expect("answers");
        let status = res.status().as_u16();
        assert!(
            status == 403 || (field.is_none() && status == 400),
            "cookie {cookie:?}, field {field:?}: {status}"
        );
        assert!(set_cookie(res.headers(), SESSION_COOKIE).is_none());
    }
    // Logged in, a logout without the session's token changes nothing.
    let (_, session) = log_in(&app, "ops-cleo", PASSWORD, None).await;
    let session = session.expect("a session cookie");
    let res = client()
        .post(format!("{}/admin/logout", app.base))
        .header("cookie", format!("{SESSION_COOKIE}={session}"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(
        get(&app, "/admin/", Some(&session)).await.0,
        200,
        "still logged in"
    );
    app.stop().await;
}

async fn an_idle_session_expires(backend: Backend) {
    let console = ConsoleConfig {
        session_idle: Duration::from_secs(1),
        ..ConsoleConfig::default()
    };
    let Some(app) = app(backend, console).await else {
        return;
    };
    add_user(&app, "ops-dan", Role::Operator).await;
    let (_, session) = log_in(&app, "ops-dan", PASSWORD, None).await;
    let session = session.expect("a session cookie");
    // Used within the idle time, it stays open.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(get(&app, "/admin/", Some(&session)).await.0, 200);
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        get(&app, "/admin/", Some(&session)).await.0,
        303,
        "idle past its time"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM console_sessions").await, 0);
    // A session whose browser never comes back is ended by the next login.
    let (_, abandoned) = log_in(&app, "ops-dan", PASSWORD, None).await;
    assert!(abandoned.is_some());
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_, fresh) = log_in(&app, "ops-dan", PASSWORD, None).await;
    assert!(fresh.is_some());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM console_sessions").await,
        1,
        "only the new one"
    );
    app.stop().await;
}

/// An app whose console resends with the `customer` notifier, an operator and a viewer
/// logged in: (app, operator's session, viewer's session).
async fn staffed(backend: Backend) -> Option<(TestApp, String, String)> {
    let console = ConsoleConfig {
        resend_to: vec!["customer".into()],
        ..ConsoleConfig::default()
    };
    let app = app(backend, console).await?;
    add_user(&app, "ops", Role::Operator).await;
    add_user(&app, "view", Role::Viewer).await;
    let operator = log_in(&app, "ops", PASSWORD, None)
        .await
        .1
        .expect("operator session");
    let viewer = log_in(&app, "view", PASSWORD, None)
        .await
        .1
        .expect("viewer session");
    Some((app, operator, viewer))
}

fn completed(order_no: &str, iccid: &str, lpa: &str, package: &str) -> String {
    serde_json::json!({"orderNo": order_no, "result": "COMPLETED", "iccid": iccid, "lpa": lpa,
        "packageCode": "P", "packageName": package, "price": "4.20", "currency": "2"})
    .to_string()
}

fn failed(order_no: &str) -> String {
    serde_json::json!({"orderNo": order_no, "result": "FAILED", "iccid": "", "lpa": "",
        "packageName": "Japan", "price": "4.20", "currency": "2"})
    .to_string()
}

/// The order numbers linked from a list page, in order.
fn listed(html: &str) -> Vec<String> {
    html.split(r#"<a href="/admin/orders/"#)
        .skip(1)
        .filter_map(|rest| rest.split('>').nth(1)?.split('<').next())
        .map(str::to_owned)
        .collect()
}

async fn register(app: &TestApp, order_no: &str, email: &str) {
    let (status, _) = app
        .register(order_no, serde_json::json!({"email": email, "name": "Ana"}))
        .await;
    assert!(status == 200 || status == 201, "{status}");
}

async fn keyset_pages_over_1000_orders_show_each_once(backend: Backend) {
    let Some((app, operator, _)) = staffed(backend).await else {
        return;
    };
    let customer = esim_courier_core::Customer {
        email: esim_courier_core::EmailAddress::parse("bulk@traveller.example").expect("email"),
        name: None,
        locale: None,
        retail_price: None,
    };
    for i in 0..1000 {
        let order_no = esim_courier_core::OrderNo::parse(&format!("PAGE-{i:04}")).expect("order");
        app.store
            .register_customer(&order_no, &customer)
            .await
            .expect("registered");
    }
    let mut seen = Vec::new();
    let mut path = "/admin/orders".to_owned();
    loop {
        let (status, html, _) = get(&app, &path, Some(&operator)).await;
        assert_eq!(status, 200, "{path}");
        let page = listed(&html);
        assert!(page.len() <= 50, "a page holds 50 at most");
        seen.extend(page);
        match html
            .split(r#"<a rel="next" href=""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
        {
            Some(next) => path = next.replace("&amp;", "&"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 1000, "every order once");
    let distinct: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), 1000);
    let mut newest_first = seen.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        seen[..5],
        newest_first[..5],
        "newest first (ties by order number)"
    );
    app.stop().await;
}

async fn filters_and_search_find_exactly_the_matching_orders_and_the_csv_is_safe(backend: Backend) {
    let Some((app, operator, _)) = staffed(backend).await else {
        return;
    };
    let lpa = |n: u32| format!("LPA:1$rsp.demo$69C32E7D0000{n:04}");
    // EMAILED: registered, completed, delivered.
    register(&app, "F-EMAILED", "Ana@Traveller.example").await;
    app.webhook_json(completed(
        "F-EMAILED",
        "89440000000000000001",
        &lpa(1),
        "Japan",
    ))
    .await;
    // WAITING: completed, nobody registered.
    app.webhook_json(completed(
        "F-WAITING",
        "89440000000000000002",
        &lpa(2),
        "=HYPERLINK(\"http://x\")",
    ))
    .await;
    // FAILED at the provider.
    app.webhook_json(failed("F-FAILED")).await;
    // AWAITING: registered, no result yet.
    register(&app, "F-AWAITING", "ben@traveller.example").await;
    // CONFLICT: completed, then failed.
    app.webhook_json(completed(
        "F-CONFLICT",
        "89440000000000000005",
        &lpa(5),
        "Japan",
    ))
    .await;
    app.webhook_json(failed("F-CONFLICT")).await;
    // QUARANTINED: a registered order, then an authenticated body naming it without a result:
    // refused and kept aside.
    register(&app, "F-QUARANTINED", "cleo@traveller.example").await;
    let (status, _) = app.webhook_json(r#"{"orderNo":"F-QUARANTINED"}"#).await;
    assert_eq!(status, 422);
    app.drain().await;

    let show = |query: &'static str| show_sorted(&app, &operator, query);
    assert_eq!(show("filter=emailed").await, ["F-EMAILED"]);
    // The conflicting order is COMPLETED too, and nobody registered for it either.
    assert_eq!(
        show("filter=awaiting_customer").await,
        ["F-CONFLICT", "F-WAITING"]
    );
    assert_eq!(show("filter=failed").await, ["F-FAILED"]);
    assert_eq!(
        show("filter=awaiting_webhook").await,
        ["F-AWAITING", "F-QUARANTINED"]
    );
    assert_eq!(show("filter=conflict").await, ["F-CONFLICT"]);
    assert_eq!(show("filter=quarantined").await, ["F-QUARANTINED"]);
    // Search: an order number (exact, prefix), an ICCID (exact, prefix), a customer's
    // address (any case); a wildcard is only a character.
    assert_eq!(show("q=F-FAILED").await, ["F-FAILED"]);
    assert_eq!(show("q=F-CONF").await, ["F-CONFLICT"]);
    assert_eq!(show("q=89440000000000000002").await, ["F-WAITING"]);
    assert_eq!(show("q=8944000000000000000").await.len(), 3);
    assert_eq!(show("q=ana%40traveller.example").await, ["F-EMAILED"]);
    assert!(show("q=F-%25").await.is_empty());
    assert_eq!(show("q=F-&filter=failed").await, ["F-FAILED"]);
    let tomorrow = pages_day(1);
    assert_eq!(
        show_owned(&app, &operator, &format!("from={tomorrow}"))
            .await
            .len(),
        0
    );
    let yesterday = pages_day(-1);
    assert!(
        show_owned(&app, &operator, &format!("from={yesterday}"))
            .await
            .len()
            >= 5
    );
    let (status, _, _) = get(&app, "/admin/orders?from=not-a-date", Some(&operator)).await;
    assert_eq!(status, 400);

    // CSV: the filtered rows, no activation code, no cell a spreadsheet would run.
    let (status, csv, headers) = get(
        &app,
        "/admin/orders.csv?filter=awaiting_customer",
        Some(&operator),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("text/csv")));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two orders: {csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("F-WAITING") && l.contains("\"'=HYPERLINK(\"\"http://x\"\")\"")),
        "{csv}"
    );
    assert!(!csv.contains("69C32E7D"), "{csv}");
    // The address is found by its keyed hash, in any case; once the customer is erased,
    // not at all.
    assert_eq!(
        show_owned(&app, &operator, "q=ANA%40Traveller.Example").await,
        ["F-EMAILED"]
    );
    let erased = app
        .store
        .forget_customer("ana@traveller.example", "test")
        .await
        .expect("erased");
    assert_eq!(erased.orders, ["F-EMAILED"]);
    assert!(show_owned(&app, &operator, "q=ana%40traveller.example")
        .await
        .is_empty());
    app.stop().await;
}

/// `YYYY-MM-DD`, `days` from today (UTC).
fn pages_day(days: i64) -> String {
    let now = std::time::SystemTime::now();
    let t = if days >= 0 {
        now + Duration::from_secs(days.unsigned_abs() * 86_400)
    } else {
        now - Duration::from_secs(days.unsigned_abs() * 86_400)
    };
    humantime::format_rfc3339(t).to_string()[..10].to_owned()
}

async fn show_owned(app: &TestApp, session: &str, query: &str) -> Vec<String> {
    let (status, html, _) = get(app, &format!("/admin/orders?{query}"), Some(session)).await;
    assert_eq!(status, 200, "{query}");
    listed(&html)
}

/// The orders listed for `query`, sorted.
async fn show_sorted(app: &TestApp, session: &str, query: &str) -> Vec<String> {
    let mut found = show_owned(app, session, query).await;
    found.sort();
    found
}

/// POSTs a console form as `session` with `fields` (its token added unless `token` is
/// `None`): the status and the page.
async fn act(
    app: &TestApp,
    session: &str,
    path: &str,
    token: Option<&str>,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    if let Some(t) = token {
        form.push(("csrf_token", t));
    }
    let res = client()
        .post(format!("{}{path}", app.base))
        .header("cookie", format!("{SESSION_COOKIE}={session}"))
        .form(&form)
        .send()
        .await
        .expect("answers");
    (res.status().as_u16(), res.text().await.expect("text"))
}

/// The CSRF token of `session`, read from a page it gets.
async fn token_of(app: &TestApp, session: &str) -> String {
    form_token(&get(app, "/admin/", Some(session)).await.1)
}

async fn a_viewer_reads_but_cannot_act_and_an_action_needs_its_forms_token(backend: Backend) {
    let Some((app, operator, viewer)) = staffed(backend).await else {
        return;
    };
    register(&app, "V-1", "ana@traveller.example").await;
    app.webhook_json(completed(
        "V-1",
        "89440000000000000011",
        "LPA:1$rsp.demo$69C32E7D00000011",
        "Japan",
    ))
    .await;
    app.drain().await;
    let (status, page, _) = get(&app, "/admin/orders/V-1", Some(&viewer)).await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("/resend") && !page.contains("/reveal"),
        "no buttons for a viewer"
    );
    let viewer_token = token_of(&app, &viewer).await;
    for path in [
        "/admin/orders/V-1/resend",
        "/admin/orders/V-1/reveal",
        "/admin/dead-letters/retry",
    ] {
        let (status, _) = act(
            &app,
            &viewer,
            path,
            Some(&viewer_token),
            &[("confirm", "yes"), ("which", "all")],
        )
        .await;
        assert_eq!(status, 403, "a viewer: {path}");
        let (status, _) = act(
            &app,
            &operator,
            path,
            None,
            &[("confirm", "yes"), ("which", "all")],
        )
        .await;
        assert_eq!(status, 403, "no token: {path}");
        let (status, _) = act(
            &app,
            &operator,
            path,
            Some("forged"),
            &[("confirm", "yes"), ("which", "all")],
        )
        .await;
        assert_eq!(status, 403, "a wrong token: {path}");
    }
    assert_eq!(app.customer.delivered().len(), 1, "nothing was resent");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action <> 'user_added'")
            .await,
        0
    );
    app.stop().await;
}

async fn a_reveal_shows_the_code_on_its_answer_only_and_is_audited(backend: Backend) {
    let Some((app, operator, _)) = staffed(backend).await else {
        return;
    };
    let matching_id = "69C32E7D00000021";
    register(&app, "R-1", "ana@traveller.example").await;
    app.webhook_json(completed(
        "R-1",
        "89440000000000000021",
        &format!("LPA:1$rsp.demo${matching_id}"),
        "Japan",
    ))
    .await;
    app.drain().await;
    let token = token_of(&app, &operator).await;
    for path in [
        "/admin/",
        "/admin/orders",
        "/admin/orders/R-1",
        "/admin/orders.csv",
        "/admin/audit",
        "/admin/dead-letters",
    ] {
        let (status, page, _) = get(&app, path, Some(&operator)).await;
        assert_eq!(status, 200, "{path}");
        assert!(!page.contains(matching_id), "{path} shows the code");
    }
    let (_, order_page, _) = get(&app, "/admin/orders/R-1", Some(&operator)).await;
    assert!(
        order_page.contains("0021"),
        "the masked code keeps its last characters"
    );
    // The first POST asks to confirm; only the confirmed one reveals.
    let (status, asked) = act(
        &app,
        &operator,
        "/admin/orders/R-1/reveal",
        Some(&token),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        asked.contains("confirm") && !asked.contains(matching_id),
        "{asked}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'reveal'")
            .await,
        0
    );
    let (status, shown) = act(
        &app,
        &operator,
        "/admin/orders/R-1/reveal",
        Some(&token),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        shown.contains(&format!("LPA:1$rsp.demo${matching_id}")),
        "{shown}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'reveal' AND actor = 'ops' AND order_no = 'R-1'").await, 1);
    for path in ["/admin/orders/R-1", "/admin/audit"] {
        let (_, page, _) = get(&app, path, Some(&operator)).await;
        assert!(!page.contains(matching_id), "{path} after the reveal");
        assert!(page.contains("reveal"), "{path} lists the reveal");
    }
    app.stop().await;
}

/// A double click on "Yes, go ahead" (or two operators at once): both resends are queued,
/// each with its own key; neither is a unique-key failure answered as an outage.
async fn two_resends_confirmed_at_once_are_two_emails_not_a_failure(backend: Backend) {
    let Some((app, operator, _)) = staffed(backend).await else {
        return;
    };
    register(&app, "S-2", "ana@traveller.example").await;
    app.webhook_json(completed(
        "S-2",
        "89440000000000000032",
        "LPA:1$rsp.demo$69C32E7D00000032",
        "Japan",
    ))
    .await;
    app.drain().await;
    let token = token_of(&app, &operator).await;
    for round in 0..3 {
        let resend = || {
            act(
                &app,
                &operator,
                "/admin/orders/S-2/resend",
                Some(&token),
                &[("confirm", "yes")],
            )
        };
        let ((first, a), (second, b)) = tokio::join!(resend(), resend());
        assert_eq!((first, second), (200, 200), "round {round}: {a}\n{b}");
    }
    app.drain().await;
    assert_eq!(
        app.customer.delivered().len(),
        7,
        "the first and six resends"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'resend'")
            .await,
        6
    );
    app.stop().await;
}

async fn a_resend_and_a_bulk_retry_from_the_console_go_through_the_outbox_on_record(
    backend: Backend,
) {
    let Some((app, operator, _)) = staffed(backend).await else {
        return;
    };
    register(&app, "S-1", "ana@traveller.example").await;
    app.webhook_json(completed(
        "S-1",
        "89440000000000000031",
        "LPA:1$rsp.demo$69C32E7D00000031",
        "Japan",
    ))
    .await;
    app.drain().await;
    assert_eq!(app.customer.delivered().len(), 1);
    let token = token_of(&app, &operator).await;
    let (status, page) = act(
        &app,
        &operator,
        "/admin/orders/S-1/resend",
        Some(&token),
        &[("confirm", "yes")],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("a***@traveller.example"), "{page}");
    app.drain().await;
    assert_eq!(
        app.customer.delivered().len(),
        2,
        "a second activation email"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'resend' AND actor = 'ops'")
            .await,
        1
    );
    let (_, order_page, _) = get(&app, "/admin/orders/S-1", Some(&operator)).await;
    // One timeline, oldest first: the registration, the webhook, its event, the two
    // deliveries and the operator's resend between them.
    let timeline = order_page
        .split("<h2>Timeline</h2>")
        .nth(1)
        .and_then(|t| t.split("</ol>").next())
        .expect("a timeline");
    let at = |what: &str| {
        timeline
            .find(what)
            .unwrap_or_else(|| panic!("{what} in {timeline}"))
    };
    assert!(at("customer registered") < at("received #"));
    assert!(at("received #") < at("event COMPLETED (accepted, by webhook)"));
    assert!(at("event COMPLETED") < at("attempt 1 delivered to a***@traveller.example"));
    assert!(
        at("resend by ops")
            < timeline
                .rfind("attempt 1 delivered")
                .expect("the second delivery")
    );
    let notifications = order_page
        .split("<h2>Notifications</h2>")
        .nth(1)
        .expect("the notifications");
    assert_eq!(
        notifications
            .matches("delivered to a***@traveller.example")
            .count(),
        2,
        "both attempts under their jobs"
    );

    // Three failed orders whose operator alerts gave up, and the first activation email of
    // S-1 too: retry two selected, then all that a filter shows, then everything.
    for order_no in ["D-1", "D-2", "D-3"] {
        app.webhook_json(failed(order_no)).await;
    }
    app.drain().await;
    sqlx::query(
        "UPDATE outbox_jobs SET state = 'dead'
          WHERE order_no IN ('D-1', 'D-2', 'D-3')
             OR id = (SELECT MIN(id) FROM outbox_jobs WHERE order_no = 'S-1' AND kind = 'order_completed')",
    )
    .execute(&app.db)
    .await
    .expect("dead letters made");
    let dead = || app.count("SELECT COUNT(*) FROM outbox_jobs WHERE state = 'dead'");
    assert_eq!(dead().await, 4);
    let (_, dead_page, _) = get(&app, "/admin/dead-letters?notifier=ops", Some(&operator)).await;
    let ids: Vec<String> = dead_page
        .split(r#"name="id" value=""#)
        .skip(1)
        .filter_map(|r| r.split('"').next())
        .map(str::to_owned)
        .collect();
    assert_eq!(
        ids.len(),
        3,
        "the filter shows the operator channel's: {dead_page}"
    );
    // An order's dead job has its own retry; like every action it asks first.
    let (_, d1, _) = get(&app, "/admin/orders/D-1", Some(&operator)).await;
    assert!(d1.contains("Retry this dead letter"), "{d1}");
    let retry = |fields: Vec<(&'static str, String)>| {
        let (app, operator, token) = (&app, &operator, &token);
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            act(
                app,
                operator,
                "/admin/dead-letters/retry",
                Some(token),
                &fields,
            )
            .await
        }
    };
    // Nothing ticked: said so, nothing asked.
    let (status, said) = retry(vec![("which", "selected".into())]).await;
    assert_eq!(status, 400);
    assert!(said.contains("No dead letter was ticked"), "{said}");
    let (status, asked) = retry(vec![("id", ids[0].clone()), ("which", "selected".into())]).await;
    assert_eq!(status, 200);
    assert!(asked.contains("Queue 1 dead letter(s) again?"), "{asked}");
    assert_eq!(dead().await, 4, "nothing yet");
    let (status, page) = retry(vec![
        ("id", ids[0].clone()),
        ("id", ids[1].clone()),
        ("which", "selected".into()),
        ("confirm", "yes".into()),
    ])
    .await;
    assert_eq!(status, 200);
    assert!(page.contains("2 dead letter(s) queued again"), "{page}");
    // All that the filter shows: the operator channel's last one, not the customer's.
    let (_, page) = retry(vec![
        ("notifier", "ops".into()),
        ("which", "all".into()),
        ("confirm", "yes".into()),
    ])
    .await;
    assert!(page.contains("1 dead letter(s) queued again"), "{page}");
    assert_eq!(dead().await, 1, "the customer's stays dead");
    let (_, page) = retry(vec![("which", "all".into()), ("confirm", "yes".into())]).await;
    assert!(page.contains("1 dead letter(s) queued again"), "{page}");
    assert_eq!(dead().await, 0);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'dead_letter_retry' AND actor = 'ops'"
        )
        .await,
        4
    );
    app.stop().await;
}

/// An alert channel was down for a day: 3,000 of its alerts are dead letters. "Retry all"
/// with its filter asks, then queues every one; the confirmation carries the filter, not
/// 3,000 ids past the form's size limit (16 KiB).
async fn a_filtered_retry_of_three_thousand_dead_letters_is_asked_and_done(backend: Backend) {
    let Some((app, operator, _)) = staffed(backend).await else {
        return;
    };
    let mut tx = app.db.begin().await.expect("begins");
    for i in 0..3_000 {
        sqlx::query(
            "INSERT INTO outbox_jobs (dedup_key, notifier, kind, order_no, payload, state, attempts,
                 created_at, updated_at, next_attempt_at)
             VALUES ($1, 'ops', 'alert', NULL, '{}', 'dead', 5, 1, 1, 1)",
        )
        .bind(format!("down-for-a-day:{i}"))
        .execute(&mut *tx)
        .await
        .expect("a dead letter");
    }
    tx.commit().await.expect("commits");
    let token = token_of(&app, &operator).await;
    let (status, asked) = act(
        &app,
        &operator,
        "/admin/dead-letters/retry",
        Some(&token),
        &[("which", "all"), ("notifier", "ops")],
    )
    .await;
    assert_eq!(status, 200, "{asked}");
    assert!(
        asked.contains("Queue the 3000 dead letter(s) the filter shows again?"),
        "{asked}"
    );
    // The confirmation form as the browser sends it back.
    let fields: Vec<(String, String)> = asked
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .filter_map(|f| {
            let (name, rest) = f.split_once("\" value=\"")?;
            Some((name.to_owned(), rest.split('"').next()?.to_owned()))
        })
        .collect();
    let form: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, done) = act(&app, &operator, "/admin/dead-letters/retry", None, &form).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("3000 dead letter(s) queued again"), "{done}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE state = 'dead'")
            .await,
        0
    );
    app.stop().await;
}

/// The number in the overview's row headed `label`.
fn row(html: &str, label: &str) -> i64 {
    html.split(&format!("<th>{label}</th><td>"))
        .nth(1)
        .and_then(|rest| rest.split(['<', ' ']).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no row {label}: {html}"))
}

async fn the_overview_counts_what_the_store_holds_and_the_alerts_page_lists_each_alert(
    backend: Backend,
) {
    let Some((app, operator, _)) = staffed(backend).await else {
        return;
    };
    let lpa = "LPA:1$rsp.demo$69C32E7D00000041";
    register(&app, "O-1", "ana@traveller.example").await;
    // O-1 completed, retried twice by the provider; O-2 completed without a customer; O-3
    // failed, then completed (a new event); O-4 completed then failed (a conflict); one body
    // without a result (quarantined).
    for _ in 0..3 {
        app.webhook_json(completed("O-1", "89440000000000000041", lpa, "Japan"))
            .await;
    }
    app.webhook_json(completed("O-2", "89440000000000000042", lpa, "Japan"))
        .await;
    app.webhook_json(failed("O-3")).await;
    app.webhook_json(completed("O-4", "89440000000000000044", lpa, "Japan"))
        .await;
    app.webhook_json(failed("O-4")).await;
    let (status, _) = app.webhook_json(r#"{"orderNo":"O-5"}"#).await;
    assert_eq!(status, 422);
    app.drain().await;

    let (status, html, _) = get(&app, "/admin/", Some(&operator)).await;
    assert_eq!(status, 200);
    let stored = |sql: &'static str| app.count(sql);
    assert_eq!(
        row(&html, "Webhooks received"),
        stored("SELECT COUNT(*) FROM webhook_receipts").await
    );
    assert_eq!(row(&html, "Webhooks received"), 8);
    for (outcome, want) in [
        ("accepted", 4),
        ("duplicate", 2),
        ("conflict", 1),
        ("quarantined", 1),
    ] {
        assert_eq!(row(&html, outcome), want, "{outcome}");
    }
    assert_eq!(
        row(&html, "Activation emails sent"),
        1,
        "O-1's; O-2 has no customer"
    );
    assert_eq!(
        row(&html, "Alerts sent"),
        stored("SELECT COUNT(*) FROM delivery_attempts a JOIN outbox_jobs j ON j.id = a.job_id WHERE j.kind = 'alert' AND a.outcome = 'delivered'").await
    );
    assert!(
        row(&html, "Alerts sent") >= 2,
        "the FAILED order, the conflict, the quarantined body"
    );
    assert!(
        html.contains("<svg") && html.contains("8 webhooks, 1 emails"),
        "the chart"
    );
    assert!(html.contains("no sweep yet"), "{html}");

    let (status, alerts, _) = get(&app, "/admin/alerts", Some(&operator)).await;
    assert_eq!(status, 200);
    for kind in ["conflict", "webhook_rejected"] {
        assert!(
            alerts.contains(&format!("<td>{kind}</td>")),
            "{kind}: {alerts}"
        );
    }
    assert!(alerts.contains("<td>ops</td>"), "the channel");
    app.stop().await;
}

/// A stored value that no longer parses (a row written by hand, or by an older version under
/// other rules) is a 500 that says the log has the reason, not a 503 telling the operator to
/// wait for a database that is there.
async fn a_stored_value_that_does_not_read_back_is_not_called_an_unreachable_database(
    backend: Backend,
) {
    let Some((app, operator, _)) = staffed(backend).await else {
        return;
    };
    register(&app, "BAD-1", "ana@traveller.example").await;
    sqlx::query("UPDATE orders SET customer_locale = 'not a language' WHERE order_no = 'BAD-1'")
        .execute(&app.db)
        .await
        .expect("written by hand");
    let (status, body, _) = get(&app, "/admin/orders/BAD-1", Some(&operator)).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("the server's log says why"), "{body}");
    let (status, _, _) = get(&app, "/admin/orders", Some(&operator)).await;
    assert_eq!(status, 200, "the list does not read the locale");
    app.stop().await;
}
