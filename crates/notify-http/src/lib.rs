//! Shared by esim-courier's HTTP clients (the notifiers, the provider client): their client,
//! error descriptions that never show the URL (it may hold a secret), `Retry-After`, and
//! which refusals a retry can help.

mod incoming_webhook;
mod secret_url;

use std::time::Duration;

use esim_courier_core::NotifyError;

pub use incoming_webhook::{post_parts, ConfigError, IncomingWebhook, IncomingWebhookConfig};
pub use secret_url::SecretUrl;

/// Whether a retry can help after this HTTP status: 408 (timed out), 429 (rate limited) and
/// 5xx (broken on the service's side) may pass; any other 4xx will not (a bad message, a
/// revoked hook or token, a gone channel).
pub fn is_retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// The error for a request the service refused with `status`: transient, honouring the
/// service's `retry_after`, when [`is_retryable`]; permanent otherwise.
pub fn refused(status: u16, message: String, retry_after: Option<Duration>) -> NotifyError {
    if !is_retryable(status) {
        return NotifyError::permanent(message);
    }
    let error = NotifyError::transient(message);
    match retry_after {
        Some(after) => error.with_retry_after(after),
        None => error,
    }
}

/// The HTTP client of a notifier: `timeout` for the connection and for the whole request, and
/// no redirects. None of the services redirects its API, and following a redirect could hand
/// the message, and a secret in the URL's path (a Referer), to someone else.
pub fn client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("esim-courier/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A reqwest client builder on rustls with ring. Every HTTP client of esim-courier (and its
/// tests) starts here: reqwest 0.13 takes the process's default rustls crypto provider and
/// panics on `build` when there is none, so this installs ring, the provider the server's TLS
/// and the SMTP client use (one crypto library linked, not ring and aws-lc). Installing fails
/// only when the process already chose a provider, and that one then serves.
pub fn builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// A peer's own words (an error code, a description) as a short, printable text for an error
/// message: control characters become spaces, at most `max_chars` characters, trimmed.
pub fn peer_text(text: &str, max_chars: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// A request that failed before an answer came, as `what` (`"POST to crm.example failed"`)
/// and [`describe`]: a request that could not be made (a header value it cannot carry) is
/// permanent, since making it again cannot help; anything else (a timeout, a refused or
/// reset connection) transient, since the service may be back soon.
pub fn unanswered(e: &reqwest::Error, what: &str) -> NotifyError {
    let message = format!("{what}: {}", describe(e));
    if e.is_builder() {
        NotifyError::permanent(message)
    } else {
        NotifyError::transient(message)
    }
}

/// What a header value cannot hold as text, and `%` itself: control characters and, always
/// encoded, every non-ASCII byte.
const NOT_IN_A_HEADER: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS.add(b'%');

/// `text` as a header value: unchanged when it is printable ASCII, else percent-encoded
/// (control and non-ASCII characters, and `%`), since a header cannot carry them. For an
/// idempotency key or a message id made of an order number, which the provider may write in
/// another script. Printable ASCII is kept as it is so that an id already sent stays the same.
/// The price: a printable key holding a literal `%C3%91` reads like the encoding of `Ñ`, so two
/// order numbers written so (`B%C3%91`, `BÑ`) would share an id; the provider's order numbers
/// are digits.
pub fn header_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.into();
    }
    percent_encoding::utf8_percent_encode(text, NOT_IN_A_HEADER).into()
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

/// Why a body was not read whole ([`read_body`]), with what was.
#[derive(Debug)]
pub enum BodyError {
    /// It is longer than the limit: its first bytes, as many as the limit.
    TooLarge(Vec<u8>),
    /// The connection broke or timed out while it arrived: what had arrived.
    Cut(Vec<u8>),
}

impl BodyError {
    /// What was read, for a caller that makes do with the start of an answer (an error code).
    pub fn into_partial(self) -> Vec<u8> {
        match self {
            Self::TooLarge(read) | Self::Cut(read) => read,
        }
    }
}

/// A response's body, at most `max` bytes: reading stops at the limit, so a peer's answer,
/// however long, never makes this process hold more than `max` bytes of it.
pub async fn read_body(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = max - body.len();
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    return Err(BodyError::TooLarge(body));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(_) => return Err(BodyError::Cut(body)),
        }
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
    fn a_header_carries_printable_ascii_as_it_is_and_the_rest_percent_encoded() {
        for kept in ["completed:2026032517000000000042:8910:ops", "A-100%: x", ""] {
            assert_eq!(header_text(kept), kept);
        }
        assert_eq!(
            header_text("completed:Ñandú-7:8910\u{1}12:100%"),
            "completed:%C3%91and%C3%BA-7:8910%0112:100%25"
        );
        for text in ["Ñ", "a\u{7f}b", "x\ny", "注文-1"] {
            let value = header_text(text);
            assert!(
                reqwest::header::HeaderValue::from_str(&value).is_ok(),
                "{text:?} as {value:?}"
            );
        }
    }

    #[test]
    fn a_peers_words_are_short_printable_and_trimmed() {
        assert_eq!(peer_text(" invalid_blocks\n", 120), "invalid_blocks");
        assert_eq!(peer_text("a\u{1b}[31mb", 200), "a [31mb");
        assert_eq!(peer_text(&"x".repeat(500), 200).len(), 200);
    }

    /// A peer on 127.0.0.1 that answers every request with `body` (no `Content-Length`, the
    /// connection closed at its end).
    async fn peer(body: Vec<u8>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = socket.read(&mut request).await;
                    let head = "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n";
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn a_body_is_read_up_to_its_limit_and_no_further() {
        let client = client(Duration::from_secs(5)).expect("client");
        let long: Vec<u8> = (0..4 << 20).map(|i| b'a' + (i % 26) as u8).collect();
        let url = peer(long.clone()).await;
        let response = client.get(&url).send().await.expect("answered");
        match read_body(response, 4096).await {
            Err(BodyError::TooLarge(start)) => assert_eq!(start, long[..4096]),
            other => panic!("{other:?}"),
        }
        let url = peer(b"no_service".to_vec()).await;
        let response = client.get(&url).send().await.expect("answered");
        assert_eq!(
            read_body(response, 4096).await.expect("whole"),
            b"no_service"
        );
    }

    #[test]
    fn only_timeouts_rate_limits_and_server_errors_are_retried() {
        for status in [408, 429, 500, 502, 503, 599] {
            let e = refused(
                status,
                format!("HTTP {status}"),
                Some(Duration::from_secs(3)),
            );
            assert!(e.is_transient(), "{status}");
            assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        }
        for status in [400, 401, 403, 404, 410, 413, 422] {
            let e = refused(
                status,
                format!("HTTP {status}"),
                Some(Duration::from_secs(3)),
            );
            assert!(!e.is_transient(), "{status}");
            assert_eq!(e.retry_after(), None, "a permanent error has no retry time");
        }
    }

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
        let e = builder()
            .build()
            .expect("client")
            .get(format!("http://127.0.0.1:{port}/secret-path-token"))
            .send()
            .await
            .expect_err("refused");
        let text = describe(&e);
        assert!(text.starts_with("could not connect"), "{text}");
        assert!(!text.contains("secret-path-token"), "{text}");
    }
}
