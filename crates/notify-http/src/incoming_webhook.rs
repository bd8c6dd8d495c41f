//! What a channel reached through an incoming webhook (Slack, Teams, ...) is configured with
//! and built from: its secret URL and how long one POST may take.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use crate::SecretUrl;

/// The `[notifiers.<name>]` section of an incoming-webhook notifier. These notifiers write
/// to operators only, so there is no `audience` key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingWebhookConfig {
    /// The webhook URL. A secret: whoever has it can post to the channel. Its `Debug` is
    /// redacted.
    pub webhook_url: SecretString,
    /// How long one POST may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// An incoming-webhook section is not usable. Never quotes the webhook URL.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The webhook URL does not parse or is not http(s).
    #[error("webhook_url: {0}")]
    WebhookUrl(String),
    /// The timeout is zero.
    #[error("timeout must be longer than 0s")]
    Timeout,
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}

/// The checked URL and the client that posts to it.
#[derive(Debug)]
pub struct IncomingWebhook {
    /// Where to POST; only its host is ever shown.
    pub endpoint: SecretUrl,
    /// The notifier's client ([`crate::client`]).
    pub client: reqwest::Client,
}

impl IncomingWebhook {
    /// Checks the section: an http(s) URL with a host, a timeout above zero.
    pub fn new(config: &IncomingWebhookConfig) -> Result<Self, ConfigError> {
        let endpoint = SecretUrl::parse(&config.webhook_url).map_err(ConfigError::WebhookUrl)?;
        if config.timeout.is_zero() {
            return Err(ConfigError::Timeout);
        }
        let client =
            crate::client(config.timeout).map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Self { endpoint, client })
    }

    /// POSTs `body` as JSON. A request that got no answer (timeout, refused connection,
    /// reset) is transient: the channel may be back soon. `what` names the message in the
    /// error; the URL never appears in it, only the host.
    pub async fn post_json(
        &self,
        body: &impl serde::Serialize,
        what: &str,
    ) -> Result<reqwest::Response, esim_courier_core::NotifyError> {
        self.client
            .post(self.endpoint.url())
            .json(body)
            .send()
            .await
            .map_err(|e| {
                esim_courier_core::NotifyError::transient(self.endpoint.redact(&format!(
                    "{what}: POST to {} failed: {}",
                    self.endpoint.host(),
                    crate::describe(&e)
                )))
            })
    }
}

/// Posts the parts of one notification in order: nearly always one, several for a digest of
/// thousands of orders. `post` gets each part and its name for errors ("the card", "card 2 of
/// 3" for `noun = "card"`) and answers the HTTP status it got. The receipt is
/// `HTTP <status>`, with the number of parts when there are several. Should one part fail,
/// the error is returned and the retry posts them all again: an incoming webhook has no
/// idempotency key, and a repeat beats losing the rest.
pub async fn post_parts<'a, T, F, Fut>(
    parts: &'a [T],
    noun: &str,
    mut post: F,
) -> Result<esim_courier_core::Receipt, esim_courier_core::NotifyError>
where
    F: FnMut(&'a T, String) -> Fut,
    Fut: std::future::Future<Output = Result<u16, esim_courier_core::NotifyError>>,
{
    let total = parts.len();
    let mut status = 0;
    for (i, part) in parts.iter().enumerate() {
        let what = if total == 1 {
            format!("the {noun}")
        } else {
            format!("{noun} {} of {total}", i + 1)
        };
        status = post(part, what).await?;
    }
    Ok(esim_courier_core::Receipt::with_id(if total == 1 {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status} ({total} messages)")
    }))
}
