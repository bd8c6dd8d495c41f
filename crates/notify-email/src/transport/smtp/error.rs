//! SMTP failures, and whether a retry can help.

use std::io;

use esim_courier_core::NotifyError;

/// Why an SMTP attempt failed.
#[derive(Debug)]
pub(super) enum SmtpFailure {
    /// No TCP connection (resolution, refusal, connect timeout).
    Connect(io::Error),
    /// The SMTP exchange, including TLS and login.
    Smtp(lettre::transport::smtp::Error),
}

impl From<lettre::transport::smtp::Error> for SmtpFailure {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Self::Smtp(e)
    }
}

/// SMTP failures: 4xx replies, timeouts and broken connections may pass; 5xx replies (bad
/// mailbox, refused content, failed login) and a server lacking what the configuration
/// requires (STARTTLS, an auth mechanism) will not.
pub(super) fn classify(failure: &SmtpFailure, server: &str) -> NotifyError {
    let e = match failure {
        SmtpFailure::Connect(e) if e.kind() == io::ErrorKind::TimedOut => {
            return NotifyError::transient(format!("{server} timed out: Connection error: {e}"))
        }
        SmtpFailure::Connect(e) => {
            return NotifyError::transient(format!("{server} unreachable: Connection error: {e}"))
        }
        SmtpFailure::Smtp(e) => e,
    };
    // lettre's message is the kind, the reply code and the server's text; no credentials.
    let detail = truncate(&e.to_string(), 300);
    if e.is_permanent() {
        NotifyError::permanent(format!("{server} refused: {detail}"))
    } else if e.is_transient() {
        NotifyError::transient(format!("{server} deferred: {detail}"))
    } else if e.is_timeout() {
        NotifyError::transient(format!("{server} timed out: {detail}"))
    } else if e.is_client() {
        NotifyError::permanent(format!("{server}: {detail}"))
    } else {
        NotifyError::transient(format!("{server} unreachable: {detail}"))
    }
}

/// At most `max` characters, ending in `…` when cut.
pub(super) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}
