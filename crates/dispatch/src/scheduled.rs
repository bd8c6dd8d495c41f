//! Reconciliation's scheduled work as outbox jobs, leased like deliveries (so it survives a
//! crash and runs once across replicas):
//!
//! - the sweep: its lease extended while it pages, the next one scheduled before it starts
//!   (so a failing or crashed sweep never stops the schedule);
//! - the lookup of one known order: looks again at growing intervals while the provider has
//!   no result, and after `give_up_after` dead-letters itself with an `order_overdue` alert
//!   (retrying the dead letter resumes the lookups).

use esim_courier_core::{Alert, OrderNo};
use esim_courier_store::{duration_ms, now_ms, AttemptOutcome, ClaimedJob};

use crate::reconcile::Found;
use crate::{Dispatcher, RetryPolicy};

/// Failed attempts of one sweep before it is dead-lettered (with a `dead_letter` alert): the
/// next interval's sweep covers the same window anyway.
const SWEEP_ATTEMPTS: u32 = 5;

impl Dispatcher {
    pub(crate) async fn sweep(&self, job: &ClaimedJob) {
        let Some((reconciler, schedule)) = self
            .reconcile
            .as_ref()
            .and_then(|(r, settings)| Some((r, settings.sweep?)))
        else {
            self.leave_to_another_replica(job).await;
            return;
        };
        let next = schedule.slot(now_ms()) + duration_ms(schedule.interval);
        if let Err(e) = self.store.schedule_sweep(next).await {
            tracing::error!(error = %e, "scheduling the next reconciliation sweep failed; the next start schedules it");
        }
        let started_at = now_ms();
        let lease_ms = duration_ms(self.config.lease);
        let run = reconciler.sweep(started_at - duration_ms(schedule.window), |_, _| {});
        tokio::pin!(run);
        let mut heartbeat = tokio::time::interval(self.config.lease / 3);
        heartbeat.tick().await;
        let result = loop {
            tokio::select! {
                result = &mut run => break result,
                _ = heartbeat.tick() => {
                    if let Err(e) = self.store.extend_leases(std::slice::from_ref(job), now_ms() + lease_ms).await {
                        tracing::warn!(error = %e, "extending the sweep's lease failed");
                    }
                }
            }
        };
        let attempt = self.attempt(started_at, None);
        let written = match result {
            Ok(report) => {
                tracing::info!(
                    pages = report.pages,
                    orders = report.orders,
                    recovered = report.recovered,
                    conflicts = report.conflicts,
                    unfinished = report.unfinished,
                    took_ms = now_ms() - started_at,
                    "reconciliation sweep done"
                );
                let receipt = format!(
                    "swept {} orders in {} pages: {} recovered",
                    report.orders, report.pages, report.recovered
                );
                self.store
                    .job_delivered(job, &attempt, Some(&receipt))
                    .await
            }
            Err(e) => {
                let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
                let why = e.to_string();
                if attempts >= SWEEP_ATTEMPTS {
                    tracing::error!(error = %why, attempts, "the reconciliation sweep keeps failing; giving it up");
                    let why = format!("gave up after {attempts} attempts: {why}");
                    self.dead(job, started_at, None, AttemptOutcome::Transient, &why)
                        .await;
                    return;
                }
                let retry = started_at + duration_ms(RetryPolicy::default().delay(attempts, None));
                tracing::warn!(error = %why, retry_in_ms = retry - started_at, "the reconciliation sweep failed; will retry");
                self.store.job_retry(job, &attempt, &why, retry).await
            }
        };
        self.check_written(written);
    }

    /// A process without the provider (or with sweeps off) leaves the job to a replica that
    /// has it, looking again after a poll.
    async fn leave_to_another_replica(&self, job: &ClaimedJob) {
        let later = now_ms() + duration_ms(self.config.poll_interval);
        self.check_written(self.store.job_defer(job, later).await);
    }

    pub(crate) async fn lookup(&self, job: &ClaimedJob) {
        let Some((reconciler, settings)) = &self.reconcile else {
            self.leave_to_another_replica(job).await;
            return;
        };
        let started_at = now_ms();
        let order_no = match job.order_no.as_deref().map(OrderNo::parse) {
            Some(Ok(order_no)) => order_no,
            _ => {
                let why = "the lookup job names no usable order";
                self.dead(job, started_at, None, AttemptOutcome::Permanent, why)
                    .await;
                return;
            }
        };
        // The webhook may have come since this lookup was scheduled: then nothing to ask.
        let found = match self.store.has_result(order_no.as_str()).await {
            Ok(true) => Ok(Found::AlreadyKnown),
            Ok(false) => reconciler.order(&order_no).await,
            Err(e) => Err(e.into()),
        };
        let attempt = self.attempt(started_at, None);
        let still = match found {
            Ok(Found::Recovered | Found::AlreadyKnown | Found::Conflict) => {
                let receipt = match found {
                    Ok(Found::Recovered) => "recovered from the provider",
                    Ok(Found::Conflict) => "the provider's result contradicts the record",
                    _ => "the result was already on record",
                };
                let written = self.store.job_delivered(job, &attempt, Some(receipt)).await;
                self.check_written(written);
                return;
            }
            Ok(Found::Unfinished(status)) => status.to_string(),
            Ok(Found::NotAtProvider) => "it does not know the order".to_owned(),
            Err(e) => format!("it could not be asked ({e})"),
        };
        let waited = started_at - job.created_at;
        if waited >= duration_ms(settings.give_up_after) {
            tracing::warn!(order_no = %order_no, status = %still, "order overdue: no result from the webhook or the provider");
            metrics::counter!("esim_courier_orders_overdue_total").increment(1);
            let alert = Alert::order_overdue(
                order_no.as_str(),
                &still,
                settings.give_up_after,
                job.id,
                started_at,
            );
            let jobs = self.alert_jobs(&alert);
            let why = format!("no result after {} s: {still}", waited / 1000);
            let written = self
                .store
                .job_dead(
                    job,
                    &attempt,
                    AttemptOutcome::Transient,
                    &why,
                    Some((&alert, jobs)),
                )
                .await;
            self.check_written(written);
            return;
        }
        let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        let next = started_at + duration_ms(settings.next_lookup_in(attempts));
        tracing::info!(order_no = %order_no, status = %still, retry_in_ms = next - started_at, "no result yet; looking again later");
        let why = format!("no result yet: {still}");
        let written = self.store.job_retry(job, &attempt, &why, next).await;
        self.check_written(written);
    }
}
