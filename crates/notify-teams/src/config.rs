use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// The `[notifiers.<name>]` section of a `teams` notifier. Teams notifiers write to
/// operators only, so there is no `audience` key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamsConfig {
    /// The Workflows webhook URL (the "When a Teams webhook request is received" trigger,
    /// `https://….logic.azure.com/workflows/…/invoke?…&sig=…` or an
    /// `…environment.api.powerplatform.com` URL). A secret: whoever has it can post to the
    /// channel. Its `Debug` is redacted.
    pub webhook_url: SecretString,
    /// How long one POST may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// A Teams notifier's section is not usable. Never quotes the webhook URL.
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
