//! The provider contract: the eSIM provider's order API as esim-courier uses it, shaped like
//! [`crate::Notifier`]. One crate per provider implements it (`provider-yoni` first); nothing
//! outside that crate knows the provider's wire format.
//!
//! Errors say whether a retry can help, and whether operators must act on the reseller's
//! account (it does not exist, is inactive, the caller's address is not allowed, the balance
//! is too low).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

use crate::{EmailAddress, OrderEvent, OrderNo};

/// An order to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceOrder {
    /// The caller's idempotency key: the same key never places a second order.
    pub reference: String,
    /// The provider's package.
    pub package_code: String,
    /// The customer's address, as the provider wants one.
    pub email: EmailAddress,
}

/// Where an order stands at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderStatus {
    /// Not finished yet: look again later.
    Processing,
    /// The eSIM was issued.
    Completed,
    /// No eSIM will come.
    Failed,
    /// A status this build does not know, kept as received.
    Other(String),
}

impl fmt::Display for OrderStatus {
    /// The provider's word: `PROCESSING`, `COMPLETED`, `FAILED`, or the unknown one as received.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Processing => "PROCESSING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Other(s) => s,
        })
    }
}

/// One order as the provider reports it.
#[derive(Debug, Clone)]
pub struct ProviderOrder {
    /// The provider's order number.
    pub order_no: OrderNo,
    /// Where it stands.
    pub status: OrderStatus,
    /// When the provider created it (Unix milliseconds), if it said.
    pub created_at_ms: Option<i64>,
    /// For a finished order, the event it means, parsed by the same rules as a webhook (so a
    /// webhook of the same order is its duplicate).
    pub event: Option<OrderEvent>,
    /// The provider's record exactly as received: the evidence, kept as a webhook's receipt
    /// is. Holds the activation code: never log it.
    pub record: Vec<u8>,
}

/// A page of the provider's orders, newest first.
#[derive(Debug)]
pub struct ProviderPage {
    /// How many orders there are in all.
    pub total: u64,
    /// This page's number, from 1.
    pub current: u32,
    /// The page size asked for.
    pub size: u32,
    /// Its orders; one that cannot be read is an error of its own and does not fail the page.
    pub orders: Vec<Result<ProviderOrder, ProviderError>>,
}

/// A failed provider call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    transient: bool,
    account: bool,
    code: Option<i64>,
    message: String,
    retry_after: Option<Duration>,
}

impl ProviderError {
    /// A failure that may pass: a timeout, HTTP 429/5xx, "still processing", "busy".
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            transient: true,
            account: false,
            code: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A failure that retrying will not fix: a refused signature, an unknown package.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            transient: false,
            ..Self::transient(message)
        }
    }

    /// The provider's own error code.
    #[must_use]
    pub fn with_code(mut self, code: i64) -> Self {
        self.code = Some(code);
        self
    }

    /// Operators must act on the reseller's account (raise `provider_account` at once).
    #[must_use]
    pub fn about_the_account(mut self) -> Self {
        self.account = true;
        self
    }

    /// The provider asked to wait this long.
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Whether a retry can help.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// Whether operators must act on the account.
    pub fn is_about_the_account(&self) -> bool {
        self.account
    }

    /// The provider's error code, if it gave one.
    pub fn code(&self) -> Option<i64> {
        self.code
    }

    /// What went wrong. Never holds a secret or an activation code.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How long the provider asked to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.transient {
            "transient"
        } else {
            "permanent"
        };
        match self.code {
            Some(code) => write!(f, "{kind} provider error {code}: {}", self.message),
            None => write!(f, "{kind} provider error: {}", self.message),
        }
    }
}

impl std::error::Error for ProviderError {}

/// The provider's order API.
///
/// Implementations are shared behind an `Arc`, must not retry internally (the caller's
/// outbox job retries a transient error with backoff) and must keep every assumption about
/// the provider's record shapes in one mapping function.
///
/// A client waits for a [`CallGate`] turn before each lookup when it is given one, so that
/// the provider's rate limit holds for the whole deployment, not per process.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// The provider's name in configuration and logs (`yoni`).
    fn name(&self) -> &str;

    /// Places an order; returns the provider's order number. The same
    /// [`PlaceOrder::reference`] again answers the first order's number, never a second order.
    async fn place(&self, order: &PlaceOrder) -> Result<OrderNo, ProviderError>;

    /// Looks one order up; `None` when the provider does not know it (yet).
    async fn lookup(&self, order_no: &OrderNo) -> Result<Option<ProviderOrder>, ProviderError>;

    /// Page `current` (from 1) of `size` of the reseller's orders, newest first.
    async fn page(&self, current: u32, size: u32) -> Result<ProviderPage, ProviderError>;

    /// One signed call that changes nothing, for `esim-courier check`.
    async fn healthcheck(&self) -> Result<(), ProviderError>;
}

/// Turns for calls to the provider's order API, taken in order by every process of a
/// deployment (the store keeps the turn in the database): the provider's rate limit is the
/// reseller's, whatever the number of replicas.
#[async_trait]
pub trait CallGate: Send + Sync + fmt::Debug {
    /// Waits until this process may make one call.
    async fn turn(&self);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RecordingProvider;

    fn order(reference: &str) -> PlaceOrder {
        PlaceOrder {
            reference: reference.into(),
            package_code: "JP-5GB".into(),
            email: EmailAddress::parse("a@example.com").expect("an address"),
        }
    }

    #[tokio::test]
    async fn the_recording_provider_places_once_per_reference_and_pages_newest_first() {
        let provider = RecordingProvider::new();
        let first = provider.place(&order("r1")).await.expect("placed");
        assert_eq!(provider.place(&order("r1")).await.expect("placed"), first);
        let second = provider.place(&order("r2")).await.expect("placed");
        let page = provider.page(1, 10).await.expect("a page");
        let numbers: Vec<OrderNo> = page
            .orders
            .into_iter()
            .map(|o| o.expect("usable").order_no)
            .collect();
        assert_eq!(numbers, [second.clone(), first]);
        provider.fail_next(ProviderError::transient("busy").with_code(102));
        let e = provider.lookup(&second).await.expect_err("scripted");
        assert!(e.is_transient() && e.code() == Some(102));
        assert_eq!(
            provider
                .lookup(&second)
                .await
                .expect("answers")
                .map(|o| o.status),
            Some(OrderStatus::Processing)
        );
        assert_eq!(provider.calls().len(), 6);
    }
}
