//! What an operator needs to know about one notification, before any channel formatting
//! (shared by the chat notifiers; the email notifier has its own template view):
//! the facts of `crates/notify-email/src/view.rs`, in plain text, each of bounded length.
//!
//! Operators may see the contract price; the activation code appears only masked.

use std::time::{Duration, UNIX_EPOCH};

use crate::{Alert, CompletedOrder, Content, FailedOrder, Notification};

/// Longest text kept from any one field, in characters. The channel clips further to its
/// own limits; this only keeps a hostile or broken input from dominating a message.
const MAX_FIELD: usize = 1000;

/// How a notification reads at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// The provider failed an order.
    Failed,
    /// An eSIM was issued (an operator's copy).
    Completed,
    /// Something operators must act on.
    Alert,
}

/// One notification, summarised for operators.
#[derive(Debug, Clone)]
pub struct Summary {
    /// How it reads: a failure, an issued eSIM, or an alert (channels pick colours by it).
    pub tone: Tone,
    /// `order_failed`, `order_completed`, or the alert kind (`dead_letter`, ...).
    pub kind: &'static str,
    /// One line: what happened, e.g. `Order B123 failed at the provider`.
    pub title: String,
    /// A few words for a digest line, e.g. `Delivery gave up`.
    pub label: &'static str,
    /// The order it is about, if any.
    pub order_no: Option<String>,
    /// The package's name and code, e.g. `Japan 5GB (JP-5GB)`.
    pub package: Option<String>,
    /// The contract price, e.g. `9.99 USD` (operators only).
    pub price: Option<String>,
    /// When it happened, in seconds since the Unix epoch (never negative).
    pub occurred_at_secs: u64,
    /// When it happened, RFC 3339 in UTC.
    pub occurred_at: String,
    /// Why it matters and what to do.
    pub reason: String,
    /// The `esim-courier` command that inspects or fixes it.
    pub command: Option<String>,
    /// Further facts: ICCID, the masked activation code, the masked customer address.
    pub details: Vec<(&'static str, String)>,
}

/// Every single notification `n` stands for: itself, or a digest's items (flattened, should a
/// digest ever hold another).
pub fn summarise_all(n: &Notification) -> Vec<Summary> {
    let mut out = Vec::new();
    collect(n, &mut out);
    out
}

fn collect(n: &Notification, out: &mut Vec<Summary>) {
    match &n.content {
        Content::Digest(items) => items.iter().for_each(|i| collect(i, out)),
        Content::OrderFailed(o) => out.push(failed(o)),
        Content::OrderCompleted(o) => out.push(completed(o)),
        Content::Alert(a) => out.push(alert(a)),
    }
}

/// The headline of a digest: `3 orders failed at the provider, 2 alerts`.
pub fn digest_headline(items: &[Summary]) -> String {
    let count = |tone| items.iter().filter(|s| s.tone == tone).count();
    let parts: Vec<String> = [
        (count(Tone::Failed), "order failed", "orders failed"),
        (count(Tone::Alert), "alert", "alerts"),
        (
            count(Tone::Completed),
            "order completed",
            "orders completed",
        ),
    ]
    .into_iter()
    .filter(|(n, _, _)| *n > 0)
    .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
    .collect();
    if parts.is_empty() {
        "An empty digest".to_owned()
    } else {
        parts.join(", ")
    }
}

fn failed(order: &FailedOrder) -> Summary {
    let order_no = clip(order.order_no.as_str());
    Summary {
        tone: Tone::Failed,
        kind: "order_failed",
        title: format!("Order {order_no} failed at the provider"),
        label: "Order failed",
        package: package(order.package_name.as_deref(), order.package_code.as_deref()),
        price: order.contract_price.as_ref().map(|m| clip(&m.to_string())),
        occurred_at_secs: secs(order.received_at_ms),
        occurred_at: rfc3339(order.received_at_ms),
        reason: "The provider reported the order as FAILED: no eSIM was issued. \
                 Refund or re-order for the customer."
            .to_owned(),
        command: Some(crate::show_order_command(order.order_no.as_str())),
        details: Vec::new(),
        order_no: Some(order_no),
    }
}

fn completed(order: &CompletedOrder) -> Summary {
    let order_no = clip(order.order_no.as_str());
    let mut details = vec![
        ("ICCID", clip(&order.iccid)),
        ("Activation code", clip(&order.activation_code.masked())),
    ];
    if let Some(customer) = &order.customer {
        details.push(("Customer", clip(&customer.email.masked())));
    }
    Summary {
        tone: Tone::Completed,
        kind: "order_completed",
        title: format!("Order {order_no} completed"),
        label: "Order completed",
        package: package(order.package_name.as_deref(), order.package_code.as_deref()),
        price: order.contract_price.as_ref().map(|m| clip(&m.to_string())),
        occurred_at_secs: secs(order.received_at_ms),
        occurred_at: rfc3339(order.received_at_ms),
        reason: "The provider issued the eSIM.".to_owned(),
        command: Some(crate::show_order_command(order.order_no.as_str())),
        details,
        order_no: Some(order_no),
    }
}

fn alert(alert: &Alert) -> Summary {
    let label = alert.kind.title();
    let order_no = given(alert.order_no.as_deref());
    Summary {
        tone: Tone::Alert,
        kind: alert.kind.as_str(),
        title: match &order_no {
            Some(order_no) => format!("{label}: order {order_no}"),
            None => label.to_owned(),
        },
        label,
        package: given(alert.package_name.as_deref()),
        price: given(alert.price.as_deref()),
        occurred_at_secs: secs(alert.occurred_at_ms),
        occurred_at: rfc3339(alert.occurred_at_ms),
        reason: given(Some(&alert.reason)).unwrap_or_else(|| "No reason was given.".to_owned()),
        command: given(alert.command.as_deref()),
        details: Vec::new(),
        order_no,
    }
}

/// `Japan 5GB (JP-5GB)`, or whichever of the two is known.
fn package(name: Option<&str>, code: Option<&str>) -> Option<String> {
    match (given(name), given(code)) {
        (Some(n), Some(c)) => Some(clip(&format!("{n} ({c})"))),
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => None,
    }
}

/// A text that says something, trimmed and clipped: channels refuse empty texts.
fn given(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|s| !s.is_empty()).map(clip)
}

fn secs(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0) / 1000
}

/// `2024-05-01T09:30:00Z` from Unix milliseconds; times before 1970 (never expected) show as
/// the epoch.
pub fn rfc3339(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Quotes an order number for a shell when it is not a plain word, so a copied command works.
pub fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// At most [`MAX_FIELD`] characters, ending in `…` when cut.
fn clip(s: &str) -> String {
    if s.chars().count() <= MAX_FIELD {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX_FIELD - 1).collect();
        out.push('…');
        out
    }
}

/// The length of `s` in UTF-16 code units: never less than the character count chat services
/// limit messages by, so a text within a limit here is within it there.
pub fn utf16_units(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `raw` with `&`, `<` and `>` escaped as HTML entities (Slack's mrkdwn and Telegram's HTML
/// both need exactly these), at most `max` UTF-16 units long, ending in `…` when cut. Never
/// cuts inside an escape.
pub fn escape_clipped(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max));
    let mut used = 0;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        let piece = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => "",
        };
        let width = if piece.is_empty() {
            c.len_utf16()
        } else {
            piece.len()
        };
        // Keep one unit for the ellipsis unless this is the last character.
        let reserve = usize::from(chars.peek().is_some());
        if used + width + reserve > max {
            if used < max {
                out.push('…');
            }
            return out;
        }
        if piece.is_empty() {
            out.push(c);
        } else {
            out.push_str(piece);
        }
        used += width;
    }
    out
}

/// `pieces` joined by `separator` into texts of at most `max` UTF-16 units each, greedily and
/// in order: how a digest is split to fit a chat message's limits. A piece longer than `max`
/// is kept whole in a text of its own (cutting could break markup); callers clip pieces first.
pub fn pack(pieces: &[String], separator: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut fill = 0;
    for piece in pieces {
        let width = utf16_units(piece);
        match out.last_mut() {
            Some(last) if fill + utf16_units(separator) + width <= max => {
                last.push_str(separator);
                last.push_str(piece);
                fill += utf16_units(separator) + width;
            }
            _ => {
                out.push(piece.clone());
                fill = width;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_fills_texts_greedily_in_order() {
        let pieces: Vec<String> = ["aaa", "bb", "cccc", "d"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(pack(&pieces, ", ", 7), ["aaa, bb", "cccc, d"]);
        assert_eq!(
            pack(&pieces, ", ", 2),
            ["aaa", "bb", "cccc", "d"],
            "an over-long piece stays whole"
        );
        assert!(pack(&[], ", ", 10).is_empty());
    }

    #[test]
    fn times_commands_and_headlines_read_well() {
        assert_eq!(rfc3339(1_714_555_800_123), "2024-05-01T09:30:00Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
        assert_eq!(secs(-5), 0);
        assert_eq!(shell_word("B2405011234"), "B2405011234");
        assert_eq!(shell_word("it's 1"), r"'it'\''s 1'");
        assert_eq!(clip(&"x".repeat(5000)).chars().count(), MAX_FIELD);
        assert_eq!(
            package(Some("Japan 5GB"), Some("JP-5GB")).as_deref(),
            Some("Japan 5GB (JP-5GB)")
        );
        assert_eq!(package(Some(" "), None), None);
        assert_eq!(given(Some(" \n")), None);
        assert_eq!(digest_headline(&[]), "An empty digest");
    }
}
