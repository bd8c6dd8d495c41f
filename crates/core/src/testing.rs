//! Helpers for testing notifier plugins and the code that drives them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::{Audience, Notification, Notifier, NotifyError, Receipt};

/// A notifier that records every notification it is given and answers from a script.
///
/// ```
/// use esim_courier_core::testing::RecordingNotifier;
/// use esim_courier_core::{Audience, NotifyError};
///
/// let n = RecordingNotifier::new("ops", Audience::Operator);
/// n.fail_next(NotifyError::transient("SMTP 421, try later"));
/// // ... run the code under test, then:
/// assert!(n.delivered().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct RecordingNotifier {
    name: String,
    audience: Audience,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<NotifyError>,
    attempts: Vec<Notification>,
    delivered: Vec<Notification>,
}

impl RecordingNotifier {
    /// A notifier that succeeds unless told otherwise.
    pub fn new(name: impl Into<String>, audience: Audience) -> Self {
        Self {
            name: name.into(),
            audience,
            state: Arc::default(),
        }
    }

    /// The next call fails with `error` (calls queue up).
    pub fn fail_next(&self, error: NotifyError) {
        self.lock().script.push_back(error);
    }

    /// Every notification passed to `notify`, successful or not.
    pub fn attempts(&self) -> Vec<Notification> {
        self.lock().attempts.clone()
    }

    /// The notifications delivered successfully.
    pub fn delivered(&self) -> Vec<Notification> {
        self.lock().delivered.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn audience(&self) -> Audience {
        self.audience
    }

    async fn notify(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        let mut state = self.lock();
        state.attempts.push(notification.clone());
        if let Some(error) = state.script.pop_front() {
            return Err(error);
        }
        state.delivered.push(notification.clone());
        Ok(Receipt::with_id(format!(
            "recorded-{}",
            state.delivered.len()
        )))
    }
}

/// A FAILED order's notification, as the provider's sample describes one: package
/// `JP-5GB-30D` ("Japan 5GB 30 days"), contract price 4.20 USD, received 2024-05-01T09:30Z,
/// keyed `job-<order_no>`. Panics if `order_no` is not an order number.
pub fn failed_order(order_no: &str) -> Notification {
    Notification {
        key: format!("job-{order_no}"),
        content: crate::Content::OrderFailed(crate::FailedOrder {
            order_no: crate::OrderNo::parse(order_no).expect("an order number"),
            package_code: Some("JP-5GB-30D".into()),
            package_name: Some("Japan 5GB 30 days".into()),
            contract_price: Some(
                crate::Money::parse("4.20", crate::Currency::Iso("USD".into())).expect("price"),
            ),
            received_at_ms: 1_714_555_800_000,
        }),
    }
}

/// A provider that keeps its orders in memory and answers from a script: for unit tests of
/// code that drives a [`crate::provider::Provider`]. (Suites that need the provider's wire
/// format use the fake provider HTTP server of the test-support crate.)
#[derive(Debug, Clone, Default)]
pub struct RecordingProvider {
    state: Arc<Mutex<ProviderState>>,
}

#[derive(Debug, Default)]
struct ProviderState {
    /// Oldest first.
    orders: Vec<crate::provider::ProviderOrder>,
    placed: std::collections::HashMap<String, crate::OrderNo>,
    script: VecDeque<crate::provider::ProviderError>,
    calls: Vec<String>,
}

impl RecordingProvider {
    /// A provider with no orders.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces, by order number) an order the provider knows.
    pub fn insert(&self, order: crate::provider::ProviderOrder) {
        let mut state = self.lock();
        state.orders.retain(|o| o.order_no != order.order_no);
        state.orders.push(order);
    }

    /// The next call fails with `error` (calls queue up).
    pub fn fail_next(&self, error: crate::provider::ProviderError) {
        self.lock().script.push_back(error);
    }

    /// Every call, in order: `place REF`, `lookup NO`, `page N`, `healthcheck`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProviderState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn call(&self, what: String) -> Result<(), crate::provider::ProviderError> {
        let mut state = self.lock();
        state.calls.push(what);
        state.script.pop_front().map_or(Ok(()), Err)
    }
}

#[async_trait]
impl crate::provider::Provider for RecordingProvider {
    fn name(&self) -> &str {
        "recording"
    }

    async fn place(
        &self,
        order: &crate::provider::PlaceOrder,
    ) -> Result<crate::OrderNo, crate::provider::ProviderError> {
        self.call(format!("place {}", order.reference))?;
        let mut state = self.lock();
        if let Some(known) = state.placed.get(&order.reference) {
            return Ok(known.clone());
        }
        let order_no = crate::OrderNo::parse(&format!("FAKE-{:06}", state.placed.len() + 1))
            .map_err(crate::provider::ProviderError::permanent)?;
        state
            .placed
            .insert(order.reference.clone(), order_no.clone());
        state.orders.push(crate::provider::ProviderOrder {
            order_no: order_no.clone(),
            status: crate::provider::OrderStatus::Processing,
            created_at_ms: None,
            event: None,
            record: Vec::new(),
        });
        Ok(order_no)
    }

    async fn lookup(
        &self,
        order_no: &crate::OrderNo,
    ) -> Result<Option<crate::provider::ProviderOrder>, crate::provider::ProviderError> {
        self.call(format!("lookup {order_no}"))?;
        Ok(self
            .lock()
            .orders
            .iter()
            .find(|o| &o.order_no == order_no)
            .cloned())
    }

    async fn page(
        &self,
        current: u32,
        size: u32,
    ) -> Result<crate::provider::ProviderPage, crate::provider::ProviderError> {
        self.call(format!("page {current}"))?;
        let state = self.lock();
        let skip = (current.max(1) as usize - 1) * size as usize;
        Ok(crate::provider::ProviderPage {
            total: state.orders.len() as u64,
            current,
            size,
            orders: state
                .orders
                .iter()
                .rev()
                .skip(skip)
                .take(size as usize)
                .cloned()
                .map(Ok)
                .collect(),
        })
    }

    async fn healthcheck(&self) -> Result<(), crate::provider::ProviderError> {
        self.call("healthcheck".to_owned())
    }
}
