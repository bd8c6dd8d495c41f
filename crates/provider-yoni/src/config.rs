use std::num::NonZeroU32;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// The `[provider]` section for `type = "yoni"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YoniConfig {
    /// The API's base URL, e.g. `https://api.example-provider.com`.
    pub base_url: String,
    /// The reseller's app id.
    pub app_id: String,
    /// The reseller's app secret: it signs every call. Give it by environment variable.
    pub app_secret: SecretString,
    /// How long one call may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Lookups (`/v1/order/e-sim/page`) per second; the provider allows 10.
    #[serde(default = "default_rate")]
    pub requests_per_second: NonZeroU32,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_rate() -> NonZeroU32 {
    NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN)
}

/// The section is not usable. Never quotes the secret.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The base URL does not parse or is not http(s).
    #[error("base_url: {0}")]
    BaseUrl(String),
    /// The app id is empty.
    #[error("app_id is empty")]
    AppId,
    /// The timeout is zero.
    #[error("timeout must be longer than 0s")]
    Timeout,
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
}
