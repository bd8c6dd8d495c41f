use std::time::Duration;

use esim_courier_core::Audience;
use secrecy::SecretString;
use serde::Deserialize;

/// The `[notifiers.<name>]` section of a `webhook` notifier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// The Standard Webhooks signing secret, `whsec_<base64>`. Without it, nothing is signed.
    pub secret: Option<SecretString>,
    /// How long one POST may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Operators (default) get no activation code; a customer-audience webhook (e.g. the
    /// shop's own app) gets it in full.
    #[serde(default = "operator")]
    pub audience: Audience,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn operator() -> Audience {
    Audience::Operator
}

/// A webhook notifier's section is not usable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The URL does not parse or is not http(s).
    #[error("url is not valid: {0}")]
    Url(String),
    /// The secret is not `whsec_<base64>`.
    #[error("secret must be \"whsec_\" followed by base64")]
    Secret,
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}
