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
