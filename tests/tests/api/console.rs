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
    a_post_without_its_forms_token_is_refused,
    an_idle_session_expires,
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
    let token = html
        .split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf_token field")
        .to_owned();
    (cookie, token)
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

fn form_token(html: &str) -> String {
    html.split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a csrf_token field")
        .to_owned()
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
    app.stop().await;
}
