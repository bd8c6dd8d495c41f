//! One job, one attempt: build the notification, call the notifier, record the outcome.

use std::time::Duration;

use esim_courier_core::{Alert, Audience, Notification, NotifyError, Receipt};
use esim_courier_store::{
    duration_ms, now_ms, Attempt, AttemptOutcome, ClaimedJob, CustomerWait, JobKind, NewJob,
};
use tokio_util::sync::CancellationToken;

use crate::{notification, Dispatcher, HookPoint, Registered, RetryPolicy};

/// Waiting jobs are re-checked at least this often even without a registration signal.
const WAITING_RECHECK: Duration = Duration::from_secs(3600);

impl Dispatcher {
    #[tracing::instrument(skip_all, fields(job = job.id, notifier = %job.notifier, order_no = job.order_no.as_deref().unwrap_or("-"), attempt = job.attempts))]
    pub(crate) async fn process(&self, mut job: ClaimedJob, shutdown: &CancellationToken) {
        if shutdown.is_cancelled() {
            self.release(&job).await;
            return;
        }
        match job.kind {
            JobKind::ReconcileSweep => return self.sweep(&job, shutdown).await,
            JobKind::ReconcileLookup => return self.lookup(&job, shutdown).await,
            JobKind::PlaceOrder => return self.place(&job, shutdown).await,
            JobKind::RetentionPurge => return self.purge(&job, shutdown).await,
            JobKind::OrderCompleted | JobKind::OrderFailed | JobKind::Alert => {}
        }
        let Some((registered, notification)) = self.prepare(&mut job).await else {
            return;
        };
        let started_at = now_ms();
        // Where a customer notification goes, as read at this claim: the attempt records it.
        let recipient = (registered.notifier.audience() == Audience::Customer)
            .then(|| notification.customer_address())
            .flatten()
            .map(|a| a.as_str().to_owned());
        match self
            .call(
                registered,
                &notification,
                std::slice::from_ref(&job),
                shutdown,
            )
            .await
        {
            Some(outcome) => {
                self.settle(
                    &job,
                    &registered.policy,
                    started_at,
                    recipient.as_deref(),
                    &outcome,
                )
                .await
            }
            None => self.release(&job).await,
        }
    }

    /// Everything before the call: the notifier, the job's order and customer, the
    /// notification. `None` when the job was settled here (dead, waiting, released). A job
    /// whose webhook the provider confirmed here is updated to count its attempts from now.
    pub(crate) async fn prepare(
        &self,
        job: &mut ClaimedJob,
    ) -> Option<(&Registered, Notification)> {
        if job.kind == JobKind::OrderCompleted && job.customer_erased_at.is_some() {
            // Its customer (or the address a re-send went to) was erased while an earlier
            // attempt was under way: never sent again, alone or in a digest. Whatever its
            // notifier's audience, as the erasure cancels every one of the order's
            // activation jobs not yet sent (and the order's codes are erased with it).
            tracing::info!(
                "the customer was erased during an earlier attempt; the email is cancelled"
            );
            let written = self.store.job_cancel_erased(job).await;
            self.check_written(written);
            return None;
        }
        let Some(registered) = self.notifiers.get(&job.notifier) else {
            let error = format!("notifier {:?} is not configured", job.notifier);
            self.dead(job, now_ms(), None, AttemptOutcome::Permanent, &error)
                .await;
            return None;
        };
        let ctx = match self.store.job_context(job).await {
            Ok(ctx) => ctx,
            // A stored value that no longer parses will not parse on a retry either.
            Err(e @ esim_courier_store::StoreError::Corrupt(_)) => {
                let error = format!("the job's order cannot be read: {e}");
                self.dead(job, now_ms(), None, AttemptOutcome::Permanent, &error)
                    .await;
                return None;
            }
            // Nor will one that does not decrypt, until an operator configures its key: the
            // job stops (retried from the dead letters) with a `decrypt_failed` alert.
            Err(e @ esim_courier_store::StoreError::Decrypt { .. }) => {
                let error = e.to_string();
                let alert =
                    Alert::decrypt_failed(job.order_no.as_deref(), &error, job.id, now_ms());
                self.dead_with_outcome(
                    job,
                    now_ms(),
                    None,
                    AttemptOutcome::Permanent,
                    &error,
                    alert,
                )
                .await;
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "loading the job's order failed; releasing it");
                self.release(job).await;
                return None;
            }
        };
        if registered.notifier.audience() == Audience::Customer
            && job.kind == JobKind::OrderCompleted
            && ctx.customer.is_none()
        {
            self.at(HookPoint::BeforeWaitingForCustomer, job).await;
            self.wait_for_customer(job).await;
            return None;
        }
        if registered.notifier.audience() == Audience::Customer
            && job.kind == JobKind::OrderCompleted
            && !self.verified(job, &ctx).await
        {
            return None;
        }
        match notification::build(job, &ctx) {
            Ok(n) => Some((registered, n)),
            Err(e) => {
                self.dead(
                    job,
                    now_ms(),
                    None,
                    AttemptOutcome::Permanent,
                    &e.to_string(),
                )
                .await;
                None
            }
        }
    }

    /// Calls the notifier with its timeout. `None` when shutdown's grace period ran out
    /// first (the caller releases the lease).
    ///
    /// While the call runs, the leases of `jobs` are renewed every third of the lease, so a
    /// slow but live delivery is never claimed by another worker (which would send it
    /// twice); only a dead worker's leases expire.
    pub(crate) async fn call(
        &self,
        registered: &Registered,
        notification: &Notification,
        jobs: &[ClaimedJob],
        shutdown: &CancellationToken,
    ) -> Option<Result<Receipt, NotifyError>> {
        let policy = &registered.policy;
        let lease = self.config.lease;
        let heartbeat = async {
            let mut tick = tokio::time::interval(lease / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                match self
                    .store
                    .extend_leases(jobs, now_ms() + duration_ms(lease))
                    .await
                {
                    Ok(held) if held < jobs.len() as u64 => {
                        tracing::warn!(
                            held,
                            jobs = jobs.len(),
                            "a lease was lost during the delivery"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the lease failed; retrying at the next beat")
                    }
                }
            }
        };
        tokio::select! {
            answered = tokio::time::timeout(policy.timeout, registered.notifier.notify(notification)) => Some(match answered {
                Ok(result) => result,
                Err(_) => Err(NotifyError::transient(format!("no answer within {:?}", policy.timeout))),
            }),
            () = heartbeat => None,
            () = self.grace_over(shutdown) => {
                tracing::warn!("shutting down: delivery still under way after the grace period; releasing its lease");
                None
            }
        }
    }

    /// Completes once shutdown was asked for and its grace period has passed: work still under
    /// way then is dropped and its job's lease released.
    pub(crate) async fn grace_over(&self, shutdown: &CancellationToken) {
        shutdown.cancelled().await;
        tokio::time::sleep(self.config.shutdown_grace).await;
    }

    /// Records what the notifier answered: done, retry later, or dead letter.
    pub(crate) async fn settle(
        &self,
        job: &ClaimedJob,
        policy: &RetryPolicy,
        started_at: i64,
        recipient: Option<&str>,
        outcome: &Result<Receipt, NotifyError>,
    ) {
        let attempt = self.attempt(started_at, recipient);
        let finished_at = attempt.finished_at;
        let written = match outcome {
            Ok(receipt) => {
                tracing::info!(
                    job = job.id,
                    order_no = job.order_no.as_deref().unwrap_or("-"),
                    latency_ms = finished_at - started_at,
                    "delivered"
                );
                let notifier = job.notifier.clone();
                metrics::counter!("esim_courier_deliveries_total", "notifier" => notifier.clone(), "outcome" => "delivered").increment(1);
                // From the webhook's commit (the job's creation) to the channel's acceptance.
                #[allow(clippy::cast_precision_loss)]
                let since_webhook = (finished_at - job.created_at).max(0) as f64 / 1000.0;
                metrics::histogram!("esim_courier_delivery_latency_seconds", "notifier" => notifier).record(since_webhook);
                self.store
                    .job_delivered_in(
                        job,
                        &attempt,
                        receipt.id.as_deref(),
                        receipt.locale.as_deref(),
                    )
                    .await
            }
            Err(e) => {
                let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
                // Counted from when the job could first be delivered: a registration that
                // came a day late, or an operator's retry of a dead letter, starts it anew.
                let age = finished_at - job.retries_since();
                let next = finished_at + duration_ms(policy.delay(attempts, e.retry_after()));
                let exhausted = attempts >= policy.max_attempts
                    || next - job.retries_since() > duration_ms(policy.max_age);
                if e.is_transient() && !exhausted {
                    tracing::warn!(job = job.id, error = %e, retry_in_ms = next - finished_at, "delivery failed; will retry");
                    metrics::counter!("esim_courier_deliveries_total", "notifier" => job.notifier.clone(), "outcome" => "retry").increment(1);
                    self.store.job_retry(job, &attempt, e.message(), next).await
                } else {
                    let (outcome, why) = if e.is_transient() {
                        (
                            AttemptOutcome::Transient,
                            format!(
                                "gave up after {attempts} attempts over {} s: {}",
                                age / 1000,
                                e.message()
                            ),
                        )
                    } else {
                        (AttemptOutcome::Permanent, e.message().to_owned())
                    };
                    self.dead(job, started_at, recipient, outcome, &why).await;
                    return;
                }
            }
        };
        self.check_written(written);
    }

    /// Dead-letters a job and, unless it is itself an alert, raises a dead-letter alert.
    pub(crate) async fn dead(
        &self,
        job: &ClaimedJob,
        started_at: i64,
        recipient: Option<&str>,
        outcome: AttemptOutcome,
        error: &str,
    ) {
        let alert = Alert::dead_letter(
            job.order_no.as_deref(),
            format!("{} to {} failed: {error}", describe(job.kind), job.notifier),
            job.id,
            now_ms(),
        );
        self.dead_with_outcome(job, started_at, recipient, outcome, error, alert)
            .await;
    }

    /// [`Self::dead`], raising `alert` instead of `dead_letter` (unless the job is itself an
    /// alert).
    pub(crate) async fn dead_with_outcome(
        &self,
        job: &ClaimedJob,
        started_at: i64,
        recipient: Option<&str>,
        outcome: AttemptOutcome,
        error: &str,
        alert: Alert,
    ) {
        let attempt = self.attempt(started_at, recipient);
        let finished_at = attempt.finished_at;
        metrics::counter!("esim_courier_deliveries_total", "notifier" => job.notifier.clone(), "outcome" => "dead").increment(1);
        metrics::counter!("esim_courier_dead_letters_total", "notifier" => job.notifier.clone())
            .increment(1);
        let alert_jobs = if job.kind == JobKind::Alert {
            // Never alert about an alert: that could loop. Log it loudly and count it.
            metrics::counter!("esim_courier_alerts_lost_total").increment(1);
            tracing::error!(
                error,
                "an operator alert could not be delivered and is dead-lettered"
            );
            None
        } else {
            tracing::error!(error, "delivery dead-lettered");
            Some(Alert {
                occurred_at_ms: finished_at,
                ..alert
            })
        };
        let jobs = alert_jobs.as_ref().map(|a| self.alert_jobs(a));
        let written = self
            .store
            .job_dead(job, &attempt, outcome, error, alert_jobs.as_ref().zip(jobs))
            .await;
        self.check_written(written);
    }

    /// Parks a customer job until its registration, alerting operators once
    /// `customer_wait` has passed. The store re-checks the registration as it parks, so one
    /// that committed after this job read its order releases the job at once instead.
    async fn wait_for_customer(&self, job: &ClaimedJob) {
        let now = now_ms();
        let deadline = job.created_at + duration_ms(self.config.customer_wait);
        let recheck = now + duration_ms(WAITING_RECHECK);
        let overdue = !job.customer_alerted && now >= deadline;
        let (recheck_at, alerts) = if job.customer_alerted {
            (recheck, Vec::new())
        } else if overdue {
            let alert =
                Alert::customer_unknown(job.order_no.as_deref(), self.config.customer_wait, now);
            (recheck, self.alert_jobs(&alert))
        } else {
            (deadline, Vec::new())
        };
        match self
            .store
            .job_wait_for_customer(job, recheck_at, alerts)
            .await
        {
            Ok(CustomerWait::Parked) if overdue => {
                tracing::warn!("customer never registered; operators alerted");
            }
            Ok(CustomerWait::Parked) => {
                tracing::info!("waiting for the customer's registration");
            }
            Ok(CustomerWait::CustomerArrived) => {
                tracing::info!("the customer was registered meanwhile; delivering now");
            }
            Ok(CustomerWait::CustomerErased) => {
                tracing::info!(
                    "the customer was erased during an earlier attempt; the email is cancelled"
                );
            }
            Ok(CustomerWait::LeaseLost) => self.check_written(Ok(false)),
            Err(e) => self.check_written(Err(e)),
        }
    }

    /// This worker's attempt that started at `started_at` and ends now.
    pub(crate) fn attempt<'a>(
        &'a self,
        started_at: i64,
        recipient: Option<&'a str>,
    ) -> Attempt<'a> {
        Attempt {
            worker: &self.config.worker_id,
            started_at,
            finished_at: now_ms(),
            recipient,
        }
    }

    pub(crate) async fn release(&self, job: &ClaimedJob) {
        let written = self.store.job_release(job).await;
        self.check_written(written);
    }

    pub(crate) fn alert_jobs(&self, alert: &Alert) -> Vec<NewJob> {
        NewJob::alerts(&self.routes, alert)
    }

    pub(crate) fn check_written(&self, written: Result<bool, esim_courier_store::StoreError>) {
        match written {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "the job's lease had expired and another worker took it; outcome not recorded"
            ),
            Err(e) => {
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "recording the job's outcome failed; it will be retried when its lease expires")
            }
        }
    }
}

fn describe(kind: JobKind) -> &'static str {
    match kind {
        JobKind::OrderCompleted => "the activation notification",
        JobKind::OrderFailed => "the failed-order notification",
        JobKind::Alert => "an alert",
        JobKind::ReconcileSweep => "a reconciliation sweep",
        JobKind::ReconcileLookup => "an order's lookup at the provider",
        JobKind::PlaceOrder => "an order's placement with the provider",
        JobKind::RetentionPurge => "the retention purge",
    }
}
