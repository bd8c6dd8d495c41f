//! Outbox jobs: leased claims and the outcome of each attempt.
//!
//! A claim sets `state = 'in_flight'` and `locked_until` and is committed before the
//! dispatcher makes any network call. A job whose lease has expired (its worker died) is
//! claimable again. Every outcome is written only by the worker holding the lease.

use esim_courier_core::Alert;
use sqlx::{Any, Row, Transaction};

use crate::columns::{Columns, ContextRow};
use crate::crypto::{attempt_row, Field};
use crate::intake::{insert_job, NewJob};
use crate::{Backend, Store, StoreError};

/// What a job delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// A COMPLETED order (the customer's activation email).
    OrderCompleted,
    /// A FAILED order.
    OrderFailed,
    /// An operator alert (its payload holds the alert).
    Alert,
    /// A reconciliation sweep of the provider's recent orders (no order, no notifier): one
    /// per `[reconcile] sweep_interval` across every replica, run by whichever claims it.
    ReconcileSweep,
    /// A lookup of one known order whose result has not come, at the provider's order API;
    /// looks again at growing intervals until the result is recorded or it gives up.
    ReconcileLookup,
    /// The placement of one order with the provider (`POST /api/v1/placements`); its
    /// payload is the placement's reference, sent as the provider's `idempotentKey`.
    PlaceOrder,
    /// The retention purge (`[retention]`): one per purge interval across every replica.
    RetentionPurge,
}

stored_names!(JobKind, "job kind", {
    OrderCompleted => "order_completed",
    OrderFailed => "order_failed",
    Alert => "alert",
    ReconcileSweep => "reconcile_sweep",
    ReconcileLookup => "reconcile_lookup",
    PlaceOrder => "place_order",
    RetentionPurge => "retention_purge",
});

/// The `notifier` column of scheduled work that no notifier delivers.
pub const RECONCILER: &str = "reconciler";

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Due at `next_attempt_at`.
    Pending,
    /// A customer job parked until its order's registration (or its recheck time).
    Waiting,
    /// Leased to a worker until `locked_until`.
    InFlight,
    /// Delivered.
    Done,
    /// Given up: a dead letter.
    Dead,
    /// Never to be sent: its event was set aside (a webhook the provider did not confirm).
    Cancelled,
}

stored_names!(JobState, "job state", {
    Pending => "pending",
    Waiting => "waiting",
    InFlight => "in_flight",
    Done => "done",
    Dead => "dead",
    Cancelled => "cancelled",
});

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The channel took it.
    Delivered,
    /// It failed in a way a retry may fix.
    Transient,
    /// It failed in a way no retry fixes.
    Permanent,
}

stored_names!(AttemptOutcome, "attempt outcome", {
    Delivered => "delivered",
    Transient => "transient",
    Permanent => "permanent",
});

/// A claim of due jobs ([`Store::claim_due`]), and when the next job falls due.
#[derive(Debug, Clone)]
pub struct DueClaim {
    /// The jobs leased, at most the claim's limit.
    pub jobs: Vec<ClaimedJob>,
    /// When a claim took fewer jobs than its limit: the earliest time another job falls due
    /// (as [`Store::next_due_at`] reads it; on SQLite in the claim's transaction, on PostgreSQL
    /// in the claim's statement), or `None` if none waits. `None` also when the claim took its
    /// limit: more may be due now.
    pub next_due_at: Option<i64>,
}

/// A job leased to this worker.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The job's id.
    pub id: i64,
    /// Stable across attempts; the notification's key.
    pub dedup_key: String,
    /// The notifier's configured name.
    pub notifier: String,
    /// What it delivers.
    pub kind: JobKind,
    /// The order concerned.
    pub order_no: Option<String>,
    /// The event it delivers.
    pub event_id: Option<i64>,
    /// The alert JSON, for alert jobs.
    pub payload: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// When the job was written (Unix milliseconds).
    pub created_at: i64,
    /// When its retry budget began, if not at its creation: when a registration released it
    /// from waiting for its customer, or an operator retried it as a dead letter.
    pub retry_from: Option<i64>,
    /// When the provider's order API confirmed its webhook (`verify_webhooks`; see
    /// [`Store::job_confirmed`]), if it did.
    pub confirmed_at: Option<i64>,
    /// Whether the "customer unknown" alert was already raised for it.
    pub customer_alerted: bool,
    /// This claim's token (`locked_by`): unique per claim, so a worker whose lease expired
    /// and was claimed again, even by itself, can no longer write the job's outcome.
    pub lease: String,
    /// The address an activation job goes to instead of the order's registered customer
    /// (`resend --to`); `None` for the customer as registered.
    pub recipient: Option<String>,
    /// When the customer it was addressed to was erased while an attempt of it was under
    /// way (Unix ms): such an activation job is never sent again ([`Store::job_cancel_erased`]).
    pub customer_erased_at: Option<i64>,
    /// The job's event and its order's customer, when the claim read them (see
    /// [`JOB_CONTEXT`]).
    pub(crate) context: Option<std::sync::Arc<ContextRow>>,
}

impl ClaimedJob {
    /// When the time its retries may take began (Unix ms): [`ClaimedJob::retry_from`], or its
    /// creation.
    pub fn retries_since(&self) -> i64 {
        self.retry_from.unwrap_or(self.created_at)
    }
}

/// What a job needs to become a notification: its event and the order's customer.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The event, for order jobs.
    pub event: Option<crate::EventRecord>,
    /// The order's registered customer, if any.
    pub customer: Option<esim_courier_core::Customer>,
}

/// The columns of [`JOB_CONTEXT`], in order.
pub(crate) const JOB_CONTEXT_COLUMNS: &[&str] = &[
    "e.id",
    "e.order_no",
    "e.receipt_id",
    "e.received_at",
    "e.result",
    "e.disposition",
    "e.fingerprint",
    "e.iccid",
    "e.lpa",
    "e.lpa_masked",
    "e.package_code",
    "e.package_name",
    "e.currency",
    "e.price",
    "e.warnings",
    "e.source",
    "o.customer_email",
    "o.customer_name",
    "o.customer_locale",
    "o.retail_price",
    "o.retail_currency",
];

/// An order job's context: `$1` its event, `$2` its order. SQLite's writer runs it with each
/// claim (see `group_commit::claim`), PostgreSQL's claim joins the same columns
/// ([`CLAIM_CONTEXT`]); [`Store::job_context`] runs it for a job claimed without them.
pub(crate) static JOB_CONTEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {} FROM order_events e LEFT JOIN orders o ON o.order_no = $2 WHERE e.id = $1",
        JOB_CONTEXT_COLUMNS.join(", ")
    )
});

/// Each column of [`JOB_CONTEXT_COLUMNS`] by its own name, and as a claim on PostgreSQL names
/// it, `ctx_<column>` (the job's own `id` and `order_no` come first in the same row). Made
/// once: the claim selects them ([`CLAIM_CONTEXT`]) and each delivery reads them back by
/// these names ([`claimed_context_name`]).
static CLAIM_CONTEXT_NAMES: std::sync::LazyLock<Vec<(&'static str, String)>> =
    std::sync::LazyLock::new(|| {
        JOB_CONTEXT_COLUMNS
            .iter()
            .map(|c| {
                let column = c.rsplit('.').next().unwrap_or(c);
                (column, format!("ctx_{column}"))
            })
            .collect()
    });

/// The name a claim on PostgreSQL gives context column `column` (`iccid`, `customer_email`,
/// ...), if it reads it.
pub(crate) fn claimed_context_name(column: &str) -> Option<&'static str> {
    CLAIM_CONTEXT_NAMES
        .iter()
        .find(|(name, _)| *name == column)
        .map(|(_, claimed)| claimed.as_str())
}

/// The context columns of a claim on PostgreSQL, named as [`CLAIM_CONTEXT_NAMES`] says.
static CLAIM_CONTEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    JOB_CONTEXT_COLUMNS
        .iter()
        .zip(CLAIM_CONTEXT_NAMES.iter())
        .map(|(column, (_, claimed))| format!("{column} AS {claimed}"))
        .collect::<Vec<_>>()
        .join(", ")
});

const JOB_COLUMNS: &str =
    "id, dedup_key, notifier, kind, order_no, event_id, payload, attempts, created_at, retry_from, confirmed_at, customer_alerted, locked_by, recipient, customer_erased_at";

// Statements shared by the sqlx path and SQLite's group-commit writer (see intake.rs).

/// When the next job falls due, on SQLite: the earliest of each state through the
/// (state, next_attempt_at) index, one seek each (with `state IN ('pending', 'waiting')` the
/// same answer took four times as long over 400,000 jobs, 19 µs against 4.4 µs). In-flight
/// jobs, at most one per delivery slot of each worker, by their lease end.
pub(crate) const NEXT_DUE_SQLITE: &str = "SELECT MIN(t) AS due FROM (
     SELECT MIN(next_attempt_at) AS t FROM outbox_jobs WHERE state = 'pending'
     UNION ALL
     SELECT MIN(next_attempt_at) AS t FROM outbox_jobs WHERE state = 'waiting'
     UNION ALL
     SELECT MIN(locked_until) AS t FROM outbox_jobs WHERE state = 'in_flight') AS due_times";

/// When the next job falls due, on PostgreSQL (its partial indexes of due and leased jobs).
const NEXT_DUE_POSTGRES: &str = "SELECT MIN(t) AS due FROM (
     SELECT MIN(next_attempt_at) AS t FROM outbox_jobs WHERE state IN ('pending', 'waiting')
     UNION ALL
     SELECT MIN(locked_until) AS t FROM outbox_jobs WHERE state = 'in_flight') AS due_times";

/// [`NEXT_DUE_POSTGRES`] inside a claim's statement, whose CTE `leased` holds the jobs it
/// leases (`$4` its limit). The statement sees the outbox as it was before its own update,
/// so the leased jobs still look due there and are left out. They are at most `$4`, so the
/// first `$4 + 1` of each state in due order hold the earliest of the others: each state is
/// read through its index, never further, whatever plan the statement was prepared with. (A
/// `NOT IN` inside `MIN` read every due job under a generic plan made on an empty outbox.)
/// Read only when the claim took fewer than `$4`, as SQLite's writer does.
const NEXT_DUE_IN_CLAIM_POSTGRES: &str = "SELECT MIN(t) AS due FROM (
     SELECT * FROM (SELECT id, next_attempt_at AS t FROM outbox_jobs WHERE state IN ('pending', 'waiting')
                     ORDER BY next_attempt_at LIMIT $4 + 1) AS due_jobs
     UNION ALL
     SELECT * FROM (SELECT id, locked_until AS t FROM outbox_jobs WHERE state = 'in_flight'
                     ORDER BY locked_until LIMIT $4 + 1) AS leases) AS due_times
  WHERE id NOT IN (SELECT id FROM leased) AND (SELECT count(*) FROM leased) < $4";

/// SQLite's writer leases one chosen job: `$1` lease end, `$2` lease token, `$3` now, `$4`
/// job. By its id, so that SQLite changes that one row in place: the claim's
/// `UPDATE … WHERE id IN (…) RETURNING` made it open a temporary table for the returned rows
/// and a statement journal for each claim (BENCHMARKS.md, "SQLite: the next due time, with
/// the claim").
pub(crate) const CLAIM_JOB: &str = "UPDATE outbox_jobs
    SET state = 'in_flight', locked_until = $1, locked_by = $2, attempts = attempts + 1, updated_at = $3
  WHERE id = $4";

/// A leased job as the dispatcher reads it: `$1` job.
pub(crate) static CLAIMED_JOB: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("SELECT {JOB_COLUMNS} FROM outbox_jobs WHERE id = $1"));

/// Ends a leased attempt: `$1` state, `$2` error, `$3` next attempt (or unchanged), `$4` now,
/// `$5` job, `$6` lease. Changes a row only while the lease is still this claim's.
///
/// A job whose customer was erased during the attempt (`customer_erased_at`) loses its own
/// recipient (a `resend --to` address) here: the attempt under way was its last use.
pub(crate) const FINISH_JOB: &str = "UPDATE outbox_jobs SET state = $1, last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at),
        locked_until = NULL, locked_by = NULL, updated_at = $4,
        recipient = CASE WHEN customer_erased_at IS NULL THEN recipient END
  WHERE id = $5 AND locked_by = $6 AND state = 'in_flight'";
/// PostgreSQL: [`FINISH_JOB`] and, when it changed the job (the lease was still this
/// claim's), [`RECORD_ATTEMPT`] (without the recipient when the customer was erased during
/// the attempt), in one statement: `$1`..`$6` as in `FINISH_JOB`, then `$7`
/// attempt, `$8` started, `$9` outcome, `$10` receipt, `$11` worker, `$12` recipient, `$13`
/// locale. Its form for several jobs at once is pg_outcome.rs's.
pub(crate) const FINISH_ATTEMPT_PG: &str = "WITH f AS (
         UPDATE outbox_jobs SET state = $1, last_error = $2, next_attempt_at = COALESCE($3, next_attempt_at),
                locked_until = NULL, locked_by = NULL, updated_at = $4,
                recipient = CASE WHEN customer_erased_at IS NULL THEN recipient END
          WHERE id = $5 AND locked_by = $6 AND state = 'in_flight'
          RETURNING id, customer_erased_at)
     INSERT INTO delivery_attempts (job_id, attempt, started_at, finished_at, outcome, error, receipt, worker, recipient, locale)
     SELECT id, $7, $8, $4, $9, $2, $10, $11, CASE WHEN customer_erased_at IS NULL THEN $12 END, $13 FROM f";
/// Gives a leased job back without counting the claim as an attempt: `$1` due at, `$2` now,
/// `$3` job, `$4` lease.
/// A job whose customer was erased during the claim loses its own recipient here too, as in
/// [`FINISH_JOB`].
const DEFER_JOB: &str =
    "UPDATE outbox_jobs SET state = 'pending', attempts = attempts - 1, next_attempt_at = $1,
        locked_until = NULL, locked_by = NULL, updated_at = $2,
        recipient = CASE WHEN customer_erased_at IS NULL THEN recipient END
  WHERE id = $3 AND locked_by = $4 AND state = 'in_flight'";
/// Makes a job whose row cannot be read a dead letter: `$1` why, `$2` now, `$3` job.
pub(crate) const BURY_JOB: &str =
    "UPDATE outbox_jobs SET state = 'dead', last_error = $1, locked_until = NULL, locked_by = NULL,
        updated_at = $2, recipient = CASE WHEN customer_erased_at IS NULL THEN recipient END
  WHERE id = $3";

/// Logs a claimed job that cannot be read and gives the reason to store with it.
pub(crate) fn unreadable_job(id: i64, e: &StoreError) -> String {
    let reason = format!("the job cannot be read: {}", e.clone_for_caller());
    tracing::error!(job_id = id, error = %reason, "an outbox job is now a dead letter");
    reason
}

/// One attempt in the delivery log, written after its job's [`FINISH_JOB`]: `$1` job, `$2`
/// attempt, `$3` started, `$4` finished, `$5` outcome, `$6` error, `$7` receipt, `$8`
/// worker, `$9` recipient, `$10` locale. The recipient is dropped when the order's customer
/// was erased during the attempt (the job's `customer_erased_at`, read from the row the
/// finish has just changed).
pub(crate) const RECORD_ATTEMPT: &str = "INSERT INTO delivery_attempts (job_id, attempt, started_at, finished_at, outcome, error, receipt, worker, recipient, locale)
 SELECT $1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN customer_erased_at IS NULL THEN $9 END, $10
   FROM outbox_jobs WHERE id = $1";

/// What a job cancelled by its customer's erasure says.
pub(crate) const CUSTOMER_ERASED: &str = "the customer was erased";

/// Which due jobs a claim leases.
#[derive(Debug, Clone)]
pub(crate) enum ClaimFilter {
    /// Any due job: pending or waiting jobs whose time has come, in-flight ones whose lease
    /// expired; the earliest first.
    Due,
    /// Due pending jobs of one notifier (a grouping window's sweep), oldest first.
    Notifier(String),
}

/// A claim, with everything its statement binds.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRequest {
    pub(crate) filter: ClaimFilter,
    /// This claim's lease token.
    pub(crate) lease: String,
    pub(crate) now: i64,
    pub(crate) lease_until: i64,
    pub(crate) limit: i64,
    /// Whether to read when the next job falls due, if the claim takes fewer than `limit`.
    pub(crate) next_due: bool,
}

impl ClaimRequest {
    /// The claim statement: `$1` lease end, `$2` lease token, `$3` now, `$4` limit, `$5` the
    /// notifier for [`ClaimFilter::Notifier`].
    ///
    /// On PostgreSQL it also reads each leased order job's context, as SQLite's writer does in
    /// the claim's transaction: the event and the order's customer, joined by their keys
    /// ([`CLAIM_CONTEXT`], columns named `ctx_…`). Read apart, that was a statement of its own
    /// per delivery, the most frequent after the intake's (BENCHMARKS.md, "PostgreSQL: the
    /// context with the claim"). The joins take each row by its primary key, in a plan made on
    /// an empty database too (the suite's
    /// `outbox::a_claim_planned_on_an_empty_database_reads_only_its_jobs_contexts`).
    ///
    /// With `next_due`, PostgreSQL's claim also reads when the next job falls due, in the same
    /// statement, as SQLite's writer does in the claim's transaction: each row has it as
    /// `next_due`, and a claim that leases nothing still returns one row, whose job columns
    /// are all NULL. The jobs it leases are left out of that minimum
    /// ([`NEXT_DUE_IN_CLAIM_POSTGRES`]): they fall due again at their lease end, `$1`, which
    /// the store adds ([`Store::claim_due`]). Read apart, after the claim, it was
    /// a round trip of its own for each claim that took fewer jobs than it asked for
    /// (BENCHMARKS.md, "PostgreSQL: the next due time, with the claim").
    pub(crate) fn sql(&self, backend: Backend) -> String {
        let (ctes, chosen) = self.chosen(backend);
        let lease = format!(
            "UPDATE outbox_jobs
                SET state = 'in_flight', locked_until = $1, locked_by = $2, attempts = attempts + 1, updated_at = $3
              WHERE id IN ({chosen})
              RETURNING {JOB_COLUMNS}"
        );
        match backend {
            // SQLite has no UPDATE in a WITH; its writer leases by id instead (`chosen_sql`).
            Backend::Sqlite => lease,
            Backend::Postgres => {
                let (next_due, jobs) = if self.next_due {
                    (
                        format!(", next_due AS ({NEXT_DUE_IN_CLAIM_POSTGRES})"),
                        ", n.due AS next_due FROM next_due n LEFT JOIN leased l ON true",
                    )
                } else {
                    (String::new(), " FROM leased l")
                };
                format!(
                    "WITH {ctes}leased AS ({lease}){next_due}
                     SELECT l.*, {context}{jobs}
                       LEFT JOIN order_events e ON e.id = l.event_id
                       LEFT JOIN orders o ON o.order_no = l.order_no",
                    ctes = ctes.map(|c| format!("{c}, ")).unwrap_or_default(),
                    context = CLAIM_CONTEXT.as_str(),
                )
            }
        }
    }

    /// The query that picks the jobs to lease, their ids in due order: `$3` now, `$4` limit,
    /// `$5` the notifier. SQLite's writer runs it, then leases each job by its id
    /// ([`CLAIM_JOB`]).
    pub(crate) fn chosen_sql(&self) -> String {
        self.chosen(Backend::Sqlite).1
    }

    /// The jobs to lease, and the common table expressions they come from (if any, without
    /// the `WITH`).
    fn chosen(&self, backend: Backend) -> (Option<&'static str>, String) {
        match (&self.filter, backend) {
            // SQLite plans the OR of the three states as a scan of every due job and a sort,
            // so a claim would cost more the longer the backlog (5.6 ms with 31,000 pending
            // jobs). Taking the first few of each state through the (state, next_attempt_at)
            // index and merging those costs the same at any backlog (11 µs).
            (ClaimFilter::Due, Backend::Sqlite) => (None, {
                let first = |state: &str, due: &str| {
                    format!(
                        "SELECT * FROM (SELECT id, next_attempt_at AS due FROM outbox_jobs
                          WHERE state = '{state}' AND {due} ORDER BY next_attempt_at LIMIT $4)"
                    )
                };
                format!(
                    "SELECT id FROM ({} UNION ALL {} UNION ALL {}) ORDER BY due LIMIT $4",
                    first("pending", "next_attempt_at <= $3"),
                    first("waiting", "next_attempt_at <= $3"),
                    first("in_flight", "locked_until < $3"),
                )
            }),
            // PostgreSQL: each kind of due job is locked by a bounded scan of its partial
            // index (migrations 20261128000002 and 3: due pending/waiting jobs, expired
            // leases), in due order, skipping rows another claimer holds (SKIP LOCKED lets
            // replicas claim side by side); the earliest of the two sets are leased. Each
            // scan re-checks its row under the lock, and no step reads more rows than the
            // limit: the statement's plan, cached on each connection from its first uses,
            // stays cheap however the outbox has grown since. (The former form re-checked
            // the union of candidates against both states in an outer query, and a plan made
            // while the outbox was nearly empty drove that query from every due job, for
            // each claim: with 40,000 jobs queued the dispatcher slowed from 2,800 to 1,000
            // deliveries a second. BENCHMARKS.md has the plans.)
            (ClaimFilter::Due, Backend::Postgres) => (
                Some("due AS (
                     SELECT id, next_attempt_at AS at FROM outbox_jobs
                      WHERE state IN ('pending', 'waiting') AND next_attempt_at <= $3
                      ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED),
                 expired AS (
                     SELECT id, next_attempt_at AS at FROM outbox_jobs
                      WHERE state = 'in_flight' AND locked_until < $3
                      ORDER BY locked_until LIMIT $4 FOR UPDATE SKIP LOCKED)"),
                "SELECT id FROM (SELECT id, at FROM due UNION ALL SELECT id, at FROM expired) c
                  ORDER BY at LIMIT $4"
                    .to_owned(),
            ),
            // Notifications only: scheduled work is stored under the notifier name
            // `reconciler` (RECONCILER), which an operator may also give a notifier.
            (ClaimFilter::Notifier(_), backend) => (None, format!(
                "SELECT id FROM outbox_jobs WHERE state = 'pending' AND next_attempt_at <= $3 AND notifier = $5
                    AND kind IN ('order_completed', 'order_failed', 'alert')
                  ORDER BY id LIMIT $4{}",
                match backend {
                    Backend::Sqlite => "",
                    Backend::Postgres => " FOR UPDATE SKIP LOCKED",
                }
            )),
        }
    }

    /// The notifier bound as `$5`, if any.
    pub(crate) fn notifier(&self) -> Option<&str> {
        match &self.filter {
            ClaimFilter::Due => None,
            ClaimFilter::Notifier(n) => Some(n),
        }
    }
}

/// The statement a dispatcher's claim of due jobs runs on `backend` ([`Store::claim_due`]):
/// `$1` lease end, `$2` lease token, `$3` now, `$4` limit. For inspecting its plan (`PREPARE`
/// it, then `EXPLAIN EXECUTE`), as the suite that keeps its cached plan bounded does.
#[doc(hidden)]
pub fn due_claim_statement(backend: Backend) -> String {
    claim_statement(ClaimFilter::Due, true, backend)
}

/// The statement a grouping notifier's claim runs on `backend`: as
/// [`due_claim_statement`], and `$5` the notifier.
#[doc(hidden)]
pub fn notifier_claim_statement(backend: Backend) -> String {
    claim_statement(ClaimFilter::Notifier(String::new()), false, backend)
}

fn claim_statement(filter: ClaimFilter, next_due: bool, backend: Backend) -> String {
    ClaimRequest {
        filter,
        lease: String::new(),
        now: 0,
        lease_until: 0,
        limit: 0,
        next_due,
    }
    .sql(backend)
}

impl Store {
    /// Leases up to `limit` due jobs to `worker` until `now + lease_ms`: pending and waiting
    /// jobs whose time has come, and in-flight jobs whose lease has expired. On PostgreSQL,
    /// `FOR UPDATE SKIP LOCKED` lets several replicas claim side by side without ever
    /// taking the same job.
    pub async fn claim(
        &self,
        worker: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let claim = self
            .claim_where(ClaimFilter::Due, worker, lease_ms, limit, false)
            .await?;
        Ok(claim.jobs)
    }

    /// As [`Store::claim`], and when the claim takes fewer than `limit` jobs, when the next
    /// one falls due: what a dispatcher sleeps until. On SQLite the writer reads it right
    /// after the claim, on the connection whose cache holds those pages; read apart, through
    /// the read pool, it cost about 50 µs of CPU per webhook at 3,000 webhooks/s, where each
    /// claim finds one or two jobs (BENCHMARKS.md, "SQLite: the next due time, with the
    /// claim"). On PostgreSQL the claim's own statement reads it.
    pub async fn claim_due(
        &self,
        worker: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<DueClaim, StoreError> {
        self.claim_where(ClaimFilter::Due, worker, lease_ms, limit, true)
            .await
    }

    /// Leases up to `limit` due pending jobs of one notifier: the sweep that gathers a
    /// grouping window's notifications into one digest.
    pub async fn claim_for_notifier(
        &self,
        notifier: &str,
        worker: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let claim = self
            .claim_where(
                ClaimFilter::Notifier(notifier.to_owned()),
                worker,
                lease_ms,
                limit,
                false,
            )
            .await?;
        Ok(claim.jobs)
    }

    /// Runs a claim. The lease is committed before this returns: on SQLite through the
    /// group-commit writer (a claim shares its sync with the webhooks arriving meanwhile), on
    /// PostgreSQL as one statement of its own.
    async fn claim_where(
        &self,
        filter: ClaimFilter,
        worker: &str,
        lease_ms: i64,
        limit: i64,
        next_due: bool,
    ) -> Result<DueClaim, StoreError> {
        let now = self.now();
        let request = ClaimRequest {
            filter,
            lease: lease_token(worker),
            now,
            lease_until: now.saturating_add(lease_ms),
            limit,
            next_due,
        };
        if let Some(batcher) = &self.batcher {
            return batcher.claim(request).await;
        }
        // PostgreSQL from here: every SQLite store claims through its writer (connect.rs).
        // Built from constant fragments only (the filter picks which); every value is bound.
        let sql = sqlx::AssertSqlSafe(request.sql(self.backend));
        let mut query = sqlx::query(sql)
            .bind(request.lease_until)
            .bind(request.lease.clone())
            .bind(request.now)
            .bind(request.limit);
        if let Some(n) = request.notifier() {
            query = query.bind(n.to_owned());
        }
        let rows = query.fetch_all(&self.write).await?;
        let mut jobs = Vec::with_capacity(rows.len());
        let (mut claimed, mut others_due) = (0, None);
        for row in rows {
            if next_due {
                others_due = row.try_get::<Option<i64>, _>("next_due")?;
            }
            // The one row of a claim that leased nothing, when it reads the next due time.
            let Some(id) = row.try_get::<Option<i64>, _>("id")? else {
                continue;
            };
            claimed += 1;
            match claimed_job_with_context(row) {
                Ok(job) => jobs.push(job),
                // One unreadable row must not fail the claim (see the SQLite writer's claim).
                Err(e) => {
                    sqlx::query(BURY_JOB)
                        .bind(unreadable_job(id, &e))
                        .bind(request.now)
                        .bind(id)
                        .execute(&self.write)
                        .await?;
                }
            }
        }
        // The statement read the other jobs' next due time; the ones it leased fall due
        // again at their lease end (not a job buried above: it is dead).
        let leased_due = (!jobs.is_empty()).then_some(request.lease_until);
        let next_due_at = if next_due && claimed < limit {
            others_due.into_iter().chain(leased_due).min()
        } else {
            None
        };
        Ok(DueClaim { jobs, next_due_at })
    }

    /// Gives a leased job back, due at `at` (a grouping window's end), without counting the
    /// claim as an attempt.
    /// Schedules the reconciliation sweep due at `at` (Unix ms), once: every replica asks for
    /// the same slot (a multiple of the sweep interval), and the job's key makes one of them
    /// win. Returns whether this call created it.
    pub async fn schedule_sweep(&self, at: i64) -> Result<bool, StoreError> {
        let created = self
            .schedule(
                JobKind::ReconcileSweep,
                &format!("reconcile_sweep:{at}"),
                None,
                at,
            )
            .await?;
        if created {
            self.notify_jobs_changed();
        }
        Ok(created)
    }

    /// Schedules the retention purge due at `at` (Unix ms), once across replicas (the slot is
    /// the job's key, as a sweep's). Returns whether this call created it.
    pub async fn schedule_purge(&self, at: i64) -> Result<bool, StoreError> {
        let created = self
            .schedule(
                JobKind::RetentionPurge,
                &format!("retention_purge:{at}"),
                None,
                at,
            )
            .await?;
        if created {
            self.notify_jobs_changed();
        }
        Ok(created)
    }

    /// Schedules a sweep due now for the process `worker` that is starting: the likeliest
    /// end of an outage. One per process start, whatever the periodic sweeps' slots hold (a
    /// replica killed mid-sweep may hold the current slot's job until its lease expires).
    pub async fn schedule_start_sweep(&self, worker: &str) -> Result<bool, StoreError> {
        let key = format!("reconcile_sweep:start:{worker}");
        let created = self
            .schedule(JobKind::ReconcileSweep, &key, None, self.now())
            .await?;
        if created {
            self.notify_jobs_changed();
        }
        Ok(created)
    }

    /// Schedules the lookup of `order_no` at `at` (Unix ms), unless the order already has
    /// one: one lookup job per order, which then looks again on its own. Returns whether this
    /// call created it.
    pub async fn schedule_lookup(&self, order_no: &str, at: i64) -> Result<bool, StoreError> {
        self.schedule(
            JobKind::ReconcileLookup,
            &lookup_key(order_no),
            Some(order_no),
            at,
        )
        .await
    }

    /// Scheduled work of the reconciler, due at `at`, unless a job with `key` exists.
    async fn schedule(
        &self,
        kind: JobKind,
        key: &str,
        order_no: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError> {
        insert_scheduled(&self.write, (kind, key, order_no), self.now(), at).await
    }

    /// Sets aside the COMPLETED webhook behind `job` (its ICCID or activation code differ
    /// from the provider's record): the event no longer counts (disposition `unverified`, so
    /// the genuine result is accepted, not a conflict), its receipt is quarantined with
    /// `reason`, the order waits for its result again, and every job of the event is
    /// cancelled (never sent, never retried) with its key freed for the genuine event's jobs.
    /// Raises `alert_jobs`. Returns false when the lease was lost (nothing written).
    pub async fn unverify(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        reason: &str,
        alert_jobs: Vec<NewJob>,
    ) -> Result<bool, StoreError> {
        let Some(event_id) = job.event_id else {
            return Err(StoreError::Corrupt(format!(
                "job {} has no event to set aside",
                job.id
            )));
        };
        let mut tx = self.begin_write().await?;
        let ending = Ending::failed(JobState::Cancelled, AttemptOutcome::Permanent, reason);
        let owned = self.end_job(&mut tx, job, attempt, ending).await?;
        if !owned {
            tx.commit().await?;
            return Ok(false);
        }
        let set_aside = sqlx::query(
            "UPDATE order_events SET disposition = 'unverified' WHERE id = $1 AND disposition <> 'unverified'",
        )
        .bind(event_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if set_aside > 0 {
            // The event no longer counts for the intake's rules (migration 0009).
            sqlx::query(
                "UPDATE orders SET recorded_events = recorded_events - 1
                  WHERE order_no = (SELECT order_no FROM order_events WHERE id = $1)",
            )
            .bind(event_id)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE webhook_receipts SET outcome = 'quarantined', reason = $2
              WHERE id = (SELECT receipt_id FROM order_events WHERE id = $1)",
        )
        .bind(event_id)
        .bind(reason.to_owned())
        .execute(&mut *tx)
        .await?;
        if let Some(order_no) = &job.order_no {
            sqlx::query(
                "UPDATE orders SET state = 'awaiting_webhook', updated_at = $2
                  WHERE order_no = $1 AND NOT EXISTS (
                        SELECT 1 FROM order_events WHERE order_no = $1 AND disposition = 'accepted')",
            )
            .bind(order_no.clone())
            .bind(attempt.finished_at)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE outbox_jobs SET state = CASE WHEN state IN ('pending', 'waiting') THEN 'cancelled' ELSE state END,
                    dedup_key = 'unverified:' || CAST(id AS TEXT) || ':' || dedup_key
              WHERE event_id = $1",
        )
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
        let prefix = format!("unverified:{event_id}");
        insert_alert_jobs(
            &mut tx,
            (&prefix, &alert_jobs),
            job.order_no.as_deref(),
            attempt.finished_at,
        )
        .await?;
        tx.commit().await?;
        self.notify_jobs_changed();
        Ok(true)
    }

    /// Whether `order_no` has a result on record: an accepted COMPLETED or FAILED event.
    pub async fn has_result(&self, order_no: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM order_events
              WHERE order_no = $1 AND disposition = 'accepted' AND result IN ('COMPLETED', 'FAILED')",
        )
        .bind(order_no.to_owned())
        .fetch_one(&self.read)
        .await?
        .try_get("n")?;
        Ok(n > 0)
    }

    pub async fn job_defer(&self, job: &ClaimedJob, at: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(DEFER_JOB)
            .bind(at)
            .bind(self.now())
            .bind(job.id)
            .bind(job.lease.clone())
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(done == 1)
    }

    /// Loads the event and customer a claimed job needs. The claim has read them already for
    /// an order's job (in the writer's transaction on SQLite, in its statement on PostgreSQL)
    /// and this only opens them; otherwise one read for both. The customer is the
    /// order's as registered at that read (a registration that commits later wakes a job
    /// parked for it, and the next claim reads it), addressed to the job's own recipient when
    /// it has one (`resend --to`).
    pub async fn job_context(&self, job: &ClaimedJob) -> Result<JobContext, StoreError> {
        let mut ctx = self.stored_context(job).await?;
        if let Some(to) = &job.recipient {
            let to = self
                .keys
                .open_str(Field::JobRecipient, &job.id.to_string(), to)?;
            let to = crate::orders::email(&to, "a job's recipient")?;
            match &mut ctx.customer {
                Some(customer) => customer.email = to,
                None => {
                    ctx.customer = Some(esim_courier_core::Customer {
                        email: to,
                        name: None,
                        locale: None,
                        retail_price: None,
                    });
                }
            }
        }
        Ok(ctx)
    }

    async fn stored_context(&self, job: &ClaimedJob) -> Result<JobContext, StoreError> {
        // Read with the claim: no second read, and none through another thread.
        if let Some(row) = &job.context {
            return self.context_from(row.as_ref());
        }
        if let (Some(event_id), Some(order_no)) = (job.event_id, &job.order_no) {
            let row = sqlx::query(sqlx::AssertSqlSafe(JOB_CONTEXT.as_str()))
                .bind(event_id)
                .bind(order_no.clone())
                .fetch_optional(&self.read)
                .await?;
            if let Some(row) = row {
                return self.context_from(&row);
            }
        }
        let event = match job.event_id {
            Some(id) => self.event(id).await?,
            None => None,
        };
        let customer = match &job.order_no {
            Some(order_no) => self.order(order_no).await?.and_then(|o| o.customer),
            None => None,
        };
        Ok(JobContext { event, customer })
    }

    /// A [`JOB_CONTEXT`] row as a job's context.
    fn context_from(&self, row: &impl Columns) -> Result<JobContext, StoreError> {
        Ok(JobContext {
            event: Some(crate::orders::event_record(&self.keys, row)?),
            customer: crate::orders::customer_from_row(
                &self.keys,
                row,
                crate::orders::CustomerOf::Order,
            )?,
        })
    }

    /// Records a successful attempt and marks the job done.
    pub async fn job_delivered(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        receipt: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.job_delivered_in(job, attempt, receipt, None).await
    }

    /// [`Store::job_delivered`], recording the language the message was written in.
    pub async fn job_delivered_in(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        receipt: Option<&str>,
        locale: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.job_outcome(
            job,
            attempt,
            Finish::Delivered {
                receipt: receipt.map(str::to_owned),
                locale: locale.map(str::to_owned),
            },
        )
        .await
    }

    /// Records a failed attempt and schedules the next one at `next_attempt_at`.
    pub async fn job_retry(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<bool, StoreError> {
        self.job_outcome(
            job,
            attempt,
            Finish::Retry {
                error: error.to_owned(),
                next_attempt_at,
            },
        )
        .await
    }

    /// [`end_job`] with the attempt's recipient sealed for its row.
    pub(crate) async fn end_job(
        &self,
        tx: &mut Transaction<'_, Any>,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        ending: Ending<'_>,
    ) -> Result<bool, StoreError> {
        let sealed = self.sealed_recipient(job, attempt);
        let attempt = Attempt {
            recipient: sealed.as_deref(),
            ..*attempt
        };
        end_job(tx, (job, &attempt), ending).await
    }

    /// An attempt's recipient as stored: sealed for the attempt's row.
    fn sealed_recipient(&self, job: &ClaimedJob, attempt: &Attempt<'_>) -> Option<String> {
        attempt.recipient.map(|to| {
            self.keys.seal_str(
                Field::AttemptRecipient,
                &attempt_row(job.id, job.attempts),
                to,
            )
        })
    }

    /// Writes an attempt's outcome: through the group-commit writer on SQLite (outcomes of
    /// concurrent deliveries share one sync with the webhooks arriving meanwhile), through
    /// the outcome writer on PostgreSQL ([`FINISH_ATTEMPT_PG`]; the outcomes of deliveries
    /// that finish together share one statement and one commit, pg_outcome.rs).
    async fn job_outcome(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        finish: Finish,
    ) -> Result<bool, StoreError> {
        let sealed = self.sealed_recipient(job, attempt);
        let attempt = &Attempt {
            recipient: sealed.as_deref(),
            ..*attempt
        };
        if let Some(batcher) = &self.batcher {
            return batcher.outcome(job, attempt, finish).await;
        }
        let outcome = crate::pg_outcome::Outcome::new(job, attempt, &finish.ending());
        match &self.outcomes {
            Some(outcomes) => outcomes.write(outcome).await,
            None => Err(StoreError::Corrupt(
                "a PostgreSQL store without its outcome writer".into(),
            )),
        }
    }

    /// Records the last failed attempt, marks the job dead, and writes the alert jobs for it
    /// in the same transaction.
    pub async fn job_dead(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        outcome: AttemptOutcome,
        error: &str,
        alert: Option<(&Alert, Vec<NewJob>)>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let ending = Ending::failed(JobState::Dead, outcome, error);
        let owned = self.end_job(&mut tx, job, attempt, ending).await?;
        if owned {
            if let Some((_, jobs)) = &alert {
                // The time makes it this death's own: a dead letter retried (its attempts
                // counted again from 1) that dies again raises its alert again.
                let prefix = format!("dead:{}:{}:{}", job.id, job.attempts, attempt.finished_at);
                insert_alert_jobs(
                    &mut tx,
                    (&prefix, jobs),
                    job.order_no.as_deref(),
                    attempt.finished_at,
                )
                .await?;
            }
        }
        tx.commit().await?;
        if alert.is_some_and(|(_, jobs)| !jobs.is_empty()) {
            self.notify_jobs_changed();
        }
        Ok(owned)
    }

    /// Parks a customer job until its order's customer is registered (or `recheck_at`),
    /// giving back the attempt its claim counted. With `alert_jobs`, also writes the
    /// "customer unknown" alert jobs and remembers it was raised.
    ///
    /// The decision is taken again inside this transaction, against the order row, so it
    /// cannot miss a registration that committed after the dispatcher read the order: a
    /// registration and a park of the same order are serialised (on PostgreSQL by the order
    /// row's lock, which [`Store::register_customer`] also takes; on SQLite by the write
    /// lock). Whichever commits second sees the other: a registration wakes a parked job,
    /// and a park that finds the customer registered gives the job back due at once
    /// ([`CustomerWait::CustomerArrived`]) instead of parking it.
    pub async fn job_wait_for_customer(
        &self,
        job: &ClaimedJob,
        recheck_at: i64,
        alert_jobs: Vec<NewJob>,
    ) -> Result<CustomerWait, StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        let registered = match &job.order_no {
            Some(order_no) => sqlx::query(self.locked_customer_email())
                .bind(order_no.clone())
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<Option<String>, _>("customer_email"))
                .transpose()?
                .flatten()
                .is_some(),
            None => false,
        };
        // Read after the order row's lock: an erasure of the order (which takes it first) has
        // committed its mark on this job by now, or runs after this transaction and finds
        // the job parked, which it cancels.
        let erased = sqlx::query("SELECT customer_erased_at FROM outbox_jobs WHERE id = $1")
            .bind(job.id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<Option<i64>, _>("customer_erased_at"))
            .transpose()?
            .flatten()
            .is_some();
        // Registered meanwhile: give the job back due now. Under way when its customer was
        // erased, and failed: cancel it, as the erasure cancelled the order's other unsent
        // emails. Otherwise park it.
        let raise = !registered && !erased && !alert_jobs.is_empty();
        let done = if erased && !registered {
            sqlx::query(
                "UPDATE outbox_jobs SET state = 'cancelled', attempts = attempts - 1, last_error = $1,
                        locked_until = NULL, locked_by = NULL, updated_at = $2
                  WHERE id = $3 AND locked_by = $4 AND state = 'in_flight'",
            )
            .bind(CUSTOMER_ERASED)
            .bind(now)
            .bind(job.id)
            .bind(job.lease.clone())
            .execute(&mut *tx)
            .await?
        } else if registered {
            sqlx::query(DEFER_JOB)
                .bind(now)
                .bind(now)
                .bind(job.id)
                .bind(job.lease.clone())
                .execute(&mut *tx)
                .await?
        } else {
            sqlx::query(
                "UPDATE outbox_jobs SET state = 'waiting', attempts = attempts - 1, next_attempt_at = $1,
                        locked_until = NULL, locked_by = NULL, updated_at = $2,
                        customer_alerted = CASE WHEN $3 = 1 THEN 1 ELSE customer_alerted END
                  WHERE id = $4 AND locked_by = $5 AND state = 'in_flight'",
            )
            .bind(recheck_at)
            .bind(now)
            .bind(i64::from(raise))
            .bind(job.id)
            .bind(job.lease.clone())
            .execute(&mut *tx)
            .await?
        };
        if done.rows_affected() != 1 {
            return Ok(CustomerWait::LeaseLost);
        }
        if raise {
            for alert_job in &alert_jobs {
                let key = format!("customer-unknown:{}:{}", job.id, alert_job.notifier);
                insert_job(&mut tx, alert_job, &key, job.order_no.as_deref(), None, now).await?;
            }
        }
        tx.commit().await?;
        if registered || raise {
            self.notify_jobs_changed();
        }
        Ok(if registered {
            CustomerWait::CustomerArrived
        } else if erased {
            CustomerWait::CustomerErased
        } else {
            CustomerWait::Parked
        })
    }

    /// The provider's order API confirmed the webhook of the activation job `job`
    /// (`verify_webhooks`). Its delivery starts here: the rounds it waited for the provider
    /// used its attempts as their clock, so its attempts restart with this claim as the first,
    /// its retry budget (`max_age`) counts from now, and later attempts do not ask again.
    /// Updates `job` to match. Returns false when the lease was lost (nothing written).
    pub async fn job_confirmed(&self, job: &mut ClaimedJob) -> Result<bool, StoreError> {
        let now = self.now();
        let done = sqlx::query(
            "UPDATE outbox_jobs SET confirmed_at = $1, retry_from = $1, attempts = 1, updated_at = $1
              WHERE id = $2 AND locked_by = $3 AND state = 'in_flight'",
        )
        .bind(now)
        .bind(job.id)
        .bind(job.lease.clone())
        .execute(&self.write)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        job.confirmed_at = Some(now);
        job.retry_from = Some(now);
        job.attempts = 1;
        Ok(true)
    }

    /// Extends the leases of jobs still being delivered to `until` (a heartbeat, so a slow
    /// but live delivery never loses its lease). Returns how many were still held.
    pub async fn extend_leases(&self, jobs: &[ClaimedJob], until: i64) -> Result<u64, StoreError> {
        let mut held = 0;
        for job in jobs {
            held += sqlx::query("UPDATE outbox_jobs SET locked_until = $1 WHERE id = $2 AND locked_by = $3 AND state = 'in_flight'")
                .bind(until)
                .bind(job.id)
                .bind(job.lease.clone())
                .execute(&self.write)
                .await?
                .rows_affected();
        }
        Ok(held)
    }

    /// Cancels a leased activation job whose customer was erased while an earlier attempt
    /// of it was under way ([`ClaimedJob::customer_erased_at`]), its own recipient with it:
    /// sent again, it would go to an address that was erased, or, without it, to the order's
    /// customer instead of the one an operator chose. The claim's attempt is not counted.
    /// False when the lease was lost.
    pub async fn job_cancel_erased(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE outbox_jobs SET state = 'cancelled', attempts = attempts - 1, last_error = $1,
                    locked_until = NULL, locked_by = NULL, recipient = NULL, updated_at = $2
              WHERE id = $3 AND locked_by = $4 AND state = 'in_flight'",
        )
        .bind(CUSTOMER_ERASED)
        .bind(self.now())
        .bind(job.id)
        .bind(job.lease.clone())
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    /// Gives a leased job back untouched (shutdown): it is due again at once, and the claim's
    /// attempt is not counted.
    pub async fn job_release(&self, job: &ClaimedJob) -> Result<bool, StoreError> {
        self.job_defer(job, self.now()).await
    }

    /// When the next job falls due: the earliest `next_attempt_at` of pending or waiting jobs,
    /// or `locked_until` of in-flight ones.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => NEXT_DUE_SQLITE,
            Backend::Postgres => NEXT_DUE_POSTGRES,
        };
        let row = sqlx::query(sql).fetch_one(&self.read).await?;
        Ok(row.try_get::<Option<i64>, _>("due")?)
    }

    /// Puts dead jobs back in the queue: one by id, or all of them with `None`. Returns how
    /// many were revived. Attempts, and the time retries may take, start again from now.
    /// Recorded in the audit log as done by `actor`, in the same transaction.
    pub async fn retry_dead(&self, id: Option<i64>, actor: &str) -> Result<u64, StoreError> {
        let now = self.now();
        let sql = "UPDATE outbox_jobs SET state = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1,
                          retry_from = $1, locked_until = NULL, locked_by = NULL
                    WHERE state = 'dead' AND ($2 = 0 OR id = $3)
                RETURNING id, order_no, kind, payload";
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(sql)
            .bind(now)
            .bind(i64::from(id.is_some()))
            .bind(id.unwrap_or(0))
            .fetch_all(&mut *tx)
            .await?;
        let revived: Vec<(i64, Option<String>)> = rows
            .iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("order_no")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        let mut placements = Vec::new();
        for r in &rows {
            if r.try_get::<String, _>("kind")? == JobKind::PlaceOrder.as_str() {
                placements.extend(r.try_get::<Option<String>, _>("payload")?);
            }
        }
        if revived.is_empty() {
            return Ok(0);
        }
        // A failed placement whose job is retried is being placed again.
        for reference in &placements {
            sqlx::query(
                "UPDATE placements SET status = 'placing', error = NULL, updated_at = $1
                  WHERE reference = $2 AND status = 'failed'",
            )
            .bind(now)
            .bind(reference.clone())
            .execute(&mut *tx)
            .await?;
        }
        const LISTED: usize = 20;
        let mut ids: Vec<String> = revived
            .iter()
            .take(LISTED)
            .map(|(id, _)| id.to_string())
            .collect();
        if revived.len() > LISTED {
            ids.push(format!("and {} more", revived.len() - LISTED));
        }
        let order_no = match revived.as_slice() {
            [(_, order_no)] => order_no.clone(),
            _ => None,
        };
        let entry = crate::AuditEntry {
            actor: actor.to_owned(),
            action: crate::AuditAction::DeadLetterRetry,
            order_no,
            detail: format!(
                "{} dead letter(s) queued again: job(s) {}",
                revived.len(),
                ids.join(", ")
            ),
        };
        crate::audit::record(&mut tx, &entry, now).await?;
        tx.commit().await?;
        self.notify_jobs_changed();
        Ok(revived.len() as u64)
    }
}

/// What [`Store::job_wait_for_customer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerWait {
    /// The job waits for the registration (or its recheck time).
    Parked,
    /// The customer was registered meanwhile: the job is due again at once.
    CustomerArrived,
    /// The order's customer was erased while this job was under way: the job is cancelled,
    /// as erasure cancels the order's unsent emails.
    CustomerErased,
    /// The lease had expired and another worker holds the job; nothing was written.
    LeaseLost,
}

/// One attempt's timing, the worker that made it and where it went.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The worker holding the lease.
    pub worker: &'a str,
    /// When the notifier was called.
    pub started_at: i64,
    /// When it answered.
    pub finished_at: i64,
    /// The customer's address the notification was addressed to (customer notifiers);
    /// `None` for operator channels.
    pub recipient: Option<&'a str>,
}

/// How an attempt that did not die ended.
#[derive(Debug, Clone)]
pub(crate) enum Finish {
    /// The channel took it.
    Delivered {
        receipt: Option<String>,
        locale: Option<String>,
    },
    /// A transient failure; try again then.
    Retry { error: String, next_attempt_at: i64 },
}

/// What an attempt that did not die writes: the job's new state and its delivery-log entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ending<'a> {
    pub(crate) state: JobState,
    pub(crate) error: Option<&'a str>,
    pub(crate) next_attempt_at: Option<i64>,
    /// The log's `outcome`.
    pub(crate) outcome: AttemptOutcome,
    pub(crate) receipt: Option<&'a str>,
    /// The language of the message delivered.
    pub(crate) locale: Option<&'a str>,
}

impl<'a> Ending<'a> {
    /// A failed attempt that ends the job (`dead`, `cancelled`) with `error`.
    pub(crate) fn failed(state: JobState, outcome: AttemptOutcome, error: &'a str) -> Self {
        Ending {
            state,
            error: Some(error),
            next_attempt_at: None,
            outcome,
            receipt: None,
            locale: None,
        }
    }
}

impl Finish {
    pub(crate) fn ending(&self) -> Ending<'_> {
        match self {
            Finish::Delivered { receipt, locale } => Ending {
                state: JobState::Done,
                error: None,
                next_attempt_at: None,
                outcome: AttemptOutcome::Delivered,
                receipt: receipt.as_deref(),
                locale: locale.as_deref(),
            },
            Finish::Retry {
                error,
                next_attempt_at,
            } => Ending {
                state: JobState::Pending,
                error: Some(error),
                next_attempt_at: Some(*next_attempt_at),
                outcome: AttemptOutcome::Transient,
                receipt: None,
                locale: None,
            },
        }
    }
}

/// Ends a job this worker still holds the lease of, inside `tx`: its new state and its
/// attempt in the delivery log, as `ending` says. Returns false when the lease was lost
/// (nothing written).
pub(crate) async fn end_job(
    tx: &mut Transaction<'_, Any>,
    (job, attempt): (&ClaimedJob, &Attempt<'_>),
    ending: Ending<'_>,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(FINISH_JOB)
        .bind(ending.state.as_str())
        .bind(ending.error.map(str::to_owned))
        .bind(ending.next_attempt_at)
        .bind(attempt.finished_at)
        .bind(job.id)
        .bind(job.lease.clone())
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if changed != 1 {
        return Ok(false);
    }
    sqlx::query(RECORD_ATTEMPT)
        .bind(job.id)
        .bind(job.attempts)
        .bind(attempt.started_at)
        .bind(attempt.finished_at)
        .bind(ending.outcome.as_str())
        .bind(ending.error.map(str::to_owned))
        .bind(ending.receipt.map(str::to_owned))
        .bind(attempt.worker.to_owned())
        .bind(attempt.recipient.map(str::to_owned))
        .bind(ending.locale.map(str::to_owned))
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

/// The key of an order's one lookup job.
pub(crate) fn lookup_key(order_no: &str) -> String {
    format!("reconcile_lookup:{order_no}")
}

/// Writes scheduled work of the reconciler (`kind`, `key`, its order) due at `at`, unless a
/// job with `key` exists; on a pool or inside a caller's transaction. Returns whether it
/// wrote one.
pub(crate) async fn insert_scheduled<'e, E>(
    executor: E,
    (kind, key, order_no): (JobKind, &str, Option<&str>),
    now: i64,
    at: i64,
) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    Ok(sqlx::query(
        "INSERT INTO outbox_jobs (dedup_key, notifier, kind, order_no, state, attempts,
             created_at, updated_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $6)
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(key.to_owned())
    .bind(RECONCILER)
    .bind(kind.as_str())
    .bind(order_no.map(str::to_owned))
    .bind(now)
    .bind(at)
    .execute(executor)
    .await?
    .rows_affected()
        == 1)
}

/// Alert jobs about a job of `order_no`, each keyed `<prefix>:<notifier>` (one per notifier).
pub(crate) async fn insert_alert_jobs(
    tx: &mut Transaction<'_, Any>,
    (prefix, jobs): (&str, &[NewJob]),
    order_no: Option<&str>,
    at: i64,
) -> Result<(), StoreError> {
    for alert_job in jobs {
        let key = format!("{prefix}:{}", alert_job.notifier);
        insert_job(tx, alert_job, &key, order_no, None, at).await?;
    }
    Ok(())
}

/// A [`ClaimedJob`] from a row of [`JOB_COLUMNS`], with `$get` the driver's fallible
/// by-name getter (sqlx's `try_get`, rusqlite's `get`), in a function returning `StoreError`.
macro_rules! claimed_job_from_row {
    ($row:expr, $get:ident) => {{
        let kind: String = $row.$get("kind")?;
        let customer_alerted: i64 = $row.$get("customer_alerted")?;
        let lease: Option<String> = $row.$get("locked_by")?;
        $crate::ClaimedJob {
            id: $row.$get("id")?,
            dedup_key: $row.$get("dedup_key")?,
            notifier: $row.$get("notifier")?,
            kind: $crate::JobKind::parse(&kind)?,
            order_no: $row.$get("order_no")?,
            event_id: $row.$get("event_id")?,
            payload: $row.$get("payload")?,
            attempts: $row.$get("attempts")?,
            created_at: $row.$get("created_at")?,
            retry_from: $row.$get("retry_from")?,
            confirmed_at: $row.$get("confirmed_at")?,
            customer_alerted: customer_alerted != 0,
            lease: lease.unwrap_or_default(),
            recipient: $row.$get("recipient")?,
            customer_erased_at: $row.$get("customer_erased_at")?,
            context: None,
        }
    }};
}

pub(crate) use claimed_job_from_row;

/// A job from a row of a PostgreSQL claim ([`ClaimRequest::sql`]), with its context when the
/// claim read one (an order job whose event exists).
fn claimed_job_with_context(row: sqlx::any::AnyRow) -> Result<ClaimedJob, StoreError> {
    let mut job: ClaimedJob = claimed_job_from_row!(row, try_get);
    let event_id = claimed_context_name("id")
        .ok_or_else(|| StoreError::Corrupt("a claim reads no event id".to_owned()))?;
    let event: Option<i64> = row.try_get(event_id)?;
    if event.is_some() && job.order_no.is_some() {
        job.context = Some(std::sync::Arc::new(ContextRow::Claimed(row)));
    }
    Ok(job)
}

/// A token unique to one claim: the worker's name and a process-wide sequence number.
fn lease_token(worker: &str) -> String {
    static CLAIMS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = CLAIMS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{worker}#{n}")
}
