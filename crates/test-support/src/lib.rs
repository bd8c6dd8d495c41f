//! Test doubles of the services esim-courier talks to, each a real server on 127.0.0.1:0
//! that behaves like the service, checks what it would check and records what it got:
//!
//! - [`smtp`]: an SMTP server (mailin) whose messages are parsed as a mail client would;
//! - [`http_peer`]: an HTTP peer answering as scripted (Slack, Telegram, signed webhooks);
//! - [`teams`]: a Microsoft Teams Workflows webhook that refuses what Teams refuses;
//! - [`proxy`]: a TCP proxy that can be taken down and up (outages);
//! - [`console`]: logging in to the operators' console as a browser does;
//! - [`provider`]: the eSIM provider's order API (signature checks, orders, paging, scripted
//!   error codes, the webhook pushed with the provider's retry policy).
//!
//! It depends on no esim-courier crate, so a notifier crate's tests use it without building
//! the app (the black-box suites in `tests/` re-export it).

pub mod console;
pub mod http_peer;
pub mod provider;
pub mod proxy;
pub mod smtp;
pub mod teams;

/// A reqwest client builder for tests, on rustls with ring like the app's clients
/// (`esim_courier_notify_http::builder`, which this crate does not depend on): reqwest takes
/// the process's default crypto provider and panics on `build` without one.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A default reqwest client for tests (see [`http_client_builder`]).
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("an HTTP client")
}
