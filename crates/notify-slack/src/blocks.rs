//! Notification -> Slack Block Kit message(s), within Slack's limits.
//!
//! One notification is one message: a header, the reason, a section of fields (order,
//! package, contract price, time, ...), the command in a code block, and a context line.
//!
//! A digest is one message too: a header that counts the items, then one compact line per
//! item, packed into sections of at most [`MAX_TEXT`] units. When the lines would need more
//! than the [`MAX_BLOCKS`] Slack allows, as many items as fit keep their line and the rest are
//! listed by order number only ("…and 254 more: B1, B2, …"), so every order number is in the
//! message. Only a digest too large even for that (several thousand orders) is sent as
//! several messages, each within the limits.

use serde_json::{json, Value};

use crate::mrkdwn::{code, code_block, escape, plain, units};
use esim_courier_core::summary::{digest_headline, pack, Summary, Tone};

/// Slack's limit on blocks per message.
pub(crate) const MAX_BLOCKS: usize = 50;
/// Slack's limit on a section's text (and the limit this crate keeps for every text).
pub(crate) const MAX_TEXT: usize = 3000;
/// Slack's limit on one field of a section.
const MAX_FIELD: usize = 2000;
/// Slack's limit on a section's number of fields.
const MAX_FIELDS: usize = 10;
/// Slack's limit on a header's text.
const MAX_HEADER: usize = 150;
/// The notification text (shown in push notifications and where blocks cannot be).
const MAX_FALLBACK: usize = 300;
/// One digest line: long reasons are cut so that a section holds at least two.
const MAX_LINE: usize = 1400;
/// A digest message has a header and a context block around its sections.
const ITEM_BLOCKS: usize = MAX_BLOCKS - 2;
/// Room kept in each "…and N more" section for its lead-in.
const LEAD_IN_ROOM: usize = 40;

/// The message(s) for a notification: one, except for a digest too large for one message.
pub(crate) fn messages(notifier: &str, items: &[Summary]) -> Vec<Value> {
    match items {
        [one] => vec![single(notifier, one)],
        many => digest(notifier, many),
    }
}

fn single(notifier: &str, s: &Summary) -> Value {
    let mut fields = Vec::new();
    let mut field = |label: &str, value: String| {
        if fields.len() < MAX_FIELDS {
            fields.push(mrkdwn(format!(
                "*{label}*\n{}",
                clip_to(&value, MAX_FIELD - units(label) - 3)
            )));
        }
    };
    if let Some(order_no) = &s.order_no {
        field("Order", code(order_no, MAX_FIELD));
    }
    if let Some(package) = &s.package {
        field("Package", escape(package, MAX_FIELD));
    }
    if let Some(price) = &s.price {
        field("Contract price", escape(price, MAX_FIELD));
    }
    field("Time", date(s, "{date_short_pretty} {time_secs}"));
    for (label, value) in &s.details {
        field(label, code(value, MAX_FIELD));
    }

    let mut blocks = vec![
        header(&format!("{} {}", emoji(s.tone), s.title)),
        section(escape(&s.reason, MAX_TEXT)),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(command) = &s.command {
        let lead = "*Run:*\n";
        blocks.push(section(format!(
            "{lead}{}",
            code_block(command, MAX_TEXT - units(lead))
        )));
    }
    blocks.push(context(format!(
        "esim-courier · {} · notifier {}",
        code(s.kind, 100),
        code(notifier, 200)
    )));
    json!({
        "text": escape(&format!("{} {}", emoji(s.tone), s.title), MAX_FALLBACK),
        "blocks": blocks,
    })
}

fn digest(notifier: &str, items: &[Summary]) -> Vec<Value> {
    let headline = digest_headline(items);
    let lines: Vec<String> = items.iter().map(line).collect();
    let names: Vec<String> = items.iter().map(name).collect();
    let footer = context(format!(
        "esim-courier · notifier {} · these arrived within the grouping window · inspect one with {}",
        code(notifier, 200),
        code("esim-courier orders show -- <order-no>", 100),
    ));

    let Some(keep) = lines_that_fit(&lines, &names) else {
        // Not even a list of order numbers fits one message: several messages, each with
        // every one of its order numbers.
        let chunks = pack(&names, ", ", MAX_TEXT);
        let parts = chunks.len().div_ceil(ITEM_BLOCKS);
        return chunks
            .chunks(ITEM_BLOCKS)
            .enumerate()
            .map(|(i, part)| {
                let title = format!("{headline} (part {} of {parts})", i + 1);
                message(&title, part.iter().cloned().map(section), &footer)
            })
            .collect();
    };

    let mut sections: Vec<String> = pack(&lines[..keep], "\n", MAX_TEXT);
    let rest = &names[keep..];
    if !rest.is_empty() {
        let mut chunks = pack(rest, ", ", MAX_TEXT - LEAD_IN_ROOM);
        if let Some(first) = chunks.first_mut() {
            *first = format!("*…and {} more:* {first}", rest.len());
        }
        sections.extend(chunks);
    }
    vec![message(
        &headline,
        sections.into_iter().map(section),
        &footer,
    )]
}

/// How many items keep their full line, the rest being listed by name, for the whole to fit
/// in [`ITEM_BLOCKS`] sections; `None` when not even the names alone fit.
fn lines_that_fit(lines: &[String], names: &[String]) -> Option<usize> {
    // sections_for_lines[k]: sections for lines[..k], packed from the front.
    let mut sections_for_lines = Vec::with_capacity(lines.len() + 1);
    let mut count = 0;
    let mut fill = 0;
    sections_for_lines.push(0);
    for l in lines {
        add(&mut count, &mut fill, units(l), 1, MAX_TEXT);
        sections_for_lines.push(count);
    }
    // sections_for_names[k]: sections for names[k..], packed from the back (so that each
    // step adds one name in front of the rest, as the front-packing of the rest would need
    // at most as many sections).
    let mut sections_for_names = vec![0; names.len() + 1];
    let (mut count, mut fill) = (0, 0);
    for (k, n) in names.iter().enumerate().rev() {
        add(&mut count, &mut fill, units(n), 2, MAX_TEXT - LEAD_IN_ROOM);
        sections_for_names[k] = count;
    }
    (0..=lines.len())
        .rev()
        .find(|&k| sections_for_lines[k] + sections_for_names[k] <= ITEM_BLOCKS)
}

/// Adds a piece of `width` units to a greedy packing into texts of at most `max` units.
fn add(count: &mut usize, fill: &mut usize, width: usize, separator: usize, max: usize) {
    if *count > 0 && *fill + separator + width <= max {
        *fill += separator + width;
    } else {
        *count += 1;
        *fill = width;
    }
}

/// One compact line of a digest.
fn line(s: &Summary) -> String {
    let mut parts = vec![format!("• {} *{}*", emoji(s.tone), escape(s.label, 100))];
    if let Some(order_no) = &s.order_no {
        parts.push(code(order_no, 300));
    }
    if let Some(package) = &s.package {
        parts.push(escape(package, 150));
    }
    if let Some(price) = &s.price {
        parts.push(escape(price, 60));
    }
    parts.push(date(s, "{date_short} {time}"));
    if s.tone == Tone::Alert {
        parts.push(escape(&s.reason, 400));
        if let Some(command) = &s.command {
            parts.push(format!("run {}", code(command, 300)));
        }
    }
    clip_to(&parts.join(" · "), MAX_LINE)
}

/// How a digest item is named when there is no room for its line: its order number, or its
/// kind for an alert about no order.
fn name(s: &Summary) -> String {
    match &s.order_no {
        Some(order_no) => escape(order_no, 300),
        None => escape(s.kind, 100),
    }
}

fn message(title: &str, sections: impl Iterator<Item = Value>, footer: &Value) -> Value {
    let mut blocks = vec![header(&format!(":bell: {title}"))];
    blocks.extend(sections);
    blocks.push(footer.clone());
    json!({
        "text": escape(title, MAX_FALLBACK),
        "blocks": blocks,
    })
}

fn header(text: &str) -> Value {
    json!({
        "type": "header",
        "text": {"type": "plain_text", "text": plain(text, MAX_HEADER), "emoji": true},
    })
}

fn section(text: String) -> Value {
    json!({"type": "section", "text": mrkdwn(text)})
}

fn context(text: String) -> Value {
    json!({"type": "context", "elements": [mrkdwn(text)]})
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

/// A time each reader sees in their own time zone, with the UTC time as the fallback.
fn date(s: &Summary, format: &str) -> String {
    format!("<!date^{}^{format}|{}>", s.occurred_at_secs, s.occurred_at)
}

fn emoji(tone: Tone) -> &'static str {
    match tone {
        Tone::Failed => ":x:",
        Tone::Completed => ":white_check_mark:",
        Tone::Alert => ":rotating_light:",
    }
}

/// An already formatted text cut to `max` units. Only a safety net: the parts are escaped
/// and clipped first, so this cuts only text whose parts are all at their longest. It may
/// cut a formatting mark in two (which shows as a stray character), never an escape.
fn clip_to(text: &str, max: usize) -> String {
    if units(text) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        if used + c.len_utf16() + 1 > max {
            break;
        }
        out.push(c);
        used += c.len_utf16();
    }
    // An escape cut in two would show as raw text: drop its start.
    if let Some(amp) = out.rfind('&') {
        if !out[amp..].contains(';') {
            out.truncate(amp);
        }
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use esim_courier_core::summary::summarise_all;
    use esim_courier_core::testing::failed_order;
    use esim_courier_core::{Alert, AlertKind, Content, Notification};

    fn digest(items: Vec<Notification>) -> Vec<Value> {
        let n = Notification {
            key: "digest:ops:1".into(),
            content: Content::Digest(items),
        };
        messages("ops-slack", &summarise_all(&n))
    }

    /// Every text of a message, and whether the message keeps Slack's limits.
    fn check_limits(message: &Value) -> String {
        let blocks = message["blocks"].as_array().expect("blocks");
        assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
        let mut all = String::new();
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                if b["type"] == "header" {
                    // Plain text: Slack shows it as is, so it is checked for length only.
                    assert!(units(t) <= MAX_HEADER);
                    continue;
                }
                assert!(
                    units(t) <= MAX_TEXT,
                    "{} units in a {}",
                    units(t),
                    b["type"]
                );
                assert!(!t.trim().is_empty(), "Slack refuses empty texts");
                all.push_str(t);
                all.push('\n');
            }
            for f in b["fields"].as_array().into_iter().flatten() {
                let t = f["text"].as_str().expect("field text");
                assert!(units(t) <= MAX_FIELD);
                all.push_str(t);
                all.push('\n');
            }
            for e in b["elements"].as_array().into_iter().flatten() {
                let t = e["text"].as_str().expect("element text");
                assert!(units(t) <= MAX_TEXT);
            }
        }
        all
    }

    #[test]
    fn a_digest_of_300_orders_is_one_message_with_a_line_for_each() {
        let messages = digest(
            (0..300)
                .map(|i| failed_order(&format!("B24050112{i:04}")))
                .collect(),
        );
        assert_eq!(messages.len(), 1);
        let text = check_limits(&messages[0]);
        for i in 0..300 {
            assert!(text.contains(&format!("`B24050112{i:04}`")), "order {i}");
        }
        assert!(!text.contains("more:"), "every order keeps its line");
        assert!(text.contains("4.20 USD"));
        assert_eq!(
            messages[0]["blocks"][0]["text"]["text"],
            ":bell: 300 orders failed"
        );
    }

    #[test]
    fn a_digest_too_long_for_lines_lists_the_rest_by_order_number() {
        let long_reason = "r".repeat(900);
        let items = (0..400)
            .map(|i| Notification {
                key: format!("a{i}"),
                content: Content::Alert(Alert {
                    kind: AlertKind::DeadLetter,
                    order_no: Some(format!("ORDER-{i:05}")),
                    reason: long_reason.clone(),
                    package_name: None,
                    price: None,
                    occurred_at_ms: 0,
                    command: Some(format!("esim-courier dead-letters retry {i}")),
                }),
            })
            .collect();
        let messages = digest(items);
        assert_eq!(messages.len(), 1);
        let text = check_limits(&messages[0]);
        assert!(text.contains("more:* "));
        for i in 0..400 {
            assert!(text.contains(&format!("ORDER-{i:05}")), "order {i}");
        }
    }

    #[test]
    fn a_digest_too_large_for_one_message_is_split_and_names_every_order() {
        let orders: Vec<String> = (0..3000)
            .map(|i| format!("{i:05}{}", "9".repeat(120)))
            .collect();
        let messages = digest(orders.iter().map(|o| failed_order(o)).collect());
        assert!(messages.len() > 1);
        let text: String = messages.iter().map(check_limits).collect();
        let named: std::collections::HashSet<&str> = text.split([',', ' ', '\n', '`']).collect();
        for o in &orders {
            assert!(named.contains(o.as_str()), "order {o}");
        }
    }

    #[test]
    fn hostile_text_is_escaped_and_clipped() {
        let n = Notification {
            key: "k".into(),
            content: Content::Alert(Alert {
                kind: AlertKind::WebhookRejected,
                order_no: Some("<!channel>".into()),
                reason: "<https://evil.example|click> & ".repeat(500),
                package_name: Some("`x`".into()),
                price: Some("1 < 2".into()),
                occurred_at_ms: i64::MIN,
                command: Some("a```b".into()),
            }),
        };
        let messages = messages("ops", &summarise_all(&n));
        let text = check_limits(&messages[0]);
        assert!(!text.contains("<!channel>"));
        assert!(!text.contains("<https://evil"));
        assert!(text.contains("&lt;!channel&gt;"));
    }

    #[test]
    fn blank_alert_fields_leave_no_empty_text() {
        let n = Notification {
            key: "k".into(),
            content: Content::Alert(Alert {
                kind: AlertKind::UnrecognisedResult,
                order_no: Some(" ".into()),
                reason: String::new(),
                package_name: Some(String::new()),
                price: Some("\t".into()),
                occurred_at_ms: 0,
                command: Some(String::new()),
            }),
        };
        let messages = messages("ops", &summarise_all(&n));
        let text = check_limits(&messages[0]);
        assert!(text.contains("No reason was given."));
        assert!(!text.contains("*Run:*"));
        assert!(!text.contains("*Order*"));
    }

    #[test]
    fn a_failed_order_shows_its_facts_and_command() {
        let messages = messages("ops", &summarise_all(&failed_order("B1")));
        let m = &messages[0];
        let text = check_limits(m);
        assert!(text.contains("*Order*\n`B1`"));
        assert!(text.contains("Japan 5GB 30 days (JP-5GB-30D)"));
        assert!(text.contains("*Contract price*\n4.20 USD"));
        assert!(text.contains("```esim-courier orders show -- B1```"));
        assert!(text.contains("|2024-05-01T09:30:00Z>"));
        assert_eq!(m["text"], ":x: Order B1 failed at the provider");
    }
}
