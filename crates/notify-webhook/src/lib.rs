//! The `webhook` notifier: POSTs each notification as JSON to a URL, signed per the
//! [Standard Webhooks](https://www.standardwebhooks.com/) specification, so the receiver can
//! check it came from esim-courier and was not replayed.
//!
//! ```toml
//! [notifiers.ops-hook]
//! type = "webhook"
//! url = "https://ops.example.com/esim-courier"
//! secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"   # or ESIM_COURIER__NOTIFIERS__OPS-HOOK__SECRET
//! timeout = "10s"
//! ```
//!
//! Headers: `webhook-id` (the notification key: stable across retries, so the receiver can
//! deduplicate), `webhook-timestamp` (Unix seconds) and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`).
//! It is also the worked example of `crates/core/README.md`.

mod config;
mod payload;
mod signature;

use esim_courier_core::{async_trait, Audience, Notification, Notifier, NotifyError, Receipt};

pub use config::{ConfigError, WebhookConfig};
pub use signature::Signer;

/// Posts notifications to one URL.
#[derive(Debug)]
pub struct WebhookNotifier {
    name: String,
    audience: Audience,
    url: reqwest::Url,
    signer: Option<Signer>,
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// Builds the notifier named `name` from its section.
    pub fn new(name: impl Into<String>, config: WebhookConfig) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(&config.url).map_err(|e| ConfigError::Url(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::Url(format!(
                "scheme {:?} is not http or https",
                url.scheme()
            )));
        }
        let signer = config
            .secret
            .as_ref()
            .map(Signer::from_secret)
            .transpose()?;
        let client = esim_courier_notify_http::client(config.timeout)
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Self {
            name: name.into(),
            audience: config.audience,
            url,
            signer,
            client,
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn audience(&self) -> Audience {
        self.audience
    }

    async fn notify(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let body = payload::body(notification, self.audience)
            .map_err(|e| NotifyError::permanent(format!("the payload does not serialise: {e}")))?;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        // Percent-encoded where a header cannot carry it (an order number in another
        // script, a control character in an ICCID); signed as sent.
        let id = esim_courier_notify_http::header_text(&notification.key);
        let mut request = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", id.as_ref())
            .header("webhook-timestamp", timestamp.to_string());
        if let Some(signer) = &self.signer {
            request = request.header("webhook-signature", signer.sign(&id, timestamp, &body));
        }
        let response = request.body(body).send().await.map_err(|e| {
            esim_courier_notify_http::unanswered(
                &e,
                &format!("POST to {} failed", self.url.host_str().unwrap_or("?")),
            )
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(Receipt::with_id(format!("HTTP {}", status.as_u16())));
        }
        let retry_after = esim_courier_notify_http::retry_after(response.headers());
        let message = format!(
            "{} answered HTTP {}",
            self.url.host_str().unwrap_or("?"),
            status.as_u16()
        );
        Err(esim_courier_notify_http::refused(
            status.as_u16(),
            message,
            retry_after,
        ))
    }

    async fn healthcheck(&self) -> Result<(), NotifyError> {
        // Any HTTP answer proves the endpoint is reachable; nothing is posted.
        self.client
            .head(self.url.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                NotifyError::transient(format!(
                    "{} is unreachable: {}",
                    self.url.host_str().unwrap_or("?"),
                    esim_courier_notify_http::describe(&e)
                ))
            })
    }
}
