//! Notification -> the text(s) of Telegram messages, in HTML parse mode, each at most
//! [`MAX_TEXT`] units.
//!
//! One notification is one message: the title, the reason, the facts (order, package,
//! contract price, time), the command in a `<pre>` block, and a footer line.
//!
//! A digest lists every item, one compact paragraph each. When the list is longer than one
//! message allows, it is split between items into several messages, each headed
//! "(part i of n)", to be sent in order.
//!
//! Every line is complete HTML on its own (no tag spans two lines), so splitting between
//! lines or paragraphs always leaves valid HTML.

use crate::html::{escape, tagged, units};
use esim_courier_core::summary::{digest_headline, pack, Summary, Tone};

/// Telegram's limit on a message's text.
pub(crate) const MAX_TEXT: usize = 4096;

/// The texts to send, in order: one, except for a long digest.
pub(crate) fn texts(notifier: &str, items: &[Summary]) -> Vec<String> {
    match items {
        [one] => pack(&single(notifier, one), "\n", MAX_TEXT),
        many => digest(notifier, many),
    }
}

/// The lines of one notification. Their budgets add up to less than [`MAX_TEXT`].
fn single(notifier: &str, s: &Summary) -> Vec<String> {
    let mut lines = vec![
        format!("{} {}", emoji(s.tone), tagged("b", &s.title, 400)),
        escape(&s.reason, 1200),
        String::new(),
    ];
    let mut field = |label: &str, value: String| {
        lines.push(format!("<b>{label}:</b> {value}"));
    };
    if let Some(order_no) = &s.order_no {
        field("Order", tagged("code", order_no, 300));
    }
    if let Some(package) = &s.package {
        field("Package", escape(package, 300));
    }
    if let Some(price) = &s.price {
        field("Contract price", escape(price, 100));
    }
    field("Time", escape(&s.occurred_at, 40));
    for (label, value) in s.details.iter().take(3) {
        field(label, tagged("code", value, 200));
    }
    if let Some(command) = &s.command {
        lines.push(String::new());
        lines.push("<b>Run:</b>".to_owned());
        lines.push(tagged("pre", command, 600));
    }
    lines.push(tagged(
        "i",
        &format!("esim-courier · {} · notifier {notifier}", s.kind),
        200,
    ));
    lines
}

fn digest(notifier: &str, items: &[Summary]) -> Vec<String> {
    let headline = digest_headline(items);
    let times = match (
        items
            .iter()
            .map(|s| (s.occurred_at_secs, &s.occurred_at))
            .min(),
        items
            .iter()
            .map(|s| (s.occurred_at_secs, &s.occurred_at))
            .max(),
    ) {
        (Some((a, first)), Some((b, last))) if a != b => format!("{first} to {last}"),
        (Some((_, at)), _) => at.clone(),
        _ => String::new(),
    };
    let intro = [
        tagged(
            "i",
            &format!("{times} · within the grouping window of notifier {notifier}"),
            300,
        ),
        format!(
            "<i>Inspect one with</i> {}",
            tagged("code", "esim-courier orders show -- <order-no>", 100)
        ),
    ]
    .join("\n");
    let paragraphs: Vec<String> = items.iter().map(paragraph).collect();

    // Headers are at most this long: room is kept for them in every part.
    let widest = items.len() + 1;
    let title = |part: Option<(usize, usize)>| {
        let mut title = tagged("b", &format!("🔔 {headline}"), 200);
        if let Some((i, n)) = part {
            title.push_str(&format!(" (part {i} of {n})"));
        }
        title
    };
    let room = units(&title(Some((widest, widest)))) + units(&intro) + 3;
    let bodies = pack(&paragraphs, "\n", MAX_TEXT - room);
    let n = bodies.len();
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let part = (n > 1).then_some((i + 1, n));
            if i == 0 {
                format!("{}\n{intro}\n\n{body}", title(part))
            } else {
                format!("{}\n{body}", title(part))
            }
        })
        .collect()
}

/// One item of a digest: one line for an order, three for an alert (what, why, what to run).
fn paragraph(s: &Summary) -> String {
    // An order's emoji says failed or completed; an alert needs its kind in words.
    let head = match s.tone {
        Tone::Alert => format!("{} {}:", emoji(s.tone), tagged("b", s.label, 100)),
        Tone::Failed | Tone::Completed => emoji(s.tone).to_owned(),
    };
    let mut first = Vec::new();
    if let Some(order_no) = &s.order_no {
        first.push(tagged("code", order_no, 300));
    }
    if let Some(package) = &s.package {
        first.push(escape(package, 150));
    }
    if let Some(price) = &s.price {
        first.push(escape(price, 60));
    }
    let mut lines = vec![if first.is_empty() {
        head
    } else {
        format!("{head} {}", first.join(" · "))
    }];
    if s.tone == Tone::Alert {
        lines.push(format!("    {}", escape(&s.reason, 500)));
        if let Some(command) = &s.command {
            lines.push(format!("    {}", tagged("code", command, 300)));
        }
    }
    lines.join("\n")
}

fn emoji(tone: Tone) -> &'static str {
    match tone {
        Tone::Failed => "❌",
        Tone::Completed => "✅",
        Tone::Alert => "🚨",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esim_courier_core::summary::summarise_all;
    use esim_courier_core::testing::failed_order;
    use esim_courier_core::{Alert, AlertKind, Content, Notification};

    fn hostile(i: usize) -> Notification {
        Notification {
            key: format!("a{i}"),
            content: Content::Alert(Alert {
                kind: AlertKind::WebhookRejected,
                order_no: Some(format!("<{i}>{}", "&".repeat(500))),
                reason: "<b>&".repeat(1000),
                package_name: Some("<".repeat(1000)),
                price: Some(">".repeat(1000)),
                occurred_at_ms: 0,
                command: Some("&".repeat(1000)),
            }),
        }
    }

    fn texts_of(n: &Notification) -> Vec<String> {
        texts("ops", &summarise_all(n))
    }

    #[test]
    fn a_long_digest_is_split_between_items_and_names_every_order() {
        let orders: Vec<String> = (0..300).map(|i| format!("B24050112{i:04}")).collect();
        let digest = Notification {
            key: "d".into(),
            content: Content::Digest(orders.iter().map(|o| failed_order(o)).collect()),
        };
        let texts = texts_of(&digest);
        assert!(texts.len() > 1);
        for (i, t) in texts.iter().enumerate() {
            assert!(units(t) <= MAX_TEXT, "part {i}: {}", units(t));
            assert!(t.contains(&format!("(part {} of {})", i + 1, texts.len())));
        }
        let all = texts.join("\n");
        let mut at = 0;
        for o in &orders {
            let found = all[at..]
                .find(&format!("<code>{o}</code>"))
                .expect("in order");
            at += found;
        }
    }

    #[test]
    fn hostile_text_stays_escaped_and_within_the_limit() {
        let single = texts_of(&hostile(1));
        assert_eq!(single.len(), 1);
        assert!(units(&single[0]) <= MAX_TEXT, "{}", units(&single[0]));
        assert!(!single[0].contains("<b>&"));
        let digest = Notification {
            key: "d".into(),
            content: Content::Digest((0..50).map(hostile).collect()),
        };
        let texts = texts_of(&digest);
        for t in &texts {
            assert!(units(t) <= MAX_TEXT);
            assert!(!t.contains("<b>&"));
        }
        let all = texts.join("\n");
        for i in 0..50 {
            assert!(all.contains(&format!("&lt;{i}&gt;")), "item {i}");
        }
    }

    #[test]
    fn a_failed_order_reads_well() {
        let texts = texts_of(&failed_order("B1"));
        assert_eq!(texts.len(), 1);
        assert_eq!(
            texts[0],
            "❌ <b>Order B1 failed at the provider</b>\n\
             The provider reported the order as FAILED: no eSIM was issued. Refund or re-order for the customer.\n\
             \n\
             <b>Order:</b> <code>B1</code>\n\
             <b>Package:</b> Japan 5GB 30 days (JP-5GB-30D)\n\
             <b>Contract price:</b> 4.20 USD\n\
             <b>Time:</b> 2024-05-01T09:30:00Z\n\
             \n\
             <b>Run:</b>\n\
             <pre>esim-courier orders show -- B1</pre>\n\
             <i>esim-courier · order_failed · notifier ops</i>"
        );
    }
}
