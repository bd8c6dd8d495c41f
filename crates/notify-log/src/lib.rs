//! The `log` notifier: one structured log line per notification. For development and for
//! a first run with no mail server; never logs a matching ID or a full customer address.
//!
//! ```toml
//! [notifiers.dev-log]
//! type = "log"
//! audience = "operator"   # or "customer"
//! ```

use esim_courier_core::{
    async_trait, Audience, Content, Notification, Notifier, NotifyError, Receipt,
};
use serde::Deserialize;

/// The `[notifiers.<name>]` section of a `log` notifier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Who it stands in for.
    #[serde(default = "operator")]
    pub audience: Audience,
}

fn operator() -> Audience {
    Audience::Operator
}

/// Writes notifications to the log.
#[derive(Debug)]
pub struct LogNotifier {
    name: String,
    audience: Audience,
}

impl LogNotifier {
    /// Builds the notifier named `name` from its section.
    pub fn new(name: impl Into<String>, config: LogConfig) -> Self {
        Self {
            name: name.into(),
            audience: config.audience,
        }
    }
}

#[async_trait]
impl Notifier for LogNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn audience(&self) -> Audience {
        self.audience
    }

    async fn notify(&self, n: &Notification) -> Result<Receipt, NotifyError> {
        let summary = match &n.content {
            Content::OrderCompleted(o) => format!(
                "order {} COMPLETED: {} (ICCID {}, activation code {}), customer {}",
                o.order_no,
                o.package_name.as_deref().unwrap_or("package unknown"),
                o.iccid,
                o.activation_code,
                o.customer
                    .as_ref()
                    .map_or_else(|| "not registered".to_owned(), |c| c.email.masked()),
            ),
            Content::OrderFailed(o) => format!(
                "order {} FAILED: {}",
                o.order_no,
                o.package_name.as_deref().unwrap_or("package unknown")
            ),
            Content::Alert(a) => a.summary(),
            Content::Digest(items) => {
                let orders: Vec<&str> = items.iter().filter_map(Notification::order_no).collect();
                format!(
                    "{} notifications grouped; orders: {}",
                    items.len(),
                    orders.join(", ")
                )
            }
        };
        tracing::info!(target: "esim_courier::notify_log", notifier = %self.name, kind = n.kind(), key = %n.key, "{summary}");
        Ok(Receipt::with_id(n.key.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esim_courier_core::{ActivationCode, CompletedOrder, OrderNo};

    #[tokio::test]
    async fn logs_without_failing_and_answers_with_the_key() {
        let n = LogNotifier::new(
            "dev-log",
            LogConfig {
                audience: Audience::Operator,
            },
        );
        let notification = Notification {
            key: "event:1:order_completed:dev-log".into(),
            content: Content::OrderCompleted(CompletedOrder {
                order_no: OrderNo::parse("42").expect("valid"),
                iccid: "8944500102198304826".into(),
                activation_code: ActivationCode::parse("LPA:1$rsp.example$SECRET").expect("valid"),
                package_code: None,
                package_name: None,
                contract_price: None,
                customer: None,
                received_at_ms: 0,
            }),
        };
        let receipt = n.notify(&notification).await.expect("logging cannot fail");
        assert_eq!(
            receipt.id.as_deref(),
            Some("event:1:order_completed:dev-log")
        );
    }
}
