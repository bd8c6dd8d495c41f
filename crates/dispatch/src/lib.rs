//! The outbox dispatcher: turns committed outbox jobs into notifier calls, reliably.
//!
//! - Claims are leases, committed before any network call; a job whose worker died is
//!   claimed again when its lease expires.
//! - Woken by the store when jobs are committed in this process, so a webhook reaches its
//!   notifier without a polling delay (at most 5 ms later while jobs stream in, see
//!   `claim_pause`); a slow poll remains as a safety net (other replicas, the CLI).
//! - Transient errors are retried with exponential backoff and jitter, honouring
//!   `retry_after`; permanent errors and exhausted jobs become dead letters and raise an
//!   operator alert. An alert that cannot be delivered is logged and counted, never re-alerted.
//! - On shutdown it stops claiming, lets deliveries under way finish, and releases the rest.

mod backoff;
mod group;
mod job;
mod notification;
mod placement;
pub mod reconcile;
mod retention;
mod scheduled;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use esim_courier_core::{Notifier, Routes};
use esim_courier_store::{duration_ms, now_ms, ClaimedJob, DueClaim, JobKind, JobState, Store};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// While a backlog lasts, how long a claim waits for more deliveries to finish so that it
/// leases several jobs at once (see [`Dispatcher::run`]).
const CLAIM_LINGER: Duration = Duration::from_millis(2);

/// Without a backlog, how soon after a claim that leased more than one job the next claim
/// may go (see [`claim_pause`]).
const CLAIM_SPACING: Duration = Duration::from_millis(5);

pub use backoff::RetryPolicy;
pub use retention::RetentionSettings;

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

/// A point in a job's life where a test can act between two steps, deterministically
/// instead of by timing (see [`Dispatcher::with_hook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HookPoint {
    /// A customer job found its order without a registration and is about to park itself
    /// until one comes (the park re-checks inside its transaction).
    BeforeWaitingForCustomer,
}

/// Called at each [`HookPoint`] with the job concerned; the job goes on when the returned
/// future completes.
pub type Hook =
    Arc<dyn Fn(HookPoint, &ClaimedJob) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The dispatcher. Build one per process, then [`Dispatcher::run`] it.
#[derive(Debug)]
pub struct Dispatcher {
    store: Store,
    notifiers: HashMap<String, Registered>,
    routes: Routes,
    config: DispatcherConfig,
    /// Per grouping notifier: until when its current window is open (Unix ms).
    windows: std::sync::Mutex<HashMap<String, i64>>,
    hook: Hooked,
    /// Runs the reconciliation jobs (sweeps, lookups), when a provider is configured.
    reconcile: Option<(reconcile::Reconciler, reconcile::ReconcileSettings)>,
    /// Runs the retention purge, when `[retention]` keeps anything for a limited time.
    retention: Option<RetentionSettings>,
}

/// The optional hook, shown in `Debug` only as present or not.
#[derive(Default)]
struct Hooked(Option<Hook>);

impl std::fmt::Debug for Hooked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(hook)"
        } else {
            "None"
        })
    }
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
            hook: Hooked::default(),
            reconcile: None,
            retention: None,
        }
    }

    /// Runs the retention purge jobs with `settings`. Without it, such a job is left for a
    /// replica that has it.
    #[must_use]
    pub fn with_retention(mut self, settings: RetentionSettings) -> Self {
        self.retention = Some(settings);
        self
    }

    /// Runs the reconciliation jobs (sweeps, lookups of known orders) with `reconciler`
    /// (see [`reconcile::ReconcileSettings`]). Without it, such a job is left for a replica
    /// that has one.
    #[must_use]
    pub fn with_reconciler(
        mut self,
        reconciler: reconcile::Reconciler,
        settings: reconcile::ReconcileSettings,
    ) -> Self {
        self.reconcile = Some((reconciler, settings));
        self
    }

    /// Calls `hook` at each [`HookPoint`] of every job: for tests that must drive one exact
    /// interleaving (e.g. a registration committing while a job decides to wait for it).
    #[must_use]
    pub fn with_hook(mut self, hook: Hook) -> Self {
        self.hook = Hooked(Some(hook));
        self
    }

    pub(crate) async fn at(&self, point: HookPoint, job: &ClaimedJob) {
        if let Some(hook) = &self.hook.0 {
            hook(point, job).await;
        }
    }

    /// Delivers every job that is due, until none is due and none is being delivered (by
    /// this or any other worker): run-until-idle, so a test proves "nothing more arrives"
    /// without sleeping. Jobs due later (parked for a registration, a retry's backoff, a
    /// grouping window) are left for their time. Returns how many jobs it claimed.
    pub async fn drain(&self) -> usize {
        let never = CancellationToken::new();
        let mut claimed = 0;
        loop {
            let jobs = match self
                .store
                .claim(
                    &self.config.worker_id,
                    duration_ms(self.config.lease),
                    i64::try_from(self.config.concurrency.max(1)).unwrap_or(1),
                )
                .await
            {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming while draining failed; trying again");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            if jobs.is_empty() {
                if self.idle().await {
                    return claimed;
                }
                // Another worker is delivering: wait for it to record its outcome.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            claimed += jobs.len();
            let (groups, singles) = self.split(jobs);
            for (notifier, jobs) in groups {
                self.process_group(notifier, jobs, &never).await;
            }
            for job in singles {
                self.process(job, &never).await;
            }
        }
    }

    /// Whether no job is due now and none is in flight.
    async fn idle(&self) -> bool {
        let in_flight = match self.store.job_counts().await {
            Ok(counts) => counts
                .iter()
                .any(|(state, n)| *state == JobState::InFlight && *n > 0),
            Err(_) => return false,
        };
        !in_flight
            && matches!(self.store.next_due_at().await, Ok(due) if due.is_none_or(|d| d > now_ms()))
    }

    /// Claimed jobs by how they go out: grouping notifiers' notifications together, one list
    /// per notifier; the others one by one. Scheduled work (a sweep, a lookup, a placement, a
    /// purge) is never a notifier's, whatever its `notifier` column says: a notifier
    /// configured under that name must not take it.
    fn split(&self, jobs: Vec<ClaimedJob>) -> (HashMap<String, Vec<ClaimedJob>>, Vec<ClaimedJob>) {
        let mut groups: HashMap<String, Vec<ClaimedJob>> = HashMap::new();
        let mut singles = Vec::new();
        for job in jobs {
            let notification = matches!(
                job.kind,
                JobKind::OrderCompleted | JobKind::OrderFailed | JobKind::Alert
            );
            if notification
                && self
                    .notifiers
                    .get(&job.notifier)
                    .is_some_and(|r| r.group_window.is_some())
            {
                groups.entry(job.notifier.clone()).or_default().push(job);
            } else {
                singles.push(job);
            }
        }
        (groups, singles)
    }

    /// Runs until `shutdown` is cancelled, then lets deliveries under way finish and returns.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let this = self;
        let concurrency = this.config.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let wake = this.store.jobs_changed();
        tracing::info!(worker = %this.config.worker_id, concurrency, "dispatcher started");
        // Whether the last claim found as many due jobs as it asked for: a backlog.
        let mut backlog = false;
        // When the last claim went, and how many jobs it leased.
        let mut last_claim: Option<(tokio::time::Instant, usize)> = None;
        loop {
            let first = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                () = shutdown.cancelled() => break,
            };
            let wait_for = slots_to_wait_for(backlog, permits.available_permits() + 1, concurrency);
            if wait_for > 0 {
                if let Ok(Ok(free)) =
                    tokio::time::timeout(CLAIM_LINGER, permits.acquire_many(wait_for)).await
                {
                    // Given back at once: they were only waited for, and the claim below asks
                    // for as many jobs as there are free slots.
                    drop(free);
                }
            }
            if let Some(pause) =
                last_claim.and_then(|(at, leased)| claim_pause(backlog, leased, at.elapsed()))
            {
                tokio::select! {
                    () = tokio::time::sleep(pause) => {},
                    () = shutdown.cancelled() => break,
                }
            }
            // Registered before claiming, so a commit between the claim and the wait still
            // wakes us.
            let woken = wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();

            let want = 1 + permits.available_permits();
            let started = tokio::time::Instant::now();
            let lease_ms = duration_ms(this.config.lease);
            let DueClaim { jobs, next_due_at } = match this
                .store
                .claim_due(&this.config.worker_id, lease_ms, want as i64)
                .await
            {
                Ok(claim) => claim,
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
            last_claim = Some((started, claimed));
            backlog = claimed == want;
            let mut first = Some(first);
            // Jobs of grouping notifiers go out together, one task per notifier.
            let (groups, singles) = this.split(jobs);
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
                let idle = this.idle_for(next_due_at);
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

    /// How long to sleep when nothing is due: until the next job falls due (as the claim
    /// read it), at most the poll interval.
    fn idle_for(&self, next_due_at: Option<i64>) -> Duration {
        let poll = self.config.poll_interval;
        match next_due_at {
            Some(due) => {
                let wait = u64::try_from(due.saturating_sub(now_ms())).unwrap_or(0);
                Duration::from_millis(wait).min(poll)
            }
            None => poll,
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

/// How many delivery slots, besides the one it holds, a claim waits for (at most
/// [`CLAIM_LINGER`]) before leasing jobs, when `free` of the `concurrency` slots are free.
///
/// While a backlog lasts (the last claim found as many due jobs as it asked for), each
/// delivery that finishes would otherwise start a claim of one job: one statement, and on
/// PostgreSQL one commit, per delivery. Waiting a moment for half the slots to free lets
/// one claim lease that many jobs together. Measured in BENCHMARKS.md ("Sustained intake"): the
/// dispatcher drains faster on both engines, and leaves the database more of its time for
/// the webhooks arriving meanwhile. Without a backlog a claim goes at once, so a job that
/// falls due is not held up.
fn slots_to_wait_for(backlog: bool, free: usize, concurrency: usize) -> u32 {
    let half = concurrency / 2;
    if !backlog || half < 2 || free >= half {
        return 0;
    }
    u32::try_from(half - 1).unwrap_or(u32::MAX)
}

/// Without a backlog, how long a claim waits before leasing, when the previous claim leased
/// `leased` jobs and went `since` ago: until [`CLAIM_SPACING`] after it, if it leased more
/// than one.
///
/// Each commit of webhooks wakes the dispatcher, and each wake was a claim: one statement (on
/// PostgreSQL one commit, and the read of the next due time) for the one to three jobs
/// committed since the last one. A claim that leased several jobs shows that they come faster
/// than claims go; the next claim then waits for the jobs of the next few milliseconds and
/// leases them together, and their outcomes, finishing together, share their writes too.
/// Measured in BENCHMARKS.md ("Claims spaced while jobs stream in"): at 1,400 webhooks/s on
/// PostgreSQL, 10–20 % less CPU per webhook for PostgreSQL's server and 9–13 % for
/// esim-courier; at 3,000/s on SQLite, 5–17 % less for esim-courier. A quiet service, whose
/// claims lease one job each, claims at once: the pause holds a delivery up by at most
/// [`CLAIM_SPACING`], and only while jobs stream in.
fn claim_pause(backlog: bool, leased: usize, since: Duration) -> Option<Duration> {
    if backlog || leased < 2 {
        return None;
    }
    CLAIM_SPACING
        .checked_sub(since)
        .filter(|pause| !pause.is_zero())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{claim_pause, slots_to_wait_for, CLAIM_SPACING};

    #[test]
    fn a_claim_pauses_only_after_one_that_leased_several_jobs() {
        let ms = Duration::from_millis;
        // Several jobs leased 1 ms ago: wait out the rest of the spacing.
        assert_eq!(claim_pause(false, 3, ms(1)), Some(CLAIM_SPACING - ms(1)));
        assert_eq!(claim_pause(false, 2, Duration::ZERO), Some(CLAIM_SPACING));
        // One job or none leased: a quiet service claims at once.
        assert_eq!(claim_pause(false, 1, Duration::ZERO), None);
        assert_eq!(claim_pause(false, 0, Duration::ZERO), None);
        // The spacing has passed already.
        assert_eq!(claim_pause(false, 3, CLAIM_SPACING), None);
        assert_eq!(claim_pause(false, 3, ms(60)), None);
        // A backlog gathers its claims by waiting for delivery slots instead.
        assert_eq!(claim_pause(true, 16, Duration::ZERO), None);
    }

    #[test]
    fn a_claim_waits_for_half_the_slots_only_while_a_backlog_lasts() {
        // A backlog and one free slot of 16: wait for 7 more, so that 8 jobs go together.
        assert_eq!(slots_to_wait_for(true, 1, 16), 7);
        assert_eq!(slots_to_wait_for(true, 7, 16), 7);
        // Half free already, or no backlog: claim at once.
        assert_eq!(slots_to_wait_for(true, 8, 16), 0);
        assert_eq!(slots_to_wait_for(false, 1, 16), 0);
        // Too few slots to gather: claim at once.
        assert_eq!(slots_to_wait_for(true, 1, 3), 0);
        assert_eq!(slots_to_wait_for(true, 1, 1), 0);
    }
}
