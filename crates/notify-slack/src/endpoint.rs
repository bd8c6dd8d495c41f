//! The incoming webhook's URL, kept out of every `Debug` and error message.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::ConfigError;

/// Where messages are posted. Only the host is ever shown: the path is the secret.
pub(crate) struct Endpoint {
    url: reqwest::Url,
}

impl Endpoint {
    /// Parses and checks the configured URL.
    pub(crate) fn parse(secret: &SecretString) -> Result<Self, ConfigError> {
        // `url`'s parse errors describe the problem without quoting the input.
        let url = reqwest::Url::parse(secret.expose_secret().trim())
            .map_err(|e| ConfigError::WebhookUrl(format!("not a URL ({e})")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ConfigError::WebhookUrl(format!(
                "the scheme is {:?}, not https",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ConfigError::WebhookUrl("the URL has no host".into()));
        }
        Ok(Self { url })
    }

    /// The URL to POST to.
    pub(crate) fn url(&self) -> reqwest::Url {
        self.url.clone()
    }

    /// The host, safe to show.
    pub(crate) fn host(&self) -> &str {
        self.url.host_str().unwrap_or("?")
    }

    /// `text` with the URL and its path replaced, should a lower layer ever have quoted it.
    pub(crate) fn redact(&self, text: &str) -> String {
        let path = self.url.path();
        let text = text.replace(self.url.as_str(), "[webhook URL]");
        if path.len() > 1 {
            text.replace(path, "/[redacted]")
        } else {
            text
        }
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({}/[redacted])", self.host())
    }
}
