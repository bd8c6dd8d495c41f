//! The reconciliation sweep as an outbox job: leased like a delivery (so it survives a crash
//! and runs once across replicas), its lease extended while it pages, the next one scheduled
//! before it starts (so a failing or crashed sweep never stops the schedule).

use esim_courier_store::{duration_ms, now_ms, AttemptOutcome, ClaimedJob};

use crate::{Dispatcher, RetryPolicy};

/// Failed attempts of one sweep before it is dead-lettered (with a `dead_letter` alert): the
/// next interval's sweep covers the same window anyway.
const SWEEP_ATTEMPTS: u32 = 5;

impl Dispatcher {
    pub(crate) async fn sweep(&self, job: &ClaimedJob) {
        let Some((reconciler, schedule)) = &self.sweeps else {
            // This process has no provider configured: leave the sweep to a replica that has.
            let later = now_ms() + duration_ms(self.config.poll_interval);
            self.check_written(self.store.job_defer(job, later).await);
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
}
