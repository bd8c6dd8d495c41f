//! SMTP failures, and whether a retry can help.

use std::io;

use esim_courier_core::NotifyError;

/// Why an SMTP attempt failed.
#[derive(Debug)]
pub(super) enum SmtpFailure {
    /// No TCP connection (resolution, refusal, connect timeout).
    Connect(io::Error),
    /// The SMTP session before the message: greeting, TLS, login.
    Smtp(lettre::transport::smtp::Error),
    /// The message's own exchange: `MAIL FROM`, each `RCPT TO`, `DATA`.
    Transaction(lettre::transport::smtp::Error),
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
        SmtpFailure::Smtp(e) | SmtpFailure::Transaction(e) => e,
    };
    // lettre's message is the kind, the reply code and the server's text; no credentials,
    // but the text often names the recipient.
    let detail = truncate(&mask_addresses(&e.to_string()), 300);
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

/// The text with each e-mail address in it masked as operators see a customer's
/// (`b***@example.com`). Servers name the recipient in their replies (`550 5.1.1
/// <bob@example.com>: Recipient address rejected`), and this text is logged, kept with the
/// job's attempts and sent in the dead-letter alert. The shape is
/// `EmailAddress::masked`'s; a word is not parsed as an address first, since a reply may end
/// one with a full stop, which would fail the parse and leave it whole.
pub(super) fn mask_addresses(text: &str) -> String {
    let delimiter = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '<' | '>' | '(' | ')' | '[' | ']' | ',' | ';' | ':' | '"' | '\''
            )
    };
    let mut out = String::with_capacity(text.len());
    for piece in text.split_inclusive(delimiter) {
        let (word, end) = match piece.char_indices().last() {
            Some((at, c)) if delimiter(c) => piece.split_at(at),
            _ => (piece, ""),
        };
        match word.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => {
                out.extend(local.chars().take(1));
                out.push_str("***@");
                out.push_str(domain);
            }
            _ => out.push_str(word),
        }
        out.push_str(end);
    }
    out
}

/// At most `max` characters, ending in `…` when cut.
pub(super) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_addresses;

    #[test]
    fn addresses_in_a_reply_are_masked_and_the_rest_is_kept() {
        let cases = [
            (
                "permanent error (550): 5.1.1 <bob.smith@example.com>: Recipient address rejected: User unknown",
                "permanent error (550): 5.1.1 <b***@example.com>: Recipient address rejected: User unknown",
            ),
            (
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient Zoë@exämple.com not found",
                "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient Z***@exämple.com not found",
            ),
            (
                "554 identities failed the check in region EU-WEST-1: a@b.example, c@d.example",
                "554 identities failed the check in region EU-WEST-1: a***@b.example, c***@d.example",
            ),
            (
                "550 5.1.1 Recipient bob@example.com.",
                "550 5.1.1 Recipient b***@example.com.",
            ),
            ("450 4.7.1 Greylisted, try again later", "450 4.7.1 Greylisted, try again later"),
            ("a lone @ and user@ and @host stay", "a lone @ and user@ and @host stay"),
            ("", ""),
        ];
        for (reply, want) in cases {
            assert_eq!(mask_addresses(reply), want, "{reply}");
        }
    }
}
