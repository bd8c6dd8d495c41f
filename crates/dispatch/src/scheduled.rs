//! Reconciliation's scheduled work as outbox jobs, leased like deliveries (so it survives a
//! crash and runs once across replicas):
//!
//! - the sweep: its lease extended while it pages, the next one scheduled before it starts
//!   (so a failing or crashed sweep never stops the schedule);
//! - the lookup of one known order: looks again at growing intervals while the provider has
//!   no result, and after `give_up_after` dead-letters itself with an `order_overdue` alert
//!   (retrying the dead letter resumes the lookups);
//! - the confirmation of a COMPLETED webhook before its customer email (`verify_webhooks`):
//!   its ICCID and activation code must be the provider's, or nothing is sent.

use esim_courier_core::{Alert, EventSource, OrderNo, OrderResult};
use esim_courier_store::{duration_ms, now_ms, AttemptOutcome, ClaimedJob, JobContext};
use tokio_util::sync::CancellationToken;

use crate::reconcile::Found;
use crate::{Dispatcher, RetryPolicy};

/// Failed attempts of one sweep before it is dead-lettered (with a `dead_letter` alert): the
/// next interval's sweep covers the same window anyway.
const SWEEP_ATTEMPTS: u32 = 5;

impl Dispatcher {
    pub(crate) async fn sweep(&self, job: &ClaimedJob, shutdown: &CancellationToken) {
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
        let run = reconciler.sweep(started_at - duration_ms(schedule.window), |_, _| {});
        let Some(result) = self.holding(job, shutdown, run).await else {
            return;
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
                let retry_after = match &e {
                    crate::reconcile::ReconcileError::Provider(e) => e.retry_after(),
                    crate::reconcile::ReconcileError::Store(_) => None,
                };
                self.retry_or_give_up(
                    job,
                    (started_at, retry_after),
                    &e.to_string(),
                    SWEEP_ATTEMPTS,
                    "the reconciliation sweep",
                )
                .await;
                return;
            }
        };
        self.check_written(written);
    }

    /// A failed run of periodic work (`what`) that started at `started_at`: retried with the
    /// default backoff, or after the `Retry-After` the provider asked for if longer, then
    /// after `max_attempts` dead-lettered (with a `dead_letter` alert); the next slot's run
    /// does the same work anyway.
    pub(crate) async fn retry_or_give_up(
        &self,
        job: &ClaimedJob,
        (started_at, retry_after): (i64, Option<std::time::Duration>),
        why: &str,
        max_attempts: u32,
        what: &str,
    ) {
        let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        if attempts >= max_attempts {
            tracing::error!(error = %why, attempts, "{what} keeps failing; giving it up");
            let why = format!("gave up after {attempts} attempts: {why}");
            self.dead(job, started_at, None, AttemptOutcome::Transient, &why)
                .await;
            return;
        }
        let retry = started_at + duration_ms(RetryPolicy::default().delay(attempts, retry_after));
        tracing::warn!(error = %why, retry_in_ms = retry - started_at, "{what} failed; will retry");
        let attempt = self.attempt(started_at, None);
        let written = self.store.job_retry(job, &attempt, why, retry).await;
        self.check_written(written);
    }

    /// Runs `work` for `job`, extending the job's lease every third of it meanwhile, so a
    /// long but live piece of work (a sweep paging, a slow provider) is never claimed by
    /// another worker; only a dead worker's lease expires.
    ///
    /// `None` when shutdown's grace period ran out first, as for a delivery ([`Self::call`]):
    /// the work is dropped and the job's lease released, so that the process stops within
    /// `shutdown_grace` and another worker resumes the job at once instead of after its lease.
    /// Each piece of this work is safe to run again: a sweep records what it finds through
    /// the intake, a lookup asks again, a purge erases what is due, a placement carries its
    /// idempotency key.
    pub(crate) async fn holding<T>(
        &self,
        job: &ClaimedJob,
        shutdown: &CancellationToken,
        work: impl std::future::Future<Output = T>,
    ) -> Option<T> {
        let lease_ms = duration_ms(self.config.lease);
        tokio::pin!(work);
        let stop = self.grace_over(shutdown);
        tokio::pin!(stop);
        let mut heartbeat = tokio::time::interval(self.config.lease / 3);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                result = &mut work => return Some(result),
                () = &mut stop => {
                    tracing::warn!(job = job.id, kind = job.kind.as_str(), "shutting down: the job's work still under way after the grace period; releasing its lease");
                    self.release(job).await;
                    return None;
                }
                _ = heartbeat.tick() => {
                    if let Err(e) = self.store.extend_leases(std::slice::from_ref(job), now_ms() + lease_ms).await {
                        tracing::warn!(job = job.id, error = %e, "extending the job's lease failed");
                    }
                }
            }
        }
    }

    /// A process without the provider (or with sweeps off) leaves the job to a replica that
    /// has it, looking again after a poll.
    pub(crate) async fn leave_to_another_replica(&self, job: &ClaimedJob) {
        let later = now_ms() + duration_ms(self.config.poll_interval);
        self.check_written(self.store.job_defer(job, later).await);
    }

    pub(crate) async fn lookup(&self, job: &ClaimedJob, shutdown: &CancellationToken) {
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
        // The webhook may have come since this lookup was scheduled: then nothing to ask. The
        // provider's turn and answer may take a while: held like a sweep's pages.
        let ask = async {
            match self.store.has_result(order_no.as_str()).await {
                Ok(true) => Ok(Found::AlreadyKnown),
                Ok(false) => reconciler.order(&order_no).await,
                Err(e) => Err(e.into()),
            }
        };
        let Some(found) = self.holding(job, shutdown, ask).await else {
            return;
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
        let lookup_no = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        if settings.gives_up_at(lookup_no) {
            let waited = started_at - job.created_at;
            tracing::warn!(order_no = %order_no, status = %still, "order overdue: no result from the webhook or the provider");
            metrics::counter!("esim_courier_orders_overdue_total").increment(1);
            let alert = Alert::order_overdue(
                order_no.as_str(),
                &still,
                settings.give_up_after,
                job.id,
                started_at,
            );
            let why = format!("no result after {} s: {still}", waited / 1000);
            self.give_up(job, started_at, &why, &alert).await;
            return;
        }
        let why = format!("no result yet: {still}");
        let next = self.again_later(job, settings, started_at, &why).await;
        tracing::info!(order_no = %order_no, status = %still, retry_in_ms = next - started_at, "no result yet; looking again later");
    }

    /// Whether a COMPLETED order's customer email may go out. With `verify_webhooks`, a
    /// webhook's ICCID and activation code must be those of the provider's record (a
    /// reconciled event is the provider's record already). A mismatch sets the webhook aside
    /// (never sent; `webhook_unverified`) and records the provider's own result instead; no
    /// record yet, or no answer, looks again until `give_up_after`, then alerts. Once
    /// confirmed, the job's delivery counts its attempts and retries from then (the rounds
    /// used its attempts as their clock) and is not confirmed again. `false` when the job was
    /// settled here.
    pub(crate) async fn verified(&self, job: &mut ClaimedJob, ctx: &JobContext) -> bool {
        let Some((reconciler, settings)) = &self.reconcile else {
            return true;
        };
        let Some(event) = ctx.event.as_ref().filter(|_| settings.verify_webhooks) else {
            return true;
        };
        if event.source == EventSource::Reconciliation || job.confirmed_at.is_some() {
            return true;
        }
        let started_at = now_ms();
        let order_no = event.order_no.as_str();
        let theirs = match reconciler.lookup(&event.order_no).await {
            Ok(Some(record)) => record,
            Ok(None) => {
                self.confirm_later(job, settings, "the provider does not know the order yet")
                    .await;
                return false;
            }
            Err(e) => {
                // The account (501, 502, 503, 506) or our signature (HTTP 401): only operators
                // can fix them. Other refusals wait their rounds and alert at the end.
                if e.is_about_the_account() || e.code() == Some(401) {
                    self.confirmation_refused(job, order_no, &e, settings).await;
                }
                self.confirm_later(
                    job,
                    settings,
                    &format!("the provider could not be asked ({e})"),
                )
                .await;
                return false;
            }
        };
        let Some(their_event) = &theirs.event else {
            let why = format!("the provider still says {}", theirs.status);
            self.confirm_later(job, settings, &why).await;
            return false;
        };
        let ours = event.activation_code.as_ref().map(|c| c.qr_text());
        let their_code = their_event.usable_activation_code().map(|c| c.qr_text());
        let differs = if their_event.result != OrderResult::Completed {
            Some(format!(
                "the provider says the order {}",
                their_event.result
            ))
        } else if their_event.iccid_display() != event.iccid {
            Some("its ICCID is not the provider's".to_owned())
        } else if ours != their_code {
            Some("its activation code is not the provider's".to_owned())
        } else {
            None
        };
        let Some(differs) = differs else {
            return match self.store.job_confirmed(job).await {
                Ok(held) => held,
                // The email is confirmed: send it. Only its retry budget was not moved, and a
                // later attempt asks the provider again.
                Err(e) => {
                    tracing::warn!(order_no, error = %e, "recording the provider's confirmation failed; delivering anyway");
                    true
                }
            };
        };
        // Never the codes themselves: what differs, and that nothing was sent.
        let reason = format!(
            "a COMPLETED webhook was not confirmed by the provider's order API: {differs}; no email was sent, the webhook is quarantined, and the provider's own result is recorded instead"
        );
        tracing::warn!(order_no, %differs, "webhook not confirmed by the provider; set aside");
        metrics::counter!("esim_courier_webhooks_unverified_total").increment(1);
        let alert = Alert::webhook_unverified(order_no, reason.clone(), started_at);
        let attempt = self.attempt(started_at, None);
        let written = self
            .store
            .unverify(job, &attempt, &reason, self.alert_jobs(&alert))
            .await;
        let set_aside = matches!(written, Ok(true));
        self.check_written(written);
        if set_aside {
            if let Err(e) = reconciler.record(&theirs).await {
                tracing::error!(order_no, error = %e, "recording the provider's result failed; a lookup or sweep will");
            }
        }
        false
    }

    /// The provider could not confirm a webhook yet: look again later, or after
    /// `give_up_after` dead-letter the job with a `webhook_unverified` alert (retrying the dead
    /// letter confirms again; nothing unconfirmed is ever sent).
    async fn confirm_later(
        &self,
        job: &ClaimedJob,
        settings: &crate::reconcile::ReconcileSettings,
        why: &str,
    ) {
        let started_at = now_ms();
        let order_no = job.order_no.as_deref().unwrap_or("-");
        if settings.gives_up_at(u32::try_from(job.attempts).unwrap_or(u32::MAX)) {
            let reason = format!(
                "the activation email waited {} minutes for the provider to confirm the webhook and was not sent: {why}",
                settings.give_up_after.as_secs() / 60
            );
            let alert = Alert::webhook_unverified(order_no, reason.clone(), started_at);
            self.give_up(job, started_at, &reason, &alert).await;
            return;
        }
        let waiting = format!("waiting for the provider to confirm: {why}");
        self.again_later(job, settings, started_at, &waiting).await;
        tracing::info!(
            order_no,
            why,
            "waiting for the provider to confirm the webhook"
        );
    }

    /// Raises `provider_account`, once per job and cause, when the provider refuses to confirm
    /// a webhook for a reason operators must fix (the reseller's account, our signature):
    /// asking again cannot help until they do, and without this the email would wait the
    /// whole of `give_up_after` before anyone heard. The confirmation is still asked for
    /// until then, so that the emails held go out by themselves once it is fixed.
    async fn confirmation_refused(
        &self,
        job: &ClaimedJob,
        order_no: &str,
        error: &esim_courier_core::ProviderError,
        settings: &crate::reconcile::ReconcileSettings,
    ) {
        let cause = crate::placement::account_cause(error);
        tracing::error!(
            order_no,
            cause,
            "the provider refused to confirm a webhook; its activation email waits"
        );
        let alert = Alert::confirmation_refused(order_no, &cause, settings.give_up_after, now_ms());
        let key = error
            .code()
            .map_or_else(|| "confirm".to_owned(), |c| format!("confirm-{c}"));
        let jobs = self.alert_jobs(&alert);
        if let Err(e) = self.store.alert_once(job, &key, &jobs).await {
            tracing::error!(error = %e, "writing the provider_account alert failed");
        }
    }

    /// Dead-letters `job` with `alert` in place of the dead-letter alert: retrying the dead
    /// letter resumes the work.
    async fn give_up(&self, job: &ClaimedJob, started_at: i64, why: &str, alert: &Alert) {
        let attempt = self.attempt(started_at, None);
        let jobs = self.alert_jobs(alert);
        let written = self
            .store
            .job_dead(
                job,
                &attempt,
                AttemptOutcome::Transient,
                why,
                Some((alert, jobs)),
            )
            .await;
        self.check_written(written);
    }

    /// Asks again after the lookup interval, doubled per attempt; returns when (Unix ms).
    async fn again_later(
        &self,
        job: &ClaimedJob,
        settings: &crate::reconcile::ReconcileSettings,
        started_at: i64,
        why: &str,
    ) -> i64 {
        let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        let next = started_at + duration_ms(settings.next_lookup_in(attempts));
        let attempt = self.attempt(started_at, None);
        let written = self.store.job_retry(job, &attempt, why, next).await;
        self.check_written(written);
        next
    }
}
