//! Logging in to esim-courier's operators' console over HTTP as a browser does: the login
//! form's CSRF cookie and token, then the session cookie. For the suites and the benchmark
//! that drive the console without a browser.

use reqwest::header::HeaderMap;

/// The cookie `name` that `headers` set, as a `Cookie` header sends it back (`name=value`).
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|c| {
            c.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('='))
        })
        .map(str::to_owned)
}

/// The `csrf_token` a console page's form carries.
pub fn form_token(html: &str) -> Option<String> {
    html.split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
}

/// Logs in to the console at `base` (`http://host:port`) as `user`: the session cookie
/// (`esim_courier_session=…`), or what went wrong.
pub async fn log_in(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> Result<String, String> {
    let page = client
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let csrf = cookie(page.headers(), "esim_courier_login_csrf").ok_or("no login form cookie")?;
    let html = page.text().await.map_err(|e| e.to_string())?;
    let token = form_token(&html).ok_or("no csrf_token in the login form")?;
    let res = client
        .post(format!("{base}/admin/login"))
        .header("cookie", csrf)
        .form(&[
            ("username", user),
            ("password", password),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status().as_u16() != 303 {
        return Err(format!("login answered {}", res.status()));
    }
    cookie(res.headers(), "esim_courier_session").ok_or_else(|| "no session cookie".to_owned())
}
