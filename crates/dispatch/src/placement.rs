//! The placement of an order with the provider, as an outbox job (leased, crash-safe, once
//! across replicas).
//!
//! The call carries `idempotentKey = reference`, so a retry (after a transient error, or
//! after a worker died between the provider's answer and the commit) answers the first
//! order's number and never buys a second eSIM. The answer binds the customer to that
//! number in the job's own transaction ([`Store::placement_placed`]).
//!
//! - transient errors retry with backoff for up to 24 hours ([`PLACEMENT_RETRY`]); then the
//!   placement fails with `placement_failed`, saying the provider may have placed it
//!   (retrying the dead letter asks again with the same key);
//! - account errors (the provider's 501/502/503/506) raise `provider_account` at once: a
//!   transient one (506) once per placement and code while the placement retries, a
//!   permanent one (501/502/503) as the placement stops, beside its `placement_failed`;
//! - permanent errors fail the placement with the provider's message and raise
//!   `placement_failed`.
//!
//! [`Store::placement_placed`]: esim_courier_store::Store::placement_placed

use esim_courier_core::{Alert, PlaceOrder, ProviderError};
use esim_courier_store::{
    duration_ms, now_ms, Attempt, AttemptOutcome, ClaimedJob, PlacementStatus,
};
use tokio_util::sync::CancellationToken;

use crate::{Dispatcher, RetryPolicy};

/// How long a placement is retried: 1 s doubling to 15 minutes, for up to 24 hours, so a
/// provider outage or an empty balance (506) fixed within a day needs nobody.
const PLACEMENT_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 110,
    max_age: std::time::Duration::from_secs(24 * 3600),
    initial_delay: std::time::Duration::from_secs(1),
    max_delay: std::time::Duration::from_secs(15 * 60),
    timeout: std::time::Duration::from_secs(30),
};

impl Dispatcher {
    pub(crate) async fn place(&self, job: &ClaimedJob, shutdown: &CancellationToken) {
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
            // A stored value that does not decrypt or parse will not on a retry either.
            Err(e @ esim_courier_store::StoreError::Decrypt { .. }) => {
                let error = e.to_string();
                let alert = Alert::decrypt_failed(None, &error, job.id, now_ms());
                self.dead_with_outcome(
                    job,
                    started_at,
                    None,
                    AttemptOutcome::Permanent,
                    &error,
                    alert,
                )
                .await;
                return;
            }
            Err(e @ esim_courier_store::StoreError::Corrupt(_)) => {
                let why = format!("the placement cannot be read: {e}");
                self.dead(job, started_at, None, AttemptOutcome::Permanent, &why)
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
        let Some(customer) = &placement.customer else {
            // Erased while it waited (`customers forget`): nobody to place it for. It fails as
            // any placement that stops, so the shop's GET and the operators' alert say so. The
            // provider was never asked unless an earlier attempt of it was.
            let why = "its customer's data was erased before it was placed";
            let never_asked = job.attempts == 1 && job.retry_from.is_none();
            let alert = Alert::placement_failed(&reference, why, never_asked, job.id, started_at);
            let attempt = self.attempt(started_at, None);
            self.placement_stops(job, &attempt, (AttemptOutcome::Permanent, why), &[alert])
                .await;
            return;
        };
        let order = PlaceOrder {
            reference: reference.clone(),
            package_code: placement.package_code.clone(),
            email: customer.email.clone(),
        };
        let Some(answer) = self.holding(job, shutdown, reconciler.place(&order)).await else {
            return;
        };
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
        let account = error.is_about_the_account();
        if account && error.is_transient() {
            self.account_alert(job, &reference, &error).await;
        }
        let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        let next = started_at + duration_ms(PLACEMENT_RETRY.delay(attempts, error.retry_after()));
        let exhausted = attempts >= PLACEMENT_RETRY.max_attempts
            || next - job.retries_since() > duration_ms(PLACEMENT_RETRY.max_age);
        if error.is_transient() && !exhausted {
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
        // Only the provider's own refusal (a permanent error with its code) says for sure that
        // nothing was placed; a call that kept failing, or an answer we could not read, may
        // have placed it.
        let refused = !error.is_transient() && error.code().is_some();
        tracing::error!(%reference, error = %error, "placing the order failed for good");
        let mut alerts = Vec::new();
        if account && !error.is_transient() {
            let cause = account_cause(&error);
            alerts.push(Alert::provider_account(
                &reference, &cause, false, job.id, started_at,
            ));
        }
        alerts.push(Alert::placement_failed(
            &reference, &why, refused, job.id, started_at,
        ));
        self.placement_stops(job, &attempt, (outcome, &why), &alerts)
            .await;
    }

    /// The placement fails for good (`outcome`, `why`), raising `alerts`.
    async fn placement_stops(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        (outcome, why): (AttemptOutcome, &str),
        alerts: &[Alert],
    ) {
        let alert_jobs: Vec<_> = alerts.iter().map(|a| self.alert_jobs(a)).collect();
        let written = self
            .store
            .placement_failed(job, attempt, (outcome, why), &alert_jobs)
            .await;
        if matches!(written, Ok(true)) {
            metrics::counter!("esim_courier_placements_total", "outcome" => "failed").increment(1);
        }
        self.check_written(written);
    }

    /// Raises `provider_account` for a transient account error (the placement is retried),
    /// once per placement and provider code, not at every retry.
    async fn account_alert(&self, job: &ClaimedJob, reference: &str, error: &ProviderError) {
        let cause = account_cause(error);
        let alert = Alert::provider_account(reference, &cause, true, job.id, now_ms());
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
pub(crate) fn account_cause(error: &ProviderError) -> String {
    match error.code() {
        Some(code) => format!("code {code}, {}", error.message()),
        None => error.message().to_owned(),
    }
}
