//! A URL that is itself a secret (an incoming webhook: whoever has it can post to the
//! channel), kept out of every `Debug` and error message: only its host is ever shown.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A secret URL. Its path and query are the secret.
pub struct SecretUrl {
    url: reqwest::Url,
}

impl SecretUrl {
    /// Parses and checks the configured URL: http(s) with a host. The error never quotes
    /// the URL.
    pub fn parse(secret: &SecretString) -> Result<Self, String> {
        // `url`'s parse errors describe the problem without quoting the input.
        let url = reqwest::Url::parse(secret.expose_secret().trim())
            .map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("the scheme is {:?}, not https", url.scheme()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the URL has no host".into());
        }
        Ok(Self { url })
    }

    /// The URL to call.
    pub fn url(&self) -> reqwest::Url {
        self.url.clone()
    }

    /// The host, safe to show.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("?")
    }

    /// `text` with the URL, its path and its query replaced, should a lower layer ever have
    /// quoted them.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.replace(self.url.as_str(), "[webhook URL]");
        let path = self.url.path();
        if path.len() > 1 {
            text = text.replace(path, "/[redacted]");
        }
        if let Some(query) = self.url.query().filter(|q| !q.is_empty()) {
            text = text.replace(query, "[redacted]");
        }
        text
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretUrl({}/[redacted])", self.host())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_is_ever_shown() {
        let url = SecretUrl::parse(&SecretString::from(
            "https://example.logic.azure.com/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SECRETSIG",
        ))
        .expect("a URL");
        assert_eq!(url.host(), "example.logic.azure.com");
        let debug = format!("{url:?}");
        assert!(
            !debug.contains("abc123") && !debug.contains("SECRETSIG"),
            "{debug}"
        );
        let said = url.redact(&format!(
            "error sending request for url ({}); path {} query {}",
            url.url(),
            url.url().path(),
            url.url().query().unwrap_or_default()
        ));
        assert!(
            !said.contains("abc123") && !said.contains("SECRETSIG"),
            "{said}"
        );
        for bad in ["not a url", "ftp://example.com/x", "file:///etc/passwd"] {
            let err = SecretUrl::parse(&SecretString::from(bad)).expect_err(bad);
            assert!(!err.contains(bad), "{err}");
        }
    }
}
