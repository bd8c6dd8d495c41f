//! Slack's answers to an incoming-webhook POST, as a delivery result.
//!
//! Slack answers `200 ok`, or an HTTP error whose body is a short code such as
//! `invalid_blocks`, `no_service` (the webhook was revoked), `channel_is_archived` or
//! `rate_limited` (HTTP 429, with `Retry-After` in seconds).

use std::time::Duration;

use esim_courier_core::NotifyError;

/// Longest error body kept: Slack's codes are a few words.
const MAX_BODY: usize = 4096;

/// What one POST came to.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The HTTP status.
    pub(crate) status: u16,
    /// Slack's error code (its body), cleaned for a log line; empty on success.
    pub(crate) code: String,
    /// `Retry-After`, in seconds.
    pub(crate) retry_after: Option<Duration>,
}

impl Answer {
    /// Reads the status, `Retry-After` and (at most [`MAX_BODY`] bytes of) the body.
    pub(crate) async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let retry_after = esim_courier_notify_http::retry_after(response.headers());
        // The status decides; a body cut short only loses the error code.
        let body = esim_courier_notify_http::read_body(response, MAX_BODY)
            .await
            .unwrap_or_else(esim_courier_notify_http::BodyError::into_partial);
        Self {
            status,
            code: esim_courier_notify_http::peer_text(&String::from_utf8_lossy(&body), 120),
            retry_after,
        }
    }

    /// Success, or an error saying whether a retry can help.
    pub(crate) fn into_result(self, what: &str) -> Result<(), NotifyError> {
        if (200..300).contains(&self.status) {
            return Ok(());
        }
        let message = if self.code.is_empty() {
            format!("{what}: Slack answered HTTP {}", self.status)
        } else {
            format!(
                "{what}: Slack answered HTTP {} ({})",
                self.status, self.code
            )
        };
        // Rate limited, timed out or broken on Slack's side may pass; a bad message (400), a
        // revoked webhook (403/404) or an archived channel (410) will not.
        Err(esim_courier_notify_http::refused(
            self.status,
            message,
            self.retry_after,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, code: &str, retry_after: Option<u64>) -> Answer {
        Answer {
            status,
            code: code.into(),
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn statuses_say_whether_a_retry_can_help() {
        assert!(answer(200, "", None).into_result("post").is_ok());
        let e = answer(429, "rate_limited", Some(7))
            .into_result("post")
            .expect_err("429");
        assert!(e.is_transient());
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.message().contains("rate_limited"));
        assert!(answer(503, "", None)
            .into_result("post")
            .expect_err("503")
            .is_transient());
        for status in [400, 403, 404, 410] {
            assert!(!answer(status, "no_service", None)
                .into_result("post")
                .expect_err("4xx")
                .is_transient());
        }
    }
}
