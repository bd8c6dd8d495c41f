//! The retention purge as a scheduled outbox job: leased like a delivery, so it runs once
//! across replicas and survives a crash; the next one is scheduled before it starts.

use esim_courier_store::{duration_ms, now_ms, ClaimedJob, Retention};
use tokio_util::sync::CancellationToken;

use crate::Dispatcher;

/// What the purge keeps, and how often it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// The periods.
    pub retention: Retention,
    /// Between two purges.
    pub interval: std::time::Duration,
}

impl RetentionSettings {
    /// The purge slot `now_ms` falls in (the last multiple of the interval at or before it):
    /// every replica computes the same one, so one job per slot is scheduled between them.
    pub fn slot(&self, now_ms: i64) -> i64 {
        let interval = duration_ms(self.interval).max(1);
        now_ms - now_ms.rem_euclid(interval)
    }
}

/// Failed attempts of one purge before it is dead-lettered: the next slot's purge does the
/// same work anyway.
const PURGE_ATTEMPTS: u32 = 5;

impl Dispatcher {
    pub(crate) async fn purge(&self, job: &ClaimedJob, shutdown: &CancellationToken) {
        let Some(settings) = self.retention else {
            self.leave_to_another_replica(job).await;
            return;
        };
        let next = settings.slot(now_ms()) + duration_ms(settings.interval);
        if let Err(e) = self.store.schedule_purge(next).await {
            tracing::error!(error = %e, "scheduling the next retention purge failed; the next start schedules it");
        }
        let started_at = now_ms();
        let Some(result) = self
            .holding(
                job,
                shutdown,
                self.store.purge(&settings.retention, started_at),
            )
            .await
        else {
            return;
        };
        let attempt = self.attempt(started_at, None);
        let written = match result {
            Ok(erased) => {
                tracing::info!(
                    customers = erased.customers,
                    codes = erased.codes,
                    bodies = erased.bodies,
                    recipients = erased.recipients,
                    placements = erased.placements,
                    took_ms = now_ms() - started_at,
                    "retention purge done"
                );
                let receipt = format!("erased {erased}");
                self.store
                    .job_delivered(job, &attempt, Some(&receipt))
                    .await
            }
            Err(e) => {
                self.retry_or_give_up(
                    job,
                    (started_at, None),
                    &e.to_string(),
                    PURGE_ATTEMPTS,
                    "the retention purge",
                )
                .await;
                return;
            }
        };
        self.check_written(written);
    }
}
