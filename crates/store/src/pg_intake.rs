//! PostgreSQL: the webhooks that arrive together are recorded together.
//!
//! An order's first result (nearly every webhook) is one statement, [`first_events`]:
//! order, receipt, event and outbox jobs. Through a [`BatchWriter`] the ones waiting while
//! the writers are busy share that statement (its multi-row form) and one commit, as SQLite's
//! group-commit writer does for its intakes. Each caller is still answered only after the
//! commit that holds its webhook ("2xx only after commit"), and hears only its own result:
//! its ids, or `None` when its order turned out to have a result already (then nothing of it
//! was written and the caller takes the full intake, which reads the order's events).

use std::collections::HashSet;
use std::sync::LazyLock;

use sqlx::{Any, AnyPool, Row};

use crate::intake::EventColumns;
use crate::pg_batch::{by_position, one_at_a_time, values_rows, BatchWriter, Batched};
use crate::StoreError;

/// An order's first result, as [`first_events`] binds it.
#[derive(Debug, Clone)]
pub(crate) struct FirstEvent {
    pub(crate) received_at: i64,
    pub(crate) remote_addr: Option<String>,
    pub(crate) order_no: String,
    /// The sealed body.
    pub(crate) body: Vec<u8>,
    pub(crate) source: &'static str,
    /// The event (its activation code sealed); the statement records it as accepted.
    pub(crate) event: EventColumns,
    pub(crate) now: i64,
    /// The outbox jobs, as the JSON array the statement reads.
    pub(crate) jobs: String,
}

/// The receipt's and the event's ids of a first result recorded.
pub(crate) type Recorded = Option<(i64, i64)>;

/// PostgreSQL's intake writer.
pub(crate) type Intakes = BatchWriter<FirstEvent>;

impl Batched for FirstEvent {
    type Out = Recorded;
    const WHAT: &'static str = "webhooks";
    /// 16 parameters each.
    const MAX_BATCH: usize = 64;

    async fn write_one(pool: &AnyPool, row: &Self) -> Result<Recorded, StoreError> {
        // Built once from the row count alone: every value is a bound parameter.
        static ONE: LazyLock<String> = LazyLock::new(|| first_events(1));
        let recorded = bind(sqlx::query(sqlx::AssertSqlSafe(ONE.as_str())), row)
            .fetch_optional(pool)
            .await;
        match recorded {
            Ok(Some(r)) => Ok(Some((r.try_get("receipt_id")?, r.try_get("event_id")?))),
            Ok(None) => Ok(None),
            // The order's count said "no event" but one with this fingerprint exists (a count
            // written by hand, or a defect): the statement wrote nothing; the full intake
            // reads the events themselves, so the provider's retry is still a duplicate.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tracing::warn!(order_no = %row.order_no, "orders.recorded_events is 0 but the order has this event; taking the full intake");
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn write_many(
        pool: &AnyPool,
        rows: &[&Self],
    ) -> Result<Vec<Result<Recorded, StoreError>>, StoreError> {
        // One statement cannot upsert an order twice: two deliveries of one order in a batch
        // (the provider's retry racing its first try) are written one after the other, as
        // they would be without batching, each with its own result.
        let mut seen = HashSet::with_capacity(rows.len());
        if !rows.iter().all(|r| seen.insert(r.order_no.as_str())) {
            return Ok(one_at_a_time(pool, rows).await);
        }
        let sql = sqlx::AssertSqlSafe(first_events(rows.len()));
        let mut query = sqlx::query::<Any>(sql);
        for row in rows {
            query = bind(query, row);
        }
        let recorded = by_position(&query.fetch_all(pool).await?, rows.len(), |r| {
            Ok((r.try_get("receipt_id")?, r.try_get("event_id")?))
        })?;
        Ok(recorded.into_iter().map(Ok).collect())
    }
}

/// Binds `row`'s 16 parameters, in [`first_events`]' order.
fn bind<'q>(
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
    row: &FirstEvent,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments> {
    query
        .bind(row.received_at)
        .bind(row.remote_addr.clone())
        .bind(row.order_no.clone())
        .bind(row.body.clone())
        .bind(row.source)
        .bind(row.event.result.clone())
        .bind(row.event.fingerprint.clone())
        .bind(row.event.iccid.clone())
        .bind(row.event.lpa.clone())
        .bind(row.event.package_code.clone())
        .bind(row.event.package_name.clone())
        .bind(row.event.currency.clone())
        .bind(row.event.price.clone())
        .bind(row.event.warnings.clone())
        .bind(row.now)
        .bind(row.jobs.clone())
}

/// The first results of `rows` different orders in one statement, committed on its own
/// (autocommit): one round trip instead of the full intake's four and one per job, plus
/// `BEGIN` and `COMMIT`. Each order row is created, or taken only while it records no event
/// (`recorded_events = 0`): `ON CONFLICT DO UPDATE` waits for a concurrent delivery's row
/// lock and then checks that condition on the row as that delivery left it, so two first
/// deliveries of one order never both get here. Then the receipt, the event and the jobs
/// (JSON: `dedup_key` or null for a job keyed by event, `notifier`, `kind`, `payload`) as the
/// full intake writes them.
///
/// Each row's 16 parameters: received at, remote address, order, sealed body, source, the
/// event's `result`, `fingerprint`, `iccid`, `lpa`, `package_code`, `package_name`,
/// `currency`, `price`, `warnings`, now, the jobs; the first row's are `$1`..`$16`, the next
/// row's `$17`..`$32`, and so on. Returns, for each order that had no result yet, its
/// position `n` (from 0) and the receipt's and event's ids. An order that has one gets
/// nothing written and no row: the caller runs the full intake, which reads its events and
/// applies the rules. The orders are upserted in their numbers' order, so two batches never
/// wait on each other's order rows in opposite orders.
fn first_events(rows: usize) -> String {
    const TYPES: [&str; 16] = [
        "bigint", "text", "text", "bytea", "text", "text", "text", "text", "text", "text", "text",
        "text", "text", "text", "bigint", "json",
    ];
    let values = values_rows(rows, &TYPES);
    format!(
        "WITH i (n, received_at, remote_addr, order_no, body, source, result, fingerprint, iccid, lpa,
                 package_code, package_name, currency, price, warnings, now, jobs)
              AS (VALUES {values}),
         o AS (
             INSERT INTO orders (order_no, created_at, updated_at, state, recorded_events)
             SELECT order_no, now, now, result, 1 FROM i ORDER BY order_no
             ON CONFLICT (order_no) DO UPDATE
                SET state = excluded.state, updated_at = excluded.updated_at, recorded_events = 1
              WHERE orders.recorded_events = 0
             RETURNING order_no),
         r AS (
             INSERT INTO webhook_receipts (received_at, remote_addr, order_no, outcome, http_status, body, source)
             SELECT i.received_at, i.remote_addr, i.order_no, 'accepted', 200, i.body, i.source
               FROM i JOIN o ON o.order_no = i.order_no
             RETURNING id, order_no),
         e AS (
             INSERT INTO order_events (order_no, receipt_id, received_at, result, disposition, fingerprint,
                 iccid, lpa, package_code, package_name, currency, price, warnings, source)
             SELECT i.order_no, r.id, i.received_at, i.result, 'accepted', i.fingerprint, i.iccid, i.lpa,
                    i.package_code, i.package_name, i.currency, i.price, i.warnings, i.source
               FROM i JOIN r ON r.order_no = i.order_no
             RETURNING id, order_no, receipt_id),
         j AS (
             INSERT INTO outbox_jobs (dedup_key, notifier, kind, order_no, event_id, payload, state,
                 attempts, created_at, updated_at, next_attempt_at)
             SELECT COALESCE(j.dedup_key, 'event:' || e.id || ':' || j.kind || ':' || j.notifier),
                    j.notifier, j.kind, i.order_no, e.id, j.payload, 'pending', 0, i.now, i.now, i.now
               FROM i JOIN e ON e.order_no = i.order_no,
                    json_to_recordset(i.jobs) AS j(dedup_key TEXT, notifier TEXT, kind TEXT, payload TEXT)
             ON CONFLICT (dedup_key) DO NOTHING)
    SELECT i.n::bigint AS n, e.receipt_id, e.id AS event_id FROM i JOIN e ON e.order_no = i.order_no"
    )
}
