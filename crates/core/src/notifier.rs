//! The notifier plugin contract.
//!
//! A notifier is built once from its configuration section and then called by the dispatcher
//! for each job routed to it. The dispatcher, not the plugin, owns retries, dead letters and
//! the log of attempts: a plugin only says, through [`NotifyError`], whether a retry can help.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::{ActivationCode, Alert, Customer, Money, OrderNo};

/// Who a notifier writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The traveller who bought the eSIM. Jobs wait until the order's customer is registered.
    Customer,
    /// The reseller's operators.
    Operator,
}

impl Audience {
    /// `customer` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Operator => "operator",
        }
    }
}

/// A notifier plugin.
///
/// Implementations must be cheap to share (`Send + Sync`, used behind an `Arc`) and must not
/// retry internally: return a transient [`NotifyError`] and the dispatcher schedules the retry.
///
/// ```
/// use esim_courier_core::{async_trait, Audience, Content, Notification, Notifier, NotifyError, Receipt};
///
/// /// Writes one line per notification to a pager (here, standard error).
/// #[derive(Debug)]
/// struct Pager {
///     name: String,
/// }
///
/// #[async_trait]
/// impl Notifier for Pager {
///     fn name(&self) -> &str {
///         &self.name
///     }
///
///     fn audience(&self) -> Audience {
///         Audience::Operator
///     }
///
///     async fn notify(&self, n: &Notification) -> Result<Receipt, NotifyError> {
///         let what = match &n.content {
///             Content::OrderFailed(f) => format!("order {} failed", f.order_no),
///             Content::Alert(a) => a.reason.clone(),
///             _ => format!("{} item(s)", n.items().len()),
///         };
///         eprintln!("[{}] {what}", self.name);
///         // The key is the same on every attempt of this job: a channel that can, deduplicates by it.
///         Ok(Receipt::with_id(n.key.clone()))
///     }
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let pager = Pager { name: "pager".into() };
/// let receipt = pager.notify(&esim_courier_core::testing::failed_order("B1")).await.unwrap();
/// assert_eq!(receipt.id.as_deref(), Some("job-B1"));
/// # });
/// ```
#[async_trait]
pub trait Notifier: Send + Sync + fmt::Debug {
    /// The name of this notifier's configuration section, e.g. `customer-email`.
    fn name(&self) -> &str;

    /// Who it writes to.
    fn audience(&self) -> Audience;

    /// Delivers one notification. Called again with the same [`Notification::key`] when a
    /// previous attempt failed or was interrupted, so use the key for idempotency where the
    /// channel allows it (a `Message-ID`, a `webhook-id` header).
    async fn notify(&self, notification: &Notification) -> Result<Receipt, NotifyError>;

    /// Checks the channel is usable (server reachable, credentials accepted) without sending
    /// anything to anyone. Used by `esim-courier check`.
    async fn healthcheck(&self) -> Result<(), NotifyError> {
        Ok(())
    }

    /// Checks what this notifier can check on its own, without the network: its templates
    /// render in every locale, its limits hold, .... `Ok` says in a few words what passed
    /// (`None`: nothing to check, the default); `Err` lists every problem. Used by
    /// `esim-courier check` for every notifier, whatever its type.
    fn validate(&self) -> Result<Option<String>, Vec<String>> {
        Ok(None)
    }
}

/// One thing to tell someone.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Stable across every attempt of the same job: use it to deduplicate downstream.
    pub key: String,
    /// What happened.
    pub content: Content,
}

/// The three kinds of notification.
// One value per delivery attempt, never stored in bulk: boxing the large variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Content {
    /// An eSIM is ready: the customer's activation email.
    OrderCompleted(CompletedOrder),
    /// The provider failed an order.
    OrderFailed(FailedOrder),
    /// Something operators must act on.
    Alert(Alert),
    /// Several operator notifications bound for the same notifier within its grouping window
    /// (`group_window`), to be sent as one message that lists them all. Never nested; never
    /// sent to customer notifiers. Identical alerts appear once.
    Digest(Vec<Notification>),
}

/// A completed order with everything needed to install its eSIM.
#[derive(Debug, Clone)]
pub struct CompletedOrder {
    /// The provider's order number.
    pub order_no: OrderNo,
    /// The ICCID as shown to people.
    pub iccid: String,
    /// The activation code (its `Debug` is redacted).
    pub activation_code: ActivationCode,
    /// The provider's package identifier.
    pub package_code: Option<String>,
    /// The package's human name.
    pub package_name: Option<String>,
    /// The reseller's cost with the provider: for operators only, never for customers.
    pub contract_price: Option<Money>,
    /// The registered customer. Always present for customer-audience notifiers.
    pub customer: Option<Customer>,
    /// When the provider's webhook arrived, in milliseconds since the Unix epoch.
    pub received_at_ms: i64,
}

/// A failed order.
#[derive(Debug, Clone)]
pub struct FailedOrder {
    /// The provider's order number.
    pub order_no: OrderNo,
    /// The provider's package identifier.
    pub package_code: Option<String>,
    /// The package's human name.
    pub package_name: Option<String>,
    /// The reseller's cost with the provider.
    pub contract_price: Option<Money>,
    /// When the provider's webhook arrived, in milliseconds since the Unix epoch.
    pub received_at_ms: i64,
}

impl Notification {
    /// The customer's address an activation notification is addressed to, if it has a
    /// registered customer.
    pub fn customer_address(&self) -> Option<&crate::EmailAddress> {
        match &self.content {
            Content::OrderCompleted(o) => o.customer.as_ref().map(|c| &c.email),
            _ => None,
        }
    }

    /// The order concerned, if any (none for a digest).
    pub fn order_no(&self) -> Option<&str> {
        match &self.content {
            Content::OrderCompleted(o) => Some(o.order_no.as_str()),
            Content::OrderFailed(o) => Some(o.order_no.as_str()),
            Content::Alert(a) => a.order_no.as_deref(),
            Content::Digest(_) => None,
        }
    }

    /// `order_completed`, `order_failed`, `alert` or `digest`.
    pub fn kind(&self) -> &'static str {
        match &self.content {
            Content::OrderCompleted(_) => "order_completed",
            Content::OrderFailed(_) => "order_failed",
            Content::Alert(_) => "alert",
            Content::Digest(_) => "digest",
        }
    }

    /// The single notifications this one stands for: itself, or a digest's items. Lets a
    /// plugin render "one or many" with one loop.
    pub fn items(&self) -> &[Notification] {
        match &self.content {
            Content::Digest(items) => items,
            _ => std::slice::from_ref(self),
        }
    }
}

/// What a channel said when it took a notification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// The channel's id for the message (SMTP queue id, HTTP response id, file name), if any.
    pub id: Option<String>,
    /// The language the message was written in, for channels that choose one per recipient
    /// (the activation email): recorded with the delivery.
    pub locale: Option<String>,
}

impl Receipt {
    /// A receipt carrying the channel's id.
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            locale: None,
        }
    }

    /// The same receipt, saying the message was written in `locale`.
    #[must_use]
    pub fn in_locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = Some(locale.into());
        self
    }
}

/// A failed delivery, and whether retrying can help.
#[derive(Debug)]
pub struct NotifyError {
    transient: bool,
    message: String,
    retry_after: Option<Duration>,
}

impl NotifyError {
    /// A failure that may pass: timeout, connection refused, SMTP 4xx, HTTP 429 or 5xx.
    ///
    /// ```
    /// use std::time::Duration;
    /// use esim_courier_core::NotifyError;
    ///
    /// // The channel said 429 with Retry-After: 30.
    /// let e = NotifyError::transient("HTTP 429").with_retry_after(Duration::from_secs(30));
    /// assert!(e.is_transient());
    /// assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    /// // A 4xx no retry can fix: the dispatcher dead-letters the job and alerts operators.
    /// assert!(!NotifyError::permanent("HTTP 404").is_transient());
    /// ```
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            transient: true,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A failure that retrying will not fix: SMTP 5xx, HTTP 4xx, a bad address, a template
    /// that does not render.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            transient: false,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The channel asked to wait this long before the next attempt (e.g. `Retry-After`).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Whether a retry can help.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// How long the channel asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// What went wrong. Must never contain a secret.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.transient {
            "transient"
        } else {
            "permanent"
        };
        write!(f, "{kind}: {}", self.message)
    }
}

impl std::error::Error for NotifyError {}
