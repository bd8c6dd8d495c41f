//! PostgreSQL: the outcomes of deliveries that finish together are written together.
//!
//! Each delivery ends with its outcome: the job's new state and its attempt in the delivery
//! log, one statement ([`FINISH_ATTEMPT_PG`]) committed on its own. While a backlog is delivered,
//! sixteen deliveries finish within a millisecond or two of each other, and each outcome paid
//! its own executor start-up, commit and round trip on the database server's CPU, which
//! the webhooks arriving meanwhile need too. Through a [`BatchWriter`] the outcomes queued
//! while the writers are busy share one statement ([`finish_attempts`]) and one commit; an
//! outcome that finds a writer idle goes at once, alone, so a quiet service waits for
//! nobody. Each delivery still hears only after the commit that holds its outcome, and only
//! whether its own lease still held. SQLite's outcomes share its group-commit writer's
//! commits instead (group_commit.rs).

use std::collections::HashSet;

use sqlx::{Any, AnyPool};

use crate::outbox::{Ending, FINISH_ATTEMPT_PG};
use crate::pg_batch::{by_position, one_at_a_time, values_rows, BatchWriter, Batched};
use crate::{Attempt, ClaimedJob, StoreError};

/// One delivery's outcome, owned, for the writer.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    state: &'static str,
    error: Option<String>,
    next_attempt_at: Option<i64>,
    finished_at: i64,
    job: i64,
    lease: String,
    attempt: i64,
    started_at: i64,
    outcome: &'static str,
    receipt: Option<String>,
    worker: String,
    /// Sealed for the attempt's row.
    recipient: Option<String>,
    locale: Option<String>,
}

impl Outcome {
    /// The outcome `ending` of `job`'s attempt (its recipient already sealed).
    pub(crate) fn new(job: &ClaimedJob, attempt: &Attempt<'_>, ending: &Ending<'_>) -> Self {
        Self {
            state: ending.state.as_str(),
            error: ending.error.map(str::to_owned),
            next_attempt_at: ending.next_attempt_at,
            finished_at: attempt.finished_at,
            job: job.id,
            lease: job.lease.clone(),
            attempt: job.attempts,
            started_at: attempt.started_at,
            outcome: ending.outcome.as_str(),
            receipt: ending.receipt.map(str::to_owned),
            worker: attempt.worker.to_owned(),
            recipient: attempt.recipient.map(str::to_owned),
            locale: ending.locale.map(str::to_owned),
        }
    }
}

/// PostgreSQL's outcome writer.
pub(crate) type Outcomes = BatchWriter<Outcome>;

impl Batched for Outcome {
    /// Whether the lease still held: the outcome and its log entry were written.
    type Out = bool;
    const WHAT: &'static str = "delivery outcomes";
    /// 13 parameters each; the dispatcher has 16 deliveries under way by default.
    const MAX_BATCH: usize = 64;

    async fn write_one(pool: &AnyPool, row: &Self) -> Result<bool, StoreError> {
        let logged = bind(sqlx::query(FINISH_ATTEMPT_PG), row)
            .execute(pool)
            .await?
            .rows_affected();
        Ok(logged == 1)
    }

    async fn write_many(
        pool: &AnyPool,
        rows: &[&Self],
    ) -> Result<Vec<Result<bool, StoreError>>, StoreError> {
        // A lease is one delivery's, so a batch holds each (job, lease) once. A job may come
        // twice, from a delivery whose lease expired and from the one that claimed it again:
        // the statement matches each outcome to the row by both, so only the lease holder's
        // is written. Should a lease come twice (a defect), each outcome is written on its
        // own, as without batching.
        let mut seen = HashSet::with_capacity(rows.len());
        if !rows.iter().all(|r| seen.insert((r.job, r.lease.as_str()))) {
            return Ok(one_at_a_time(pool, rows).await);
        }
        let sql = sqlx::AssertSqlSafe(finish_attempts(rows.len()));
        let mut query = sqlx::query::<Any>(sql);
        for row in rows {
            query = bind(query, row);
        }
        let written = by_position(&query.fetch_all(pool).await?, rows.len(), |_| Ok(()))?;
        // An outcome the batch did not write: its lease was lost (expired and claimed again),
        // or its job's row changed after the statement began (an erasure marking it): the
        // batch then locks a version of the row that its update, reading with the
        // statement's snapshot by the locked row's address, cannot see. Such an outcome is
        // written alone, by the single statement, which finds the row by its key and checks
        // the lease on its newest version; a lost lease is still lost there.
        let mut out = Vec::with_capacity(rows.len());
        for (row, written) in rows.iter().zip(written) {
            out.push(match written {
                Some(()) => Ok(true),
                None => Self::write_one(pool, row).await,
            });
        }
        Ok(out)
    }
}

/// Binds `row`'s 13 parameters, in [`FINISH_ATTEMPT_PG`]'s order (also [`finish_attempts`]').
fn bind<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    row: &Outcome,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    query
        .bind(row.state)
        .bind(row.error.clone())
        .bind(row.next_attempt_at)
        .bind(row.finished_at)
        .bind(row.job)
        .bind(row.lease.clone())
        .bind(row.attempt)
        .bind(row.started_at)
        .bind(row.outcome)
        .bind(row.receipt.clone())
        .bind(row.worker.clone())
        .bind(row.recipient.clone())
        .bind(row.locale.clone())
}

/// The statement that writes `rows` delivery outcomes at once on PostgreSQL (see
/// [`finish_attempts`]). For inspecting its plan (`PREPARE` it, then `EXPLAIN EXECUTE`), as
/// the suite that keeps its cached plan bounded does.
#[doc(hidden)]
pub fn outcome_batch_statement(rows: usize) -> String {
    finish_attempts(rows)
}

/// [`FINISH_ATTEMPT_PG`] for `rows` outcomes in one statement, committed on its own: row
/// `n`'s 13 parameters follow row `n - 1`'s. Each outcome updates its job only while the job
/// is in flight under its lease, and logs its attempt only if it did (its `n` joins the two;
/// a statement's data-modifying parts all run to completion, read or not), without its
/// recipient when the customer was erased during the attempt (the locked job's
/// `customer_erased_at`, as in the single statement). Returns the
/// position `n` (from 0) of each outcome written; one whose lease was lost (expired and
/// claimed again) gets nothing written and no row. Only a stale lease's outcome can meet
/// another batch's row, and a batch the database refuses for it (a deadlock) is written
/// again one outcome at a time (pg_batch.rs).
///
/// Its shape keeps its plan bounded. PostgreSQL caches a generic plan for a prepared
/// statement, and one made while the outbox was nearly empty stays in use as it grows: a
/// plain join of these rows with the outbox was planned there as a walk of every job for
/// each outcome (3,000 jobs in flight: 24,000 rows read for 8 outcomes; the batched context
/// read tried earlier did the same, BENCHMARKS.md). Here each outcome locks its job by the
/// primary key in a subquery of its own, checked for its lease once locked (`OFFSET 0`
/// keeps that check out of the subquery, where the partial index of jobs in flight would be
/// chosen and walked whole; `FOR UPDATE` gives the row as it is now), and the update takes
/// the locked row by its physical address (`ctid`). Only a claim of an expired lease changes
/// a job in flight: its lease is then lost, and the outcome is not written, as with the
/// single statement. The suite test
/// `an_outcome_batch_planned_on_an_empty_outbox_reads_only_its_jobs` holds the plan to this.
fn finish_attempts(rows: usize) -> String {
    const TYPES: [&str; 13] = [
        "text", "text", "bigint", "bigint", "bigint", "text", "bigint", "bigint", "text", "text",
        "text", "text", "text",
    ];
    let values = values_rows(rows, &TYPES);
    format!(
        "WITH v (n, state, error, next_attempt_at, finished_at, job, lease, attempt, started_at,
                 outcome, receipt, worker, recipient, locale)
              AS (VALUES {values}),
         t AS (
             SELECT v.*, j.at, j.erased FROM v CROSS JOIN LATERAL (
                 SELECT ctid AS at, locked_by, state, customer_erased_at AS erased
                   FROM outbox_jobs WHERE id = v.job
                 OFFSET 0 FOR UPDATE) j
              WHERE j.locked_by = v.lease AND j.state = 'in_flight'),
         f AS (
             UPDATE outbox_jobs o
                SET state = t.state, last_error = t.error,
                    next_attempt_at = COALESCE(t.next_attempt_at, o.next_attempt_at),
                    locked_until = NULL, locked_by = NULL, updated_at = t.finished_at,
                    recipient = CASE WHEN t.erased IS NULL THEN o.recipient END
               FROM t
              WHERE o.ctid = t.at AND o.id = t.job
             RETURNING t.n),
         a AS (
             INSERT INTO delivery_attempts (job_id, attempt, started_at, finished_at, outcome, error,
                 receipt, worker, recipient, locale)
             SELECT t.job, t.attempt, t.started_at, t.finished_at, t.outcome, t.error, t.receipt,
                    t.worker, CASE WHEN t.erased IS NULL THEN t.recipient END, t.locale
               FROM t JOIN f ON f.n = t.n)
    SELECT n::bigint AS n FROM f"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batched_statement_binds_each_outcome_in_the_single_statement_order() {
        let sql = finish_attempts(2);
        // Row 0 takes $1..$13 and row 1 $14..$26, typed as the single statement binds them.
        assert!(sql.contains("(0, $1::text, $2::text, $3::bigint, $4::bigint, $5::bigint, $6::text, $7::bigint, $8::bigint, $9::text, $10::text, $11::text, $12::text, $13::text)"), "{sql}");
        assert!(sql.contains("(1, $14::text,"), "{sql}");
        assert!(!sql.contains("$27"), "{sql}");
    }
}
