//! The `teams` notifier: posts operator notifications to a Microsoft Teams channel through a
//! Workflows incoming webhook (the "When a Teams webhook request is received" trigger with
//! "Post card in a chat or channel"), as Adaptive Cards.
//!
//! ```toml
//! [notifiers.ops-teams]
//! type = "teams"
//! webhook_url = "https://prod-00.westeurope.logic.azure.com/workflows/…/invoke?…&sig=…"   # a secret: prefer the env
//! timeout = "10s"
//! ```
//!
//! Each notification is one card; a digest is one card listing every item (see `card.rs`
//! for how it stays within Teams' message size). Operators only: the activation code is
//! never shown, except masked on a completed order.
//!
//! The webhook answers `202 Accepted`. Refusals say whether a retry can help as every HTTP
//! notifier does (408, 429 and 5xx are transient, honouring `Retry-After`; other 4xx are
//! permanent). The URL is a secret (its `sig` signs it): it never appears in `Debug`, an
//! error message or a log line; only its host does.

mod card;
mod config;

use esim_courier_core::summary::summarise_all;
use esim_courier_core::{async_trait, Audience, Notification, Notifier, NotifyError, Receipt};
use esim_courier_notify_http::{post_parts, IncomingWebhook};
use serde_json::Value;

pub use config::{ConfigError, TeamsConfig};

/// The most of an error answer read, for its code.
const MAX_ANSWER: usize = 4096;

/// Posts notifications to one Teams Workflows webhook.
#[derive(Debug)]
pub struct TeamsNotifier {
    name: String,
    hook: IncomingWebhook,
}

impl TeamsNotifier {
    /// Builds the notifier named `name` from its section, checking the webhook URL.
    pub fn new(name: impl Into<String>, config: TeamsConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            name: name.into(),
            hook: IncomingWebhook::new(&config)?,
        })
    }

    /// POSTs one message and maps the answer.
    async fn post(&self, message: &Value, what: &str) -> Result<u16, NotifyError> {
        let response = self.hook.post_json(message, what).await?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(status);
        }
        let retry_after = esim_courier_notify_http::retry_after(response.headers());
        let body = esim_courier_notify_http::read_body(response, MAX_ANSWER)
            .await
            .unwrap_or_else(esim_courier_notify_http::BodyError::into_partial);
        let code = error_code(&body);
        let message = self.hook.endpoint.redact(&match code {
            Some(code) => format!("{what}: Teams answered HTTP {status} ({code})"),
            None => format!("{what}: Teams answered HTTP {status}"),
        });
        Err(esim_courier_notify_http::refused(
            status,
            message,
            retry_after,
        ))
    }
}

/// The `error.code` of a Workflows error answer, short and printable.
fn error_code(body: &[u8]) -> Option<String> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let code: String = answer["error"]["code"]
        .as_str()?
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(80)
        .collect();
    (!code.is_empty()).then_some(code)
}

#[async_trait]
impl Notifier for TeamsNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn audience(&self) -> Audience {
        Audience::Operator
    }

    async fn notify(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let messages = card::messages(&self.name, &summarise_all(notification));
        post_parts(&messages, "card", |message, what| async move {
            self.post(message, &what).await
        })
        .await
    }

    /// A Workflows webhook has no read-only call, and anything POSTed is run by the flow.
    /// A `HEAD` proves the host answers without posting: any HTTP answer passes, a
    /// connection failure does not.
    async fn healthcheck(&self) -> Result<(), NotifyError> {
        self.hook
            .client
            .head(self.hook.endpoint.url())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                NotifyError::transient(self.hook.endpoint.redact(&format!(
                    "{} does not answer: {}",
                    self.hook.endpoint.host(),
                    esim_courier_notify_http::describe(&e)
                )))
            })
    }
}
