//! Rules every rendered email must keep, checked on sample data by the template check (and so
//! at start-up): they protect what a built-in template gets right from a reseller's override.
//!
//! - HTML under 100 KB: Gmail clips bodies past ~102 KB, hiding the activation code.
//! - No remote images and no `data:` URIs: blocked or dropped by mail clients; images go
//!   inline as CID parts.
//! - A customer email never shows the contract price, and shows what is needed to install:
//!   the QR code, the SM-DP+ address and the activation code (HTML and text).

use esim_courier_core::CompletedOrder;

use crate::message::RenderedEmail;
use crate::sample::CONTRACT_PRICE;
use crate::view::QR_CID;

/// The largest HTML body allowed, in bytes.
pub(crate) const MAX_HTML_BYTES: usize = 100 * 1024;

/// The rules `email` breaks; `order` is the activation email's order, `None` for operators.
pub(crate) fn violations(email: &RenderedEmail, order: Option<&CompletedOrder>) -> Vec<String> {
    let mut out = Vec::new();
    if email.html.len() >= MAX_HTML_BYTES {
        out.push(format!(
            "the HTML body is {} bytes; keep it under {MAX_HTML_BYTES}",
            email.html.len()
        ));
    }
    for value in url_values(&email.html) {
        let v = value.to_ascii_lowercase();
        if v.starts_with("data:") {
            out.push(
                "uses a data: URI; mail clients drop them (send images inline by cid:)".to_owned(),
            );
        } else if v.starts_with("http:") || v.starts_with("https:") || v.starts_with("//") {
            out.push(format!(
                "loads a remote resource ({}); use an inline cid: image",
                truncate(value)
            ));
        }
    }
    if let Some(order) = order {
        for (part, body) in [
            ("subject", email.subject.as_str()),
            ("HTML", &email.html),
            ("text", &email.text),
        ] {
            if body.contains(CONTRACT_PRICE) {
                out.push(format!(
                    "the {part} shows the contract price, which customers must never see"
                ));
            }
        }
        if !email.html.contains(&format!("cid:{QR_CID}")) {
            out.push(format!(
                "the HTML does not show the QR code (<img src=\"cid:{QR_CID}\">)"
            ));
        }
        let code = &order.activation_code;
        for (what, value) in [
            ("SM-DP+ address", code.smdp_address()),
            ("activation code", code.matching_id()),
        ] {
            if !email.html.contains(value) || !email.text.contains(value) {
                out.push(format!(
                    "the HTML and text bodies must both show the {what} for manual entry"
                ));
            }
        }
    }
    out.dedup();
    out
}

/// The values of `src`, `srcset`, `background` and `href`-less resource attributes and of
/// CSS `url(...)`: whatever a client would fetch to display the message.
fn url_values(html: &str) -> Vec<&str> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    for marker in ["src=", "srcset=", "background=", "url("] {
        let mut from = 0;
        while let Some(found) = lower[from..].find(marker) {
            let start = from + found + marker.len();
            let rest = html[start..].trim_start_matches([' ', '"', '\'']);
            let end = rest.find(['"', '\'', ' ', ')', '>']).unwrap_or(rest.len());
            out.push(&rest[..end]);
            from = start;
        }
    }
    out
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_urls_are_found_in_attributes_and_css() {
        let html = r#"<img src="cid:qr"><td background='https://x.example/bg.png'><div style="background:url(data:image/png;base64,AAA)"><IMG SRC=//cdn.example/a.png>"#;
        assert_eq!(
            url_values(html),
            vec![
                "cid:qr",
                "//cdn.example/a.png",
                "https://x.example/bg.png",
                "data:image/png;base64,AAA"
            ]
        );
    }
}
