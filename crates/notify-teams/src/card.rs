//! Notification -> Teams message(s) carrying one Adaptive Card each, within Teams' limits.
//!
//! One notification is one card: a title in the tone's colour, the reason, a fact set
//! (order, package, contract price, time, ...), the command to run in monospace, and a
//! context line. A digest is one card too: a title counting the items, then one line per
//! item; when the lines would make the message larger than [`MAX_BODY`], as many items as
//! fit keep their line and the rest are listed by order number ("…and 254 more: B1, B2, …"),
//! so every order number is in the card. Only a digest too large even for that (thousands of
//! orders) is sent as several messages, each within the limit.
//!
//! Teams renders a subset of Markdown in a card's texts: provider data (an order number, a
//! package name) has its Markdown characters escaped, so it shows as it is and cannot make
//! a link or bold text.

use esim_courier_core::summary::{digest_headline, Summary, Tone};
use serde_json::{json, Value};

/// The largest message body sent. Teams refuses messages over about 28 KB; this keeps room
/// for the envelope it adds.
pub(crate) const MAX_BODY: usize = 25 * 1024;
/// Longest text of one field, in characters, before escaping (tried first; smaller limits
/// follow if the card would still be too large).
const FIELD_LIMITS: [usize; 3] = [1000, 300, 100];
/// Longest digest line, in characters.
const MAX_LINE: usize = 500;
/// Longest text block of order numbers, in characters.
const MAX_NAMES: usize = 2000;

/// The message(s) for a notification: one, except for a digest too large for one message.
pub(crate) fn messages(notifier: &str, items: &[Summary]) -> Vec<Value> {
    match items {
        [one] => vec![single(notifier, one)],
        many => digest(notifier, many),
    }
}

/// The serialised size of a message.
pub(crate) fn size(message: &Value) -> usize {
    serde_json::to_vec(message).map_or(usize::MAX, |v| v.len())
}

fn single(notifier: &str, s: &Summary) -> Value {
    let build = |max: usize| {
        let mut facts = Vec::new();
        if let Some(order_no) = &s.order_no {
            facts.push(fact("Order", order_no, max));
        }
        if let Some(package) = &s.package {
            facts.push(fact("Package", package, max));
        }
        if let Some(price) = &s.price {
            facts.push(fact("Contract price", price, max));
        }
        facts.push(fact("Time", &s.occurred_at, max));
        for (label, value) in &s.details {
            facts.push(fact(label, value, max));
        }
        let mut body = vec![
            title(&s.title, s.tone, max),
            text(&md(&s.reason, max)),
            json!({"type": "FactSet", "facts": facts}),
        ];
        if let Some(command) = &s.command {
            body.push(
                json!({"type": "TextBlock", "text": "Run:", "weight": "Bolder", "wrap": true}),
            );
            body.push(json!({
                "type": "TextBlock", "text": md(command, max), "fontType": "Monospace", "wrap": true,
            }));
        }
        body.push(context(notifier, s.kind));
        message(body)
    };
    FIELD_LIMITS
        .iter()
        .map(|max| build(*max))
        .find(|m| size(m) <= MAX_BODY)
        .unwrap_or_else(|| build(FIELD_LIMITS[FIELD_LIMITS.len() - 1] / 4))
}

fn digest(notifier: &str, items: &[Summary]) -> Vec<Value> {
    let headline = digest_headline(items);
    let lines: Vec<Value> = items.iter().map(|s| text(&line(s))).collect();
    let names: Vec<String> = items.iter().map(name).collect();
    let footer = context(notifier, "digest");
    let card = |keep: usize| -> Value {
        let mut body = vec![title(&headline, Tone::Alert, 300)];
        body.extend(lines[..keep].iter().cloned());
        let rest = &names[keep..];
        if !rest.is_empty() {
            for (i, chunk) in chunks(rest).into_iter().enumerate() {
                body.push(text(&if i == 0 {
                    format!("**…and {} more:** {chunk}", rest.len())
                } else {
                    chunk
                }));
            }
        }
        body.push(footer.clone());
        message(body)
    };
    // The most items that keep their full line with the rest named: larger with more lines.
    if size(&card(0)) <= MAX_BODY {
        let (mut fits, mut too_many) = (0, items.len() + 1);
        while too_many - fits > 1 {
            let mid = (fits + too_many) / 2;
            if size(&card(mid)) <= MAX_BODY {
                fits = mid;
            } else {
                too_many = mid;
            }
        }
        return vec![card(fits)];
    }
    // Not even the order numbers fit one message: several, each naming its share.
    let mut messages = Vec::new();
    let mut body: Vec<Value> = Vec::new();
    let parts_of = |body: Vec<Value>| {
        let mut all = vec![title(&headline, Tone::Alert, 300)];
        all.extend(body);
        all.push(footer.clone());
        message(all)
    };
    for chunk in chunks(&names) {
        let block = text(&chunk);
        let mut trial = body.clone();
        trial.push(block.clone());
        if !body.is_empty() && size(&parts_of(trial.clone())) > MAX_BODY {
            messages.push(parts_of(std::mem::take(&mut body)));
            body.push(block);
        } else {
            body = trial;
        }
    }
    if !body.is_empty() {
        messages.push(parts_of(body));
    }
    messages
}

/// The Workflows webhook's envelope: a message with one Adaptive Card attachment.
fn message(body: Vec<Value>) -> Value {
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

fn title(text: &str, tone: Tone, max: usize) -> Value {
    json!({
        "type": "TextBlock", "text": md(text, max), "weight": "Bolder", "size": "Medium",
        "color": match tone { Tone::Completed => "Good", Tone::Failed | Tone::Alert => "Attention" },
        "wrap": true,
    })
}

fn text(text: &str) -> Value {
    json!({"type": "TextBlock", "text": text, "wrap": true})
}

fn fact(label: &str, value: &str, max: usize) -> Value {
    json!({"title": label, "value": md(value, max)})
}

fn context(notifier: &str, kind: &str) -> Value {
    json!({
        "type": "TextBlock",
        "text": format!("esim-courier · {} · notifier {}", md(kind, 100), md(notifier, 200)),
        "isSubtle": true, "size": "Small", "wrap": true,
    })
}

/// One line of a digest.
fn line(s: &Summary) -> String {
    let mut parts = vec![format!("**{}**", md(s.label, 100))];
    if let Some(order_no) = &s.order_no {
        parts.push(md(order_no, 200));
    }
    if let Some(package) = &s.package {
        parts.push(md(package, 150));
    }
    if let Some(price) = &s.price {
        parts.push(md(price, 60));
    }
    parts.push(md(&s.occurred_at, 40));
    if s.tone == Tone::Alert {
        parts.push(md(&s.reason, 300));
        if let Some(command) = &s.command {
            parts.push(format!("run {}", md(command, 200)));
        }
    }
    clip(&parts.join(" · "), MAX_LINE)
}

/// How a digest item is named when there is no room for its line.
fn name(s: &Summary) -> String {
    match &s.order_no {
        Some(order_no) => md(order_no, 200),
        None => md(s.kind, 100),
    }
}

/// Names joined by ", " into texts of at most [`MAX_NAMES`] characters.
fn chunks(names: &[String]) -> Vec<String> {
    esim_courier_core::summary::pack(names, ", ", MAX_NAMES)
}

/// `raw` clipped to `max` characters, then with Markdown's characters escaped and control
/// characters made spaces, so it shows as it is.
fn md(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in clip(raw, max).chars() {
        match c {
            '\\' | '*' | '_' | '`' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '~' | '|' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters, ending in `…` when cut.
fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_in_provider_data_shows_as_it_is() {
        assert_eq!(
            md("[click](https://evil.example) **x**", 100),
            r"\[click\]\(https://evil.example\) \*\*x\*\*"
        );
        assert_eq!(md("a\nb\u{1b}c", 100), "a b c");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
