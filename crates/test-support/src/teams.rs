//! A stand-in for a Microsoft Teams "Workflows" incoming webhook (the "When a Teams webhook
//! request is received" trigger that posts a card to a channel): a real HTTP server on
//! 127.0.0.1:0 that answers as the service does and refuses what it refuses.
//!
//! - `202 Accepted` for a message it takes;
//! - `413` for a body over [`MAX_BODY`] bytes (Teams refuses messages over about 28 KB);
//! - `400` for a body that is not `{"type": "message", "attachments": [...]}` with exactly
//!   one Adaptive Card (`application/vnd.microsoft.card.adaptive`, `"type": "AdaptiveCard"`,
//!   a `version` and a non-empty `body`) — the flow's "post card" step fails on anything else;
//! - anything scripted with [`Peer::then`] (429 with `Retry-After`, 5xx, slow answers).

use crate::http_peer::{Peer, Received, Reply};

/// The largest message body the stand-in takes.
pub const MAX_BODY: usize = 28 * 1024;

/// Starts the stand-in.
pub fn workflows_webhook() -> Peer {
    Peer::start_checking(Reply::new(202, ""), refusal)
}

fn refusal(request: &Received) -> Option<Reply> {
    if request.raw.len() > MAX_BODY {
        return Some(Reply::new(
            413,
            r#"{"error":{"code":"MessageTooLarge","message":"The message is too large."}}"#,
        ));
    }
    let body = &request.body;
    let attachments = body["attachments"].as_array();
    let card = attachments
        .and_then(|a| a.first())
        .map(|a| (&a["contentType"], &a["content"]));
    let valid = body["type"] == "message"
        && attachments.is_some_and(|a| a.len() == 1)
        && card.is_some_and(|(content_type, content)| {
            content_type == "application/vnd.microsoft.card.adaptive"
                && content["type"] == "AdaptiveCard"
                && content["version"].is_string()
                && content["body"].as_array().is_some_and(|b| !b.is_empty())
        });
    (!valid).then(|| {
        Reply::new(
            400,
            r#"{"error":{"code":"InvalidRequestContent","message":"The request content is not valid."}}"#,
        )
    })
}
