//! A notifier that opens a ticket in the shop's CRM for every FAILED order and every alert:
//! `POST <url>/tickets` with a bearer token and a JSON body.
//!
//! What makes it a good esim-courier notifier:
//! - its configuration is a serde struct that refuses unknown keys, so a typo names itself
//!   (`type`, `retry` and `group_window` are esim-courier's and never reach it);
//! - it says whether a failure is transient (a retry may help: no answer, 408, 429, 5xx,
//!   with `Retry-After`) or permanent (the dispatcher dead-letters the job and alerts);
//! - it sends the notification's `key` as an idempotency key, since a retry repeats a call
//!   that may have been received;
//! - it never puts the token in an error message.

use std::time::Duration;

use esim_courier_core::summary::summarise_all;
use esim_courier_core::{async_trait, Audience, Notification, Notifier, NotifyError, Receipt};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `[notifiers.<name>]` with `type = "crm"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrmConfig {
    /// The CRM's API base, e.g. `https://crm.example.com/api`.
    pub url: String,
    /// The API token (give it by environment: `ESIM_COURIER__NOTIFIERS__<NAME>__TOKEN`).
    pub token: SecretString,
    /// For the whole request.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Opens CRM tickets for operators.
#[derive(Debug)]
pub struct CrmNotifier {
    name: String,
    tickets: String,
    token: SecretString,
    client: reqwest::Client,
}

impl CrmNotifier {
    /// Checks the section and builds the client; the error names what is wrong.
    pub fn new(name: String, config: CrmConfig) -> Result<Self, String> {
        let base = config.url.trim().trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(format!("url must be an http(s) URL, got {base:?}"));
        }
        let client = esim_courier_notify_http::client(config.timeout)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            name,
            tickets: format!("{base}/tickets"),
            token: config.token,
            client,
        })
    }
}

#[async_trait]
impl Notifier for CrmNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn audience(&self) -> Audience {
        Audience::Operator
    }

    async fn notify(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        // A digest (grouped alerts) is one ticket listing every item.
        let items = summarise_all(notification);
        let subject = match items.as_slice() {
            [one] => one.title.clone(),
            many => esim_courier_core::summary::digest_headline(many),
        };
        let lines: Vec<String> = items
            .iter()
            .map(|s| match &s.command {
                Some(command) => format!("{}: {} ({command})", s.title, s.reason),
                None => format!("{}: {}", s.title, s.reason),
            })
            .collect();
        let orders: Vec<&str> = items.iter().filter_map(|s| s.order_no.as_deref()).collect();
        let response = self
            .client
            .post(&self.tickets)
            .bearer_auth(self.token.expose_secret())
            // The key holds an order number, which may be in another script: a header
            // carries it percent-encoded.
            .header(
                "Idempotency-Key",
                esim_courier_notify_http::header_text(&notification.key).as_ref(),
            )
            .json(&serde_json::json!({
                "subject": subject,
                "body": lines.join("\n"),
                "orders": orders,
                "source": "esim-courier",
            }))
            .send()
            .await
            .map_err(|e| esim_courier_notify_http::unanswered(&e, "the CRM did not answer"))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Receipt::with_id(format!("HTTP {status}")));
        }
        let retry_after = esim_courier_notify_http::retry_after(response.headers());
        Err(esim_courier_notify_http::refused(
            status,
            format!("the CRM answered HTTP {status}"),
            retry_after,
        ))
    }

    fn validate(&self) -> Result<Option<String>, Vec<String>> {
        Ok(Some(format!("tickets go to {}", self.tickets)))
    }
}
