//! Reconciliation: an order's result read from the provider's order API instead of its webhook.
//!
//! The provider tries a webhook 3 times in about 9 seconds and then never again, so an outage
//! longer than that loses the order's only notification. A finished order found at the
//! provider goes through the same intake as a webhook ([`Store::intake`] with the same
//! planner, [`Planned::routed`]), its raw record kept as the receipt's body and its event
//! marked [`EventSource::Reconciliation`]. The event's fingerprint is the webhook's (result,
//! ICCID, activation code), so a webhook arriving after reconciliation is its duplicate, and a
//! lookup after the webhook records nothing new: the customer gets one email either way.

use std::collections::HashSet;
use std::sync::Arc;

use esim_courier_core::{
    Disposition, EventSource, OrderNo, OrderStatus, PlaceOrder, Provider, ProviderError,
    ProviderOrder, Routes,
};
use esim_courier_store::{now_ms, NewReceipt, Planned, Store, StoreError};

/// When sweeps run: one every `interval` across every replica, each over the orders the
/// provider created within `window`. A window longer than the interval lets a sweep cover an
/// outage that swallowed the previous ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepSchedule {
    /// Between two sweeps.
    pub interval: std::time::Duration,
    /// How far back a sweep looks.
    pub window: std::time::Duration,
}

impl SweepSchedule {
    /// The sweep slot `now_ms` falls in: the last multiple of the interval at or before it.
    /// Every replica computes the same slot, so one job per slot is scheduled between them.
    pub fn slot(&self, now_ms: i64) -> i64 {
        let interval = esim_courier_store::duration_ms(self.interval).max(1);
        now_ms - now_ms.rem_euclid(interval)
    }
}

/// What a dispatcher's reconciliation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// A placed order is looked up this long after the provider answered its number, unless
    /// its result came by then (`[reconcile] expect_within`).
    pub expect_within: std::time::Duration,
    /// The periodic sweep; `None` when off (`sweep_interval = "0s"`).
    pub sweep: Option<SweepSchedule>,
    /// A lookup that finds no result looks again after this long, doubling each time up to
    /// [`ReconcileSettings::MAX_LOOKUP_INTERVAL`].
    pub lookup_interval: std::time::Duration,
    /// Still no result this long after the order's first lookup was scheduled: alert
    /// `order_overdue` once, and stop looking (the dead-lettered lookup can be retried).
    /// Also how long a webhook waits to be confirmed before `webhook_unverified`.
    pub give_up_after: std::time::Duration,
    /// Confirm a COMPLETED webhook's ICCID and activation code at the provider before the
    /// customer's email goes out (`[reconcile] verify_webhooks`).
    pub verify_webhooks: bool,
}

impl ReconcileSettings {
    /// The longest wait between two lookups of one order.
    pub const MAX_LOOKUP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

    /// The wait before lookup number `attempt + 1` (`attempt` from 1): the interval, doubled
    /// each time, at most [`Self::MAX_LOOKUP_INTERVAL`].
    pub fn next_lookup_in(&self, attempt: u32) -> std::time::Duration {
        let doubled = self
            .lookup_interval
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        doubled.min(Self::MAX_LOOKUP_INTERVAL.max(self.lookup_interval))
    }

    /// Whether lookup number `attempt` (from 1) comes `give_up_after` or more after the
    /// first: the waits between them added up. Counted from the attempts, not from the job's
    /// creation, so retrying the dead letter (which resets its attempts) gives the order a
    /// whole new window.
    pub fn gives_up_at(&self, attempt: u32) -> bool {
        let waited = (1..attempt.max(1)).map(|a| self.next_lookup_in(a)).fold(
            std::time::Duration::ZERO,
            std::time::Duration::saturating_add,
        );
        waited >= self.give_up_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lookups_double_to_half_an_hour_and_give_up_after_their_waits_add_up() {
        let s = ReconcileSettings {
            expect_within: Duration::from_secs(120),
            sweep: None,
            lookup_interval: Duration::from_secs(60),
            give_up_after: Duration::from_secs(24 * 3600),
            verify_webhooks: false,
        };
        let waits: Vec<u64> = (1..=7).map(|a| s.next_lookup_in(a).as_secs()).collect();
        assert_eq!(waits, [60, 120, 240, 480, 960, 1800, 1800]);
        // Before lookup 53: 60+120+240+480+960 = 1,860 s, then 47 waits of 30 minutes =
        // 86,460 s, past 24 h; before lookup 52 it is 84,660 s.
        assert!(!s.gives_up_at(1) && !s.gives_up_at(52));
        assert!(s.gives_up_at(53));
    }
}

/// Why a reconciliation stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The provider's order API failed (its message says whether a retry can help).
    #[error("the provider: {0}")]
    Provider(#[from] ProviderError),
    /// The database failed.
    #[error("the database: {0}")]
    Store(#[from] StoreError),
}

/// What reconciliation found for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A result we had not recorded, now recorded and routed like a webhook's.
    Recovered,
    /// A result we had already (its webhook came, or an earlier reconciliation found it).
    AlreadyKnown,
    /// A result that contradicts the one recorded: recorded and raised to operators, as a
    /// conflicting webhook would be.
    Conflict,
    /// The provider has not finished the order yet (`PROCESSING` or another status).
    Unfinished(OrderStatus),
    /// The provider does not know the order.
    NotAtProvider,
}

/// What a sweep did, for its report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Provider pages read.
    pub pages: u32,
    /// Distinct orders within the window.
    pub orders: u64,
    /// Results recorded for the first time.
    pub recovered: u64,
    /// Results already on record.
    pub already_known: u64,
    /// Results that contradict the record.
    pub conflicts: u64,
    /// Orders the provider has not finished.
    pub unfinished: u64,
    /// Records that could not be read (each logged with its reason).
    pub unreadable: u64,
}

impl SweepReport {
    fn count(&mut self, found: &Found) {
        match found {
            Found::Recovered => self.recovered += 1,
            Found::AlreadyKnown => self.already_known += 1,
            Found::Conflict => self.conflicts += 1,
            Found::Unfinished(_) => self.unfinished += 1,
            Found::NotAtProvider => {}
        }
    }
}

/// Looks orders up at the provider and records the results we never received.
#[derive(Debug, Clone)]
pub struct Reconciler {
    store: Store,
    provider: Arc<dyn Provider>,
    routes: Routes,
}

impl Reconciler {
    /// Page size of a sweep: the size the provider's reference shows (it documents no
    /// maximum).
    pub const PAGE_SIZE: u32 = 50;

    /// Pages in a row with only orders already read after which a sweep stops.
    pub const REPEATED_PAGES: u32 = 3;

    /// A reconciler recording into `store`, routing as `routes` say.
    pub fn new(store: Store, provider: Arc<dyn Provider>, routes: Routes) -> Self {
        Self {
            store,
            provider,
            routes,
        }
    }

    /// Looks `order_no` up and records its result if the provider has finished it.
    pub async fn order(&self, order_no: &OrderNo) -> Result<Found, ReconcileError> {
        match self.provider.lookup(order_no).await? {
            Some(order) => Ok(self.record(&order).await?),
            None => Ok(Found::NotAtProvider),
        }
    }

    /// Places `order` with the provider: its order number (the first order's again for a
    /// reference already placed).
    pub async fn place(&self, order: &PlaceOrder) -> Result<OrderNo, ProviderError> {
        self.provider.place(order).await
    }

    /// The provider's record of `order_no`, if it has one.
    pub async fn lookup(&self, order_no: &OrderNo) -> Result<Option<ProviderOrder>, ProviderError> {
        self.provider.lookup(order_no).await
    }

    /// Records one order as the provider reported it: a finished one goes through intake.
    pub async fn record(&self, order: &ProviderOrder) -> Result<Found, StoreError> {
        let Some(event) = &order.event else {
            return Ok(Found::Unfinished(order.status.clone()));
        };
        // A sweep meets every finished order of its window again at each interval: what is
        // on record already costs one read, not a write of the provider's record.
        if self.store.knows_event(event).await? {
            return Ok(Found::AlreadyKnown);
        }
        let receipt = NewReceipt {
            received_at_ms: now_ms(),
            remote_addr: None,
            body: &order.record,
            source: EventSource::Reconciliation,
        };
        let outcome = self
            .store
            .intake(receipt, event, Planned::routed(self.routes.clone()))
            .await?;
        let found = match outcome.disposition {
            Disposition::Accepted => Found::Recovered,
            Disposition::Duplicate => Found::AlreadyKnown,
            Disposition::Conflict(_) => Found::Conflict,
        };
        if found != Found::AlreadyKnown {
            metrics::counter!("esim_courier_reconciled_orders_total", "outcome" => if found == Found::Recovered { "recovered" } else { "conflict" })
                .increment(1);
            tracing::info!(
                order_no = %order.order_no,
                result = %event.result,
                source = EventSource::Reconciliation.as_str(),
                jobs = outcome.jobs,
                "order recorded by reconciliation ({found:?})"
            );
        }
        Ok(found)
    }

    /// Reads the provider's orders newest first until one is older than `since_ms` (or the
    /// list ends), recording each finished one. Pages shift while new orders arrive, so the
    /// next page may repeat the end of the last one: an order is handled once, by number.
    /// Only order numbers are kept, never a whole page more than the one being read.
    /// `progress` hears of each page with the report so far and the provider's total.
    pub async fn sweep(
        &self,
        since_ms: i64,
        mut progress: impl FnMut(&SweepReport, u64),
    ) -> Result<SweepReport, ReconcileError> {
        let mut report = SweepReport::default();
        let mut seen: HashSet<OrderNo> = HashSet::new();
        let mut current = 1;
        // Pages in a row that brought no order not read before.
        let mut repeated = 0;
        loop {
            let page = self.provider.page(current, Self::PAGE_SIZE).await?;
            report.pages += 1;
            let mut older_seen = false;
            let read = page.orders.len();
            let mut fresh = 0;
            for order in page.orders {
                let order = match order {
                    Ok(order) => order,
                    // Not new: a repeated page's unusable record must not keep a sweep going.
                    Err(e) => {
                        report.unreadable += 1;
                        tracing::warn!(error = %e, "a provider order record is unusable; skipped");
                        continue;
                    }
                };
                if order.created_at_ms.is_some_and(|at| at < since_ms) {
                    older_seen = true;
                    continue;
                }
                if !seen.insert(order.order_no.clone()) {
                    continue;
                }
                fresh += 1;
                report.orders += 1;
                let found = self.record(&order).await?;
                report.count(&found);
            }
            progress(&report, page.total);
            let read_all = u64::from(current) * u64::from(Self::PAGE_SIZE) >= page.total;
            if older_seen || read == 0 || read_all {
                return Ok(report);
            }
            // New orders shift the pages by a few records between two reads, never by whole
            // pages; a provider that answers the same page whatever `current` asks (and a
            // `total` that never runs out) would otherwise keep this sweep, and the
            // provider's lookup rate, busy for ever.
            repeated = if read > 0 && fresh == 0 {
                repeated + 1
            } else {
                0
            };
            if repeated == Self::REPEATED_PAGES {
                tracing::warn!(
                    pages = report.pages,
                    "the provider answered {} pages in a row with no order not read before; the sweep stops here (does it ignore the page number?)",
                    Self::REPEATED_PAGES
                );
                return Ok(report);
            }
            current = current.saturating_add(1);
        }
    }
}
