//! The outbox dispatcher: turns committed outbox jobs into notifier calls, reliably.
//!
//! - Claims are leases, committed before any network call; a job whose worker died is
//!   claimed again when its lease expires.
//! - Woken by the store when jobs are committed in this process, so a webhook reaches its
//!   notifier without a polling delay; a slow poll remains as a safety net (other replicas,
//!   the CLI).
//! - Transient errors are retried with exponential backoff and jitter, honouring
//!   `retry_after`; permanent errors and exhausted jobs become dead letters and raise an
//!   operator alert. An alert that cannot be delivered is logged and counted, never re-alerted.
//! - On shutdown it stops claiming, lets deliveries under way finish, and releases the rest.

mod backoff;
mod group;
mod job;
mod notification;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use esim_courier_core::{Notifier, Routes};
use esim_courier_store::{duration_ms, now_ms, ClaimedJob, Store};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub use backoff::RetryPolicy;

/// How the dispatcher works.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// This worker's name in leases and the attempt log.
    pub worker_id: String,
    /// How long a claim holds a job. Longer than any notifier's timeout.
    pub lease: Duration,
    /// Deliveries under way at once.
    pub concurrency: usize,
    /// The safety-net poll, for jobs committed by other processes.
    pub poll_interval: Duration,
    /// How long a customer job waits for its registration before operators are alerted.
    pub customer_wait: Duration,
    /// On shutdown, how long deliveries under way may still take; past it they are
    /// abandoned and their leases released, so a restart need not wait for them to expire.
    pub shutdown_grace: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            worker_id: default_worker_id(),
            lease: Duration::from_secs(60),
            concurrency: 16,
            poll_interval: Duration::from_secs(5),
            customer_wait: Duration::from_secs(30 * 60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// `<pid>-<random>`: unique per process, readable in the attempt log.
pub fn default_worker_id() -> String {
    format!("worker-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// A notifier, its retry policy and its grouping window.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The plugin.
    pub notifier: Arc<dyn Notifier>,
    /// When to retry and when to give up.
    pub policy: RetryPolicy,
    /// Operator notifiers: notifications within this window go out as one digest.
    /// `None` sends each on its own (always so for customer notifiers).
    pub group_window: Option<Duration>,
}

/// The dispatcher. Build one per process, then [`Dispatcher::run`] it.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    notifiers: HashMap<String, Registered>,
    routes: Routes,
    config: DispatcherConfig,
    /// Per grouping notifier: until when its current window is open (Unix ms).
    windows: std::sync::Mutex<HashMap<String, i64>>,
}

impl Dispatcher {
    /// A dispatcher over `store`, calling `notifiers` (by configured name), raising alerts
    /// along `routes`.
    pub fn new(
        store: Store,
        notifiers: HashMap<String, Registered>,
        routes: Routes,
        config: DispatcherConfig,
    ) -> Self {
        Self {
            store,
            notifiers,
            routes,
            config,
            windows: std::sync::Mutex::default(),
        }
    }

    /// Runs until `shutdown` is cancelled, then lets deliveries under way finish and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let concurrency = this.config.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let wake = this.store.jobs_changed();
        tracing::info!(worker = %this.config.worker_id, concurrency, "dispatcher started");
        loop {
            let first = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                () = shutdown.cancelled() => break,
            };
            // Registered before claiming, so a commit between the claim and the wait still
            // wakes us.
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let want = 1 + permits.available_permits();
            let lease_ms = duration_ms(this.config.lease);
            let jobs = match this
                .store
                .claim(&this.config.worker_id, lease_ms, want as i64)
                .await
            {
                Ok(jobs) => jobs,
                Err(e) => {
                    metrics::counter!("esim_courier_store_errors_total", "component" => "dispatcher").increment(1);
                    tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "claiming outbox jobs failed; retrying in 1 s");
                    drop(first);
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {},
                        () = shutdown.cancelled() => break,
                    }
                    continue;
                }
            };
            let claimed = jobs.len();
            let mut first = Some(first);
            // Jobs of grouping notifiers go out together, one task per notifier.
            let mut groups: HashMap<String, Vec<ClaimedJob>> = HashMap::new();
            let mut singles = Vec::new();
            for job in jobs {
                if this
                    .notifiers
                    .get(&job.notifier)
                    .is_some_and(|r| r.group_window.is_some())
                {
                    groups.entry(job.notifier.clone()).or_default().push(job);
                } else {
                    singles.push(job);
                }
            }
            for (notifier, jobs) in groups {
                let Some(permit) = this.permit(&permits, &mut first).await else {
                    break;
                };
                let this = Arc::clone(&this);
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    this.process_group(notifier, jobs, &shutdown).await;
                    drop(permit);
                });
            }
            for job in singles {
                let Some(permit) = this.permit(&permits, &mut first).await else {
                    break;
                };
                let this = Arc::clone(&this);
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    this.process(job, &shutdown).await;
                    drop(permit);
                });
            }
            drop(first);
            if claimed < want {
                let idle = this.idle_for().await;
                tokio::select! {
                    () = &mut woken => {},
                    () = tokio::time::sleep(idle) => {},
                    () = shutdown.cancelled() => break,
                }
            }
        }
        // Wait for deliveries under way; jobs not yet started release themselves.
        let _all = permits.acquire_many(concurrency as u32).await;
        tracing::info!(worker = %this.config.worker_id, "dispatcher stopped");
    }

    /// How long to sleep when nothing is due: until the next job falls due, at most the poll
    /// interval.
    async fn idle_for(&self) -> Duration {
        let poll = self.config.poll_interval;
        match self.store.next_due_at().await {
            Ok(Some(due)) => {
                let wait = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
                Duration::from_millis(wait).min(poll)
            }
            Ok(None) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "reading the next due job failed");
                poll
            }
        }
    }

    /// The permit taken before claiming, or a new one.
    async fn permit(
        &self,
        permits: &Arc<Semaphore>,
        first: &mut Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match first.take() {
            Some(p) => Some(p),
            None => Arc::clone(permits).acquire_owned().await.ok(),
        }
    }
}
