//! The `slack` notifier: posts operator notifications to a Slack channel through an
//! [incoming webhook](https://api.slack.com/messaging/webhooks), as Block Kit messages.
//!
//! ```toml
//! [notifiers.ops-slack]
//! type = "slack"
//! webhook_url = "https://hooks.slack.com/services/T000/B000/XXXX"   # a secret: prefer the env
//! timeout = "10s"
//! ```
//!
//! Each notification is one message: a header, the reason, the facts (order, package,
//! contract price, time), the `esim-courier` command to run in a code block, and a context
//! line. A digest is one message listing every item (see `blocks.rs` for how it stays within
//! Slack's 50 blocks and 3000 characters per text). Operators only: the activation code is
//! never shown, except masked on a completed order.
//!
//! The webhook URL is a secret (whoever has it can post to the channel): it never appears in
//! `Debug`, an error message or a log line; only its host does.

mod answer;
mod blocks;
mod config;
mod mrkdwn;

use esim_courier_core::{async_trait, Audience, Notification, Notifier, NotifyError, Receipt};
use serde_json::Value;

pub use config::{ConfigError, SlackConfig};

use esim_courier_core::summary::summarise_all;
use esim_courier_notify_http::{post_parts, IncomingWebhook};

use crate::answer::Answer;

/// Posts notifications to one Slack incoming webhook.
#[derive(Debug)]
pub struct SlackNotifier {
    name: String,
    hook: IncomingWebhook,
}

impl SlackNotifier {
    /// Builds the notifier named `name` from its section, checking the webhook URL.
    pub fn new(name: impl Into<String>, config: SlackConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            name: name.into(),
            hook: IncomingWebhook::new(&config)?,
        })
    }

    /// POSTs one message body and reads Slack's answer.
    async fn post(&self, body: &Value) -> Result<Answer, NotifyError> {
        let response = self.hook.post_json(body, "Slack").await?;
        Ok(Answer::read(response).await)
    }
}

#[async_trait]
impl Notifier for SlackNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn audience(&self) -> Audience {
        Audience::Operator
    }

    async fn notify(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let messages = blocks::messages(&self.name, &summarise_all(notification));
        post_parts(&messages, "message", |message, what| async move {
            self.post(message).await?.into_result(&what).map(|()| 200)
        })
        .await
    }

    async fn healthcheck(&self) -> Result<(), NotifyError> {
        // An incoming webhook has no read-only call. An empty message is refused by a live
        // webhook with `400 no_text` and posts nothing, while a revoked one answers 403/404.
        let answer = self.post(&serde_json::json!({})).await?;
        if answer.status == 400 {
            return Ok(());
        }
        answer.into_result("the health check")
    }
}
