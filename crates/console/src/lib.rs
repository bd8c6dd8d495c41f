//! The operators' web console, under `/admin` on the same listener (and TLS) as the API.
//!
//! This crate holds the accounts and sessions every page stands on, and the overview:
//!
//! - accounts live in the database (`esim-courier users add NAME --role viewer|operator
//!   --password-stdin`), passwords hashed with argon2id ([`hash_password`]);
//! - a session is a random 256-bit id in a cookie (`HttpOnly`, `SameSite=Strict`, `Path=/admin`,
//!   `Secure` behind TLS), stored by its SHA-256 in the database so replicas share it; a new
//!   id at every login, ended on the server at logout, and after `session_idle` unused;
//! - every form carries a `csrf_token` (the session's, or for the login form a cookie's), and a
//!   POST without the right one answers 403;
//! - failed logins are counted per client address (resolved as the webhook resolves it,
//!   trusted proxies included) and per user name, in the database: past
//!   `login_attempts_per_minute` in a minute, a login answers 429;
//! - every response carries `Content-Security-Policy: default-src 'self'`,
//!   `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `Cache-Control: no-store` and
//!   `X-Content-Type-Options: nosniff`; pages use no external asset and no JavaScript.
//!
//! Pages are rendered by `maud`: HTML written in Rust and checked when the crate compiles (a
//! misspelt field is a build error, not a blank page), escaped by default, no template files
//! to ship.

mod orders;
mod pages;

use std::net::IpAddr;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use esim_courier_store::{now_ms, ConsoleSession, Store};
use ipnet::IpNet;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The session cookie.
pub const SESSION_COOKIE: &str = "esim_courier_session";
/// The login form's CSRF cookie (no session exists yet).
pub const LOGIN_CSRF_COOKIE: &str = "esim_courier_login_csrf";
/// The shortest password `users add` accepts.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// How the console works.
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// A session unused this long is ended.
    pub session_idle: Duration,
    /// Failed logins allowed per client address and per user name within a minute; the next
    /// one answers 429.
    pub login_attempts_per_minute: u32,
    /// Cookies carry `Secure` (the listener speaks TLS).
    pub secure_cookies: bool,
    /// Proxies whose `X-Forwarded-For` names the client (`[webhook] trusted_proxies`).
    pub trusted_proxies: Vec<IpNet>,
    /// The customer notifiers a resend queues the activation email for (those routed on
    /// COMPLETED), as `esim-courier resend` does.
    pub resend_to: Vec<String>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(30 * 60),
            login_attempts_per_minute: 5,
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            resend_to: Vec::new(),
        }
    }
}

/// Hashes a console password with argon2id (a fresh random salt; the PHC string stores the
/// parameters). Refuses one shorter than [`MIN_PASSWORD_CHARS`].
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(format!(
            "a console password has at least {MIN_PASSWORD_CHARS} characters"
        ));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no random salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A random 256-bit token, hex.
fn token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

/// What the database knows a session by.
fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Compares two tokens in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) config: ConsoleConfig,
}

/// Registers `/admin` and everything under it.
pub fn configure(
    store: Store,
    config: ConsoleConfig,
) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    let state = web::Data::new(State { store, config });
    move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("/admin")
                .app_data(state)
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add(("Content-Security-Policy", "default-src 'self'"))
                        .add(("X-Frame-Options", "DENY"))
                        .add(("Referrer-Policy", "no-referrer"))
                        .add((header::CACHE_CONTROL, "no-store"))
                        .add(("X-Content-Type-Options", "nosniff")),
                )
                .route("/console.css", web::get().to(stylesheet))
                .route("/login", web::get().to(login_page))
                .route("/login", web::post().to(login))
                .route("/logout", web::post().to(logout))
                .route("", web::get().to(overview))
                .route("/", web::get().to(overview))
                .route("/orders", web::get().to(orders::list))
                .route("/orders.csv", web::get().to(orders::csv))
                .route("/orders/{order_no}", web::get().to(orders::show))
                .route("/orders/{order_no}/resend", web::post().to(orders::resend))
                .route("/orders/{order_no}/reveal", web::post().to(orders::reveal))
                .route("/dead-letters", web::get().to(orders::dead_letters))
                .route("/dead-letters/retry", web::post().to(orders::retry))
                .route("/audit", web::get().to(orders::audit))
                .route("/alerts", web::get().to(orders::alerts))
                .default_service(web::to(elsewhere)),
        );
    }
}

/// An answer that is not a page: a short text with its status.
pub(crate) fn plain(status: StatusCode, text: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(text.to_owned())
}

fn to_login() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/login"))
        .finish()
}

pub(crate) fn unavailable(e: &esim_courier_store::StoreError) -> HttpResponse {
    if let esim_courier_store::StoreError::Decrypt { .. } = e {
        // Names the column and the row, never the value: what the operator must restore.
        tracing::error!(error = %e, "the console read a stored value that cannot be decrypted");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, &format!("{e}."));
    }
    if e.is_unavailable() {
        tracing::error!(error = %e, "the console cannot reach the database");
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database cannot be reached; try again shortly.",
        );
    }
    // A stored value that does not read back, a statement that failed: not worth a retry,
    // and not the database's absence. What it was is in the log.
    tracing::error!(error = %e, "the console could not read what it was asked for");
    plain(
        StatusCode::INTERNAL_SERVER_ERROR,
        "This could not be read from the database; the server's log says why.",
    )
}

/// `[console] session_idle` in milliseconds.
fn idle_ms(state: &State) -> i64 {
    i64::try_from(state.config.session_idle.as_millis()).unwrap_or(i64::MAX)
}

/// The live session of `req`, if any.
async fn session(req: &HttpRequest, state: &State) -> Result<Option<ConsoleSession>, HttpResponse> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    let idle = idle_ms(state);
    state
        .store
        .console_session(&id_hash(cookie.value()), idle)
        .await
        .map_err(|e| unavailable(&e))
}

fn cookie<'c>(name: &'c str, value: String, path: &'c str, secure: bool) -> Cookie<'c> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .finish()
}

/// The one stylesheet: no session needed (the login page uses it), nothing secret in it.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("console.css"))
}

async fn login_page(state: web::Data<State>) -> HttpResponse {
    let Ok(csrf) = token() else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "no randomness available");
    };
    let page = pages::login(&csrf, None);
    HttpResponse::Ok()
        .cookie(cookie(
            LOGIN_CSRF_COOKIE,
            csrf,
            "/admin/login",
            state.config.secure_cookies,
        ))
        .content_type("text/html; charset=utf-8")
        .body(page)
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf_token: String,
}

async fn login(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    state: web::Data<State>,
) -> HttpResponse {
    let expected = req.cookie(LOGIN_CSRF_COOKIE);
    if !expected.is_some_and(|c| same(c.value(), &form.csrf_token)) {
        return plain(
            StatusCode::FORBIDDEN,
            "The form is out of date or was not sent by this console; open the login page again.",
        );
    }
    let address = esim_courier_receiver::client_address(&state.config.trusted_proxies, &req)
        .map_or_else(|| "unknown".to_owned(), |ip: IpAddr| ip.to_string());
    // No user name holds a control character; PostgreSQL refuses text with a NUL in it, so
    // such a name is kept as one that matches nobody rather than failing the login's writes.
    let name: String = form
        .username
        .trim()
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect();
    let sources = [format!("addr:{address}"), format!("user:{name}")];
    let limit = i64::from(state.config.login_attempts_per_minute);
    let attempt = match state
        .store
        .console_login_attempt(&sources, limit, 60_000)
        .await
    {
        Ok(Some(at)) => at,
        Ok(None) => {
            tracing::warn!(%address, user = %name, "console login refused: too many failed attempts in a minute");
            return plain(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed logins in the last minute; wait a minute and try again.",
            );
        }
        Err(e) => return unavailable(&e),
    };
    let credentials = match state.store.console_credentials(&name).await {
        Ok(c) => c,
        Err(e) => return unavailable(&e),
    };
    let password = form.password.clone();
    // argon2 takes tens of milliseconds of CPU: off the async workers. An unknown user is
    // checked against a fixed hash, so both answers take as long.
    let hash = credentials
        .as_ref()
        .map_or_else(|| UNKNOWN_USER_HASH.to_owned(), |(_, h)| h.clone());
    let verified = web::block(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false)
        && credentials.is_some();
    if !verified {
        // The attempt stays on record as a failure.
        tracing::warn!(%address, user = %name, "console login failed");
        let Ok(csrf) = token() else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "no randomness available");
        };
        return HttpResponse::Unauthorized()
            .cookie(cookie(
                LOGIN_CSRF_COOKIE,
                csrf.clone(),
                "/admin/login",
                state.config.secure_cookies,
            ))
            .content_type("text/html; charset=utf-8")
            .body(pages::login(&csrf, Some("Wrong user name or password.")));
    }
    if let Err(e) = state.store.console_login_succeeded(&sources, attempt).await {
        return unavailable(&e);
    }
    // A new session id at every login: whatever id the browser had before is worthless.
    let (Ok(id), Ok(csrf)) = (token(), token()) else {
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "no randomness available");
    };
    if let Some(old) = req.cookie(SESSION_COOKIE) {
        if let Err(e) = state
            .store
            .close_console_session(&id_hash(old.value()))
            .await
        {
            return unavailable(&e);
        }
    }
    if let Err(e) = state
        .store
        .open_console_session(&id_hash(&id), &name, &csrf, idle_ms(&state))
        .await
    {
        return unavailable(&e);
    }
    tracing::info!(%address, user = %name, "console login");
    let mut expired = Cookie::new(LOGIN_CSRF_COOKIE, "");
    expired.set_path("/admin/login");
    expired.make_removal();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/"))
        .cookie(cookie(
            SESSION_COOKIE,
            id,
            "/admin",
            state.config.secure_cookies,
        ))
        .cookie(expired)
        .finish()
}

/// An argon2id hash of a password nobody has: what an unknown user name is checked against.
const UNKNOWN_USER_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3qYtQhB4SqRWhHBqUmJRj1zL0oTI5o1M9hBzW6rN1C8";

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf_token: String,
}

async fn logout(
    req: HttpRequest,
    form: web::Form<CsrfForm>,
    state: web::Data<State>,
) -> HttpResponse {
    let session = match session(&req, &state).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login(),
        Err(answer) => return answer,
    };
    if !same(&session.csrf_token, &form.csrf_token) {
        return plain(
            StatusCode::FORBIDDEN,
            "The form is out of date; reload the page.",
        );
    }
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        if let Err(e) = state
            .store
            .close_console_session(&id_hash(cookie.value()))
            .await
        {
            return unavailable(&e);
        }
    }
    tracing::info!(user = %session.user, "console logout");
    let mut gone = Cookie::new(SESSION_COOKIE, "");
    gone.set_path("/admin");
    gone.make_removal();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/admin/login"))
        .cookie(gone)
        .finish()
}

/// The session of a page's request, or the answer to give instead (the login page).
pub(crate) async fn reader(
    req: &HttpRequest,
    state: &State,
) -> Result<ConsoleSession, HttpResponse> {
    match session(req, state).await? {
        Some(s) => Ok(s),
        None => Err(to_login()),
    }
}

/// The session of an action's request (a POST form in `fields`): logged in, the form's
/// `csrf_token` the session's (else 403), and an operator (a viewer gets 403).
pub(crate) async fn actor(
    req: &HttpRequest,
    state: &State,
    fields: &[(String, String)],
) -> Result<ConsoleSession, HttpResponse> {
    let session = reader(req, state).await?;
    let token = fields
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if !same(&session.csrf_token, token) {
        return Err(plain(
            StatusCode::FORBIDDEN,
            "The form is out of date; reload the page.",
        ));
    }
    if session.role != esim_courier_store::Role::Operator {
        tracing::warn!(user = %session.user, path = %req.path(), "a viewer tried an action");
        return Err(plain(StatusCode::FORBIDDEN, "Only operators can do this."));
    }
    Ok(session)
}

/// A page: its HTML with a 200.
pub(crate) fn page(html: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html)
}

async fn overview(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let session = match reader(&req, &state).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let now = now_ms();
    match state.store.console_overview(now).await {
        Ok(overview) => page(pages::overview(&session, &overview, now)),
        Err(e) => unavailable(&e),
    }
}

/// Any other `/admin` path: the login page without a session, else not found.
async fn elsewhere(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    match session(&req, &state).await {
        Ok(Some(_)) => plain(StatusCode::NOT_FOUND, "No such console page."),
        Ok(None) => to_login(),
        Err(answer) => answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert_ne!(
            hash,
            hash_password("correct horse battery").expect("hashes"),
            "a fresh salt"
        );
        assert!(hash_password("short").is_err());
        assert!(!verify_password("anything at all", UNKNOWN_USER_HASH));
        assert!(
            PasswordHash::new(UNKNOWN_USER_HASH).is_ok(),
            "a well-formed hash"
        );
    }

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (token().expect("random"), token().expect("random"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same(&a, &a.clone()) && !same(&a, &b) && !same(&a, &a[..63]));
        assert_ne!(id_hash(&a), a);
    }
}
