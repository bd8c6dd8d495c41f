//! The `telegram` notifier: sends operator notifications to a Telegram chat through a bot,
//! with the Bot API's `sendMessage` in HTML parse mode.
//!
//! ```toml
//! [notifiers.ops-telegram]
//! type = "telegram"
//! bot_token = "123456789:AAExampleExampleExampleExampleExam"   # a secret: prefer the env
//! chat_id = -1001234567890
//! timeout = "10s"
//! ```
//!
//! Each notification is one message: the title, the reason, the facts (order, package,
//! contract price, time), the `esim-courier` command in a `<pre>` block. A digest lists
//! every item; past Telegram's 4096 characters it is split into several messages, sent in
//! order by one `notify` call. Operators only: the activation code is never shown, except
//! masked on a completed order.
//!
//! The bot token is a secret (whoever has it controls the bot) and is part of every Bot API
//! URL: it never appears in `Debug`, an error message or a log line.

mod api;
mod config;
mod html;
mod message;

use esim_courier_core::{async_trait, Audience, Notification, Notifier, NotifyError, Receipt};

pub use config::{ChatId, ConfigError, TelegramConfig};

use crate::api::BotApi;

/// Sends notifications to one Telegram chat.
#[derive(Debug)]
pub struct TelegramNotifier {
    name: String,
    chat_id: ChatId,
    api: BotApi,
}

impl TelegramNotifier {
    /// Builds the notifier named `name` from its section, checking the token's form, the chat
    /// and the API base URL.
    pub fn new(name: impl Into<String>, config: TelegramConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            name: name.into(),
            api: BotApi::new(&config)?,
            chat_id: config.chat_id,
        })
    }
}

#[async_trait]
impl Notifier for TelegramNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn audience(&self) -> Audience {
        Audience::Operator
    }

    async fn notify(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let items = esim_courier_core::summary::summarise_all(notification);
        let texts = message::texts(&self.name, &items);
        // A long digest is several messages, sent in order, each only once the previous one
        // was taken. If one fails, the error is returned and the dispatcher's retry sends the
        // whole digest again: the parts already sent appear twice (the Bot API has no
        // idempotency key), which beats losing the rest. Their "(part i of n)" headers make
        // a repeat easy to recognise.
        let mut ids = Vec::with_capacity(texts.len());
        for text in &texts {
            let sent = self.api.send_message(&self.chat_id, text).await?;
            if let Some(id) = sent.message_id {
                ids.push(id.to_string());
            }
        }
        Ok(match ids.as_slice() {
            [] => Receipt::default(),
            [one] => Receipt::with_id(format!("message {one}")),
            many => Receipt::with_id(format!("messages {}", many.join(", "))),
        })
    }

    async fn healthcheck(&self) -> Result<(), NotifyError> {
        // `getMe` proves the token; `getChat` that the bot can see the chat. Neither sends
        // anything to anyone.
        self.api.call("getMe", &serde_json::json!({})).await?;
        self.api
            .call("getChat", &serde_json::json!({ "chat_id": self.chat_id }))
            .await?;
        Ok(())
    }
}
