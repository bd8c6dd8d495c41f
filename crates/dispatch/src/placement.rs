//! The placement of an order with the provider, as an outbox job (leased, crash-safe, once
//! across replicas).
//!
//! The call carries `idempotentKey = reference`, so a retry (after a transient error, or
//! after a worker died between the provider's answer and the commit) answers the first
//! order's number and never buys a second eSIM. The answer binds the customer to that
//! number in the job's own transaction ([`Store::placement_placed`]).
//!
//! - transient errors retry with the dispatcher's backoff ([`RetryPolicy::default`]); when
//!   its attempts run out the placement fails (retrying the dead letter places again);
//! - account errors (the provider's 501/502/503/506) raise `provider_account` at once: a
//!   transient one (506) once per placement and code while the placement retries, a
//!   permanent one (501/502/503) as the placement stops;
//! - other permanent errors fail the placement with the provider's message and raise
//!   `placement_failed`.
//!
//! [`Store::placement_placed`]: esim_courier_store::Store::placement_placed

use esim_courier_core::{Alert, PlaceOrder, ProviderError};
use esim_courier_store::{duration_ms, now_ms, AttemptOutcome, ClaimedJob, PlacementStatus};

use crate::{Dispatcher, RetryPolicy};

impl Dispatcher {
    pub(crate) async fn place(&self, job: &ClaimedJob) {
        let Some((reconciler, settings)) = &self.reconcile else {
            self.leave_to_another_replica(job).await;
            return;
        };
        let started_at = now_ms();
        let placement = match job.payload.as_deref() {
            Some(reference) => self.store.placement(reference).await,
            None => Ok(None),
        };
        let placement = match placement {
            Ok(Some(p)) => p,
            Ok(None) => {
                let why = "the placement job names no known placement";
                self.dead(job, started_at, None, AttemptOutcome::Permanent, why)
                    .await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the placement failed; releasing its job");
                self.release(job).await;
                return;
            }
        };
        let reference = placement.reference.clone();
        if placement.status == PlacementStatus::Placed {
            // Placed by an earlier attempt whose job outcome is this one: nothing to ask.
            let attempt = self.attempt(started_at, None);
            let written = self
                .store
                .job_delivered(job, &attempt, Some("already placed"))
                .await;
            self.check_written(written);
            return;
        }
        let order = PlaceOrder {
            reference: reference.clone(),
            package_code: placement.package_code.clone(),
            email: placement.customer.email.clone(),
        };
        let answer = reconciler.place(&order).await;
        let attempt = self.attempt(started_at, None);
        let error = match answer {
            Ok(order_no) => {
                let lookup_at = started_at + duration_ms(settings.expect_within);
                let written = self
                    .store
                    .placement_placed(job, &attempt, &placement, &order_no, Some(lookup_at))
                    .await;
                if matches!(written, Ok(true)) {
                    metrics::counter!("esim_courier_placements_total", "outcome" => "placed")
                        .increment(1);
                    tracing::info!(%reference, order_no = %order_no, attempt = job.attempts, "order placed with the provider");
                }
                self.check_written(written);
                return;
            }
            Err(e) => e,
        };
        if error.is_about_the_account() && error.is_transient() {
            self.account_alert(job, &reference, &error).await;
        }
        let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        let policy = RetryPolicy::default();
        if error.is_transient() && attempts < policy.max_attempts {
            let next = started_at + duration_ms(policy.delay(attempts, error.retry_after()));
            tracing::warn!(%reference, error = %error, retry_in_ms = next - started_at, "placing the order failed; will retry with the same idempotency key");
            let why = error.to_string();
            let written = self.store.job_retry(job, &attempt, &why, next).await;
            self.check_written(written);
            return;
        }
        let (outcome, why) = if error.is_transient() {
            let why = format!("gave up after {attempts} attempts: {error}");
            (AttemptOutcome::Transient, why)
        } else {
            (AttemptOutcome::Permanent, error.message().to_owned())
        };
        tracing::error!(%reference, error = %error, "placing the order failed for good");
        metrics::counter!("esim_courier_placements_total", "outcome" => "failed").increment(1);
        let alert = if error.is_about_the_account() && !error.is_transient() {
            Alert::provider_account(&reference, &account_cause(&error), false, started_at)
        } else {
            Alert::placement_failed(&reference, &why, job.id, started_at)
        };
        let alert_jobs = self.alert_jobs(&alert);
        let written = self
            .store
            .placement_failed(job, &attempt, (outcome, &why), &alert_jobs)
            .await;
        self.check_written(written);
    }

    /// Raises `provider_account` for a transient account error (the placement is retried),
    /// once per placement and provider code, not at every retry.
    async fn account_alert(&self, job: &ClaimedJob, reference: &str, error: &ProviderError) {
        let cause = account_cause(error);
        let alert = Alert::provider_account(reference, &cause, true, now_ms());
        let key = error
            .code()
            .map_or_else(|| "account".to_owned(), |c| c.to_string());
        tracing::error!(%reference, cause, "the provider refused the reseller's account");
        let jobs = self.alert_jobs(&alert);
        if let Err(e) = self.store.alert_once(job, &key, &jobs).await {
            tracing::error!(error = %e, "writing the provider_account alert failed");
        }
    }
}

/// The provider's code and what it means, for the `provider_account` alert.
fn account_cause(error: &ProviderError) -> String {
    match error.code() {
        Some(code) => format!("code {code}, {}", error.message()),
        None => error.message().to_owned(),
    }
}
