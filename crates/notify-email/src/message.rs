//! Putting a rendered email into MIME, with a `Message-ID` that is the same on every attempt.
//!
//! Structure: `multipart/alternative` { `text/plain`, `multipart/related` { `text/html`,
//! `image/png` (Content-ID)… } }, or `multipart/alternative` { `text/plain`, `text/html` }
//! when the HTML shows no image.

use std::fmt;

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use sha2::{Digest, Sha256};

use crate::render::Composed;
use crate::RenderError;

/// The `Message-ID` of the notification with `key`: `<first 32 hex digits of
/// sha256(key)@domain>`. A retried send carries the same id, so mail systems and mail clients
/// that deduplicate by it show one message; the key itself (an order number) is not exposed.
pub fn message_id(key: &str, domain: &str) -> String {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    format!("<{}@{domain}>", &digest[..32])
}

/// A rendered email, ready to send or to save (`esim-courier preview`).
///
/// Its `Debug` output shows no body: the activation email carries the secret matching ID.
pub struct RenderedEmail {
    /// The template folder used, e.g. `activation`.
    pub template: String,
    /// The locale folder used, e.g. `zh-Hans`.
    pub locale: String,
    /// The `Message-ID` header, angle brackets included.
    pub message_id: String,
    /// The subject line.
    pub subject: String,
    /// The HTML body, as sent (images referenced as `cid:`).
    pub html: String,
    /// The plain-text body.
    pub text: String,
    /// The recipients' addresses.
    pub recipients: Vec<String>,
    /// The images the HTML shows inline: (Content-ID, PNG), e.g. the QR code.
    pub inline_images: Vec<(String, Vec<u8>)>,
    message: Message,
}

impl RenderedEmail {
    /// The whole message as RFC 5322 bytes: the content of a `.eml` file.
    pub fn eml(&self) -> Vec<u8> {
        self.message.formatted()
    }

    /// The lettre message.
    pub fn message(&self) -> &Message {
        &self.message
    }
}

impl fmt::Debug for RenderedEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderedEmail")
            .field("template", &self.template)
            .field("locale", &self.locale)
            .field("message_id", &self.message_id)
            .field("subject", &self.subject)
            .field("html_bytes", &self.html.len())
            .field("text_bytes", &self.text.len())
            .field("recipients", &self.recipients.len())
            .finish_non_exhaustive()
    }
}

/// Who a message is from and to.
pub(crate) struct Envelope<'a> {
    pub(crate) from: &'a Mailbox,
    pub(crate) to: Vec<Mailbox>,
    pub(crate) reply_to: Option<&'a Mailbox>,
}

/// Builds the MIME message.
pub(crate) fn build(
    envelope: Envelope<'_>,
    key: &str,
    composed: Composed,
) -> Result<RenderedEmail, RenderError> {
    let message_id = message_id(key, envelope.from.email.domain());
    let mut builder = Message::builder()
        .from(envelope.from.clone())
        .subject(composed.parts.subject.clone())
        .message_id(Some(message_id.clone()))
        .header(AutoSubmitted)
        .user_agent(concat!("esim-courier/", env!("CARGO_PKG_VERSION")).to_owned());
    let recipients = envelope.to.iter().map(|m| m.email.to_string()).collect();
    for to in envelope.to {
        builder = builder.to(to);
    }
    if let Some(reply_to) = envelope.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }

    let text = SinglePart::plain(composed.parts.text.clone());
    let html = SinglePart::html(composed.parts.html.clone());
    let inline_images: Vec<(String, Vec<u8>)> = composed
        .images
        .iter()
        .map(|i| (i.cid.to_owned(), i.png.clone()))
        .collect();
    let body = if composed.images.is_empty() {
        MultiPart::alternative().singlepart(text).singlepart(html)
    } else {
        let png =
            ContentType::parse("image/png").map_err(|e| RenderError::Message(e.to_string()))?;
        let mut related = MultiPart::related().singlepart(html);
        for image in composed.images {
            related = related.singlepart(
                Attachment::new_inline(image.cid.to_owned()).body(image.png, png.clone()),
            );
        }
        MultiPart::alternative().singlepart(text).multipart(related)
    };
    let message = builder
        .multipart(body)
        .map_err(|e| RenderError::Message(e.to_string()))?;
    Ok(RenderedEmail {
        template: composed.template,
        locale: composed.locale,
        message_id,
        subject: composed.parts.subject,
        html: composed.parts.html,
        text: composed.parts.text,
        recipients,
        inline_images,
        message,
    })
}

/// `Auto-Submitted: auto-generated` (RFC 3834): out-of-office responders must not answer it.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_stable_per_key_and_differ_between_keys() {
        let a = message_id("order:B123:iccid:8910", "shop.example");
        assert_eq!(a, message_id("order:B123:iccid:8910", "shop.example"));
        assert_ne!(a, message_id("order:B124:iccid:8910", "shop.example"));
        assert!(a.starts_with('<') && a.ends_with("@shop.example>"), "{a}");
        assert_eq!(a.len(), 1 + 32 + 1 + "shop.example".len() + 1);
        assert!(!a.contains("B123"));
    }
}
