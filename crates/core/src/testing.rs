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
