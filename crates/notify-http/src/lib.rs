//! Shared by the HTTP notifiers: their client, error descriptions that never show the URL (it
//! may hold a secret), and `Retry-After`.

use std::time::Duration;

/// The HTTP client of a notifier: `timeout` for the connection and for the whole request, and
/// no redirects. None of the services redirects its API, and following a redirect could hand
/// the message, and a secret in the URL's path (a Referer), to someone else.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("esim-courier/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// What went wrong with a request, with its causes, without its URL.
pub fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    if parts.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", parts.join(": "))
    }
}

/// A `Retry-After` header in seconds (the form HTTP APIs use), if present and valid.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_only() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().expect("value"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().expect("value"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[tokio::test]
    async fn a_refused_connection_is_described_without_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let e = reqwest::get(format!("http://127.0.0.1:{port}/secret-path-token"))
            .await
            .expect_err("refused");
        let text = describe(&e);
        assert!(text.starts_with("could not connect"), "{text}");
        assert!(!text.contains("secret-path-token"), "{text}");
    }
}
