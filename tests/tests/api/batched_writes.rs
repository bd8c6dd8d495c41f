//! Writes that arrive together are committed together (SQLite's group-commit writer,
//! PostgreSQL's batched intake and outcome statements): each caller must still get its own
//! answer.

use esim_courier_core::Disposition;
use std::collections::HashSet;

use esim_courier_store::{
    now_ms, AttemptOutcome, Clock, JobKind, JobState, NewJob, Planned, Store,
};
use esim_courier_tests::{
    migrated_store, migrated_store_on, on_both_backends, received, test_db, Backend,
    SAMPLE_COMPLETED,
};
use serde_json::Value;
use sqlx::{AnyConnection, Connection, Row};

use crate::outbox::{add_jobs, attempt_now};

on_both_backends!(
    webhooks_recorded_together_each_get_their_own_answer,
    only_the_plan_written_reports_its_unrouted_alert,
    outcomes_reported_together_each_count_only_for_their_own_lease,
);

/// A COMPLETED webhook of `order_no` with ICCID `iccid`.
fn completed(order_no: &str, iccid: &str) -> String {
    let mut body: Value = serde_json::from_str(SAMPLE_COMPLETED).expect("the sample parses");
    body["orderNo"] = Value::from(order_no);
    body["iccid"] = Value::from(iccid);
    body.to_string()
}

fn failed(order_no: &str) -> String {
    format!(r#"{{"orderNo":"{order_no}","result":"FAILED","iccid":"","lpa":""}}"#)
}

/// Records `body` as the webhook would, with one job for each new event.
async fn intake(store: &Store, body: &str) -> esim_courier_store::IntakeOutcome {
    let (event, receipt) = received(body);
    store
        .intake(receipt, &event, |_, _| {
            vec![NewJob {
                notifier: "ops".into(),
                kind: JobKind::OrderFailed,
                payload: None,
            }]
            .into()
        })
        .await
        .expect("recorded")
}

/// 70 webhooks at the same moment: retries and contradicting results of orders that have a
/// result already, first results of new orders, and two deliveries each of five more. On
/// PostgreSQL the first results share a statement, and the ones whose order turns out to
/// have a result go through the full intake; on SQLite all share a commit. Each caller must
/// hear its own disposition and the ids of its own receipt and event, and every row must
/// belong to its own order.
async fn webhooks_recorded_together_each_get_their_own_answer(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = migrated_store(&db.url).await;
    for i in 0..10 {
        intake(
            &store,
            &completed(&format!("KNOWN-{i}"), "8965012300000000001"),
        )
        .await;
    }
    let mut deliveries: Vec<(String, String, &str)> = Vec::new();
    for i in 0..10 {
        let order = format!("KNOWN-{i}");
        let retry = completed(&order, "8965012300000000001");
        deliveries.push((order.clone(), retry, "duplicate"));
        deliveries.push((order.clone(), failed(&order), "conflict"));
    }
    for i in 0..40 {
        let order = format!("NEW-{i}");
        deliveries.push((order.clone(), failed(&order), "accepted"));
    }
    for i in 0..5 {
        let order = format!("TWICE-{i}");
        let body = completed(&order, &format!("89650123000000001{i:02}"));
        deliveries.push((order.clone(), body.clone(), "first of two"));
        deliveries.push((order, body, "first of two"));
    }

    let outcomes =
        futures_util::future::join_all(deliveries.iter().map(|(_, body, _)| intake(&store, body)))
            .await;

    let mut twice_accepted = std::collections::HashMap::<&str, usize>::new();
    for ((order, _, expected), outcome) in deliveries.iter().zip(&outcomes) {
        match (*expected, &outcome.disposition) {
            ("duplicate", Disposition::Duplicate)
            | ("conflict", Disposition::Conflict(_))
            | ("accepted", Disposition::Accepted) => {}
            ("first of two", Disposition::Accepted) => {
                *twice_accepted.entry(order.as_str()).or_default() += 1;
            }
            ("first of two", Disposition::Duplicate) => {}
            (expected, got) => panic!("{order}: expected {expected}, got {got:?}"),
        }
        let details = store
            .order_details(order)
            .await
            .expect("reads")
            .expect("the order exists");
        assert!(
            details.receipts.iter().any(|r| r.0 == outcome.receipt_id),
            "{order}: receipt {} is one of its own: {:?}",
            outcome.receipt_id,
            details.receipts
        );
        match outcome.event_id {
            Some(event) => {
                assert!(
                    details.events.iter().any(|e| e.id == event),
                    "{order}: event {event} is one of its own"
                );
                assert_eq!(outcome.jobs, 1, "{order}: its new event's job");
            }
            None => {
                assert_eq!(outcome.disposition, Disposition::Duplicate, "{order}");
                assert_eq!(outcome.jobs, 0, "{order}: a duplicate writes no job");
            }
        }
    }
    assert_eq!(twice_accepted.len(), 5, "{twice_accepted:?}");
    assert!(
        twice_accepted.values().all(|n| *n == 1),
        "one of each pair is accepted, the other is its duplicate: {twice_accepted:?}"
    );

    // Every event's receipt and every job's event belong to the same order.
    let mut conn = AnyConnection::connect(&db.url).await.expect("connects");
    let mismatched_receipts = count(
        &mut conn,
        "SELECT COUNT(*) FROM order_events e JOIN webhook_receipts r ON r.id = e.receipt_id
          WHERE r.order_no <> e.order_no",
    );
    assert_eq!(mismatched_receipts.await, 0);
    let mismatched_jobs = count(
        &mut conn,
        "SELECT COUNT(*) FROM outbox_jobs j JOIN order_events e ON e.id = j.event_id
          WHERE j.order_no <> e.order_no",
    );
    assert_eq!(mismatched_jobs.await, 0);
    // 10 + 10 retries + 10 conflicts + 40 + 10 receipts; 10 + 10 + 40 + 5 events and jobs.
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM webhook_receipts").await,
        80
    );
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM order_events").await,
        65
    );
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM outbox_jobs").await,
        65
    );
    conn.close().await.expect("closes");
    store.close().await;
}

async fn count(conn: &mut AnyConnection, sql: &'static str) -> i64 {
    sqlx::query(sql)
        .fetch_one(conn)
        .await
        .expect("counts")
        .try_get(0)
        .expect("a count")
}

/// Delivery outcomes reported at the same moment (on SQLite they share a commit; on
/// PostgreSQL the ones queued while an outcome writer is busy share a statement, where a
/// job can come twice: from its expired lease and from the lease that took it over): each
/// caller must hear whether its own lease was held, and the delivery log must hold exactly
/// the attempts whose leases were. Worker A reports 40 jobs, 15 of which worker B took over
/// after A's lease expired and reports in the same moment, some delivered and some to be
/// tried again.
async fn outcomes_reported_together_each_count_only_for_their_own_lease(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let clock = Clock::manual(now_ms());
    let store = migrated_store_on(&db.url, clock.clone()).await;
    add_jobs(&store, 40).await;
    let a = store.claim("worker-a", 300, 40).await.expect("claims");
    assert_eq!(a.len(), 40);
    clock.advance(std::time::Duration::from_millis(301));
    let b = store.claim("worker-b", 30_000, 15).await.expect("claims");
    assert_eq!(b.len(), 15, "A's leases expired: B takes 15 of its jobs");
    let taken_over: HashSet<i64> = b.iter().map(|j| j.id).collect();
    let retry_at = now_ms() + 3_600_000;

    let (by_a, by_b) = (attempt_now("worker-a"), attempt_now("worker-b"));
    let receipts: Vec<String> = a.iter().map(|j| format!("a-{}", j.id)).collect();
    let a_reports = futures_util::future::join_all(
        a.iter()
            .zip(&receipts)
            .map(|(job, receipt)| store.job_delivered(job, &by_a, Some(receipt))),
    );
    let b_reports = futures_util::future::join_all(b.iter().map(|job| {
        let store = &store;
        let by_b = &by_b;
        async move {
            if job.id % 2 == 0 {
                store.job_retry(job, by_b, "mailbox busy", retry_at).await
            } else {
                store.job_delivered(job, by_b, Some("b")).await
            }
        }
    }));
    let (a_written, b_written) = tokio::join!(a_reports, b_reports);

    for (job, written) in a.iter().zip(a_written) {
        assert_eq!(
            written.expect("records"),
            !taken_over.contains(&job.id),
            "A's outcome of job {} counts only while A still holds its lease",
            job.id
        );
    }
    for (job, written) in b.iter().zip(b_written) {
        assert!(written.expect("records"), "B holds job {}'s lease", job.id);
    }
    for job in &a {
        let order_no = job.order_no.as_deref().expect("an order's job");
        let details = store
            .order_details(order_no)
            .await
            .expect("reads")
            .expect("the order exists");
        let [stored] = details.jobs.as_slice() else {
            panic!("one job for {order_no}: {:?}", details.jobs);
        };
        let [logged] = stored.attempt_log.as_slice() else {
            panic!(
                "one attempt logged for job {}: {:?}",
                job.id, stored.attempt_log
            );
        };
        if !taken_over.contains(&job.id) {
            assert_eq!(stored.state, JobState::Done, "job {}", job.id);
            assert_eq!(
                (
                    logged.attempt,
                    logged.worker.as_str(),
                    logged.receipt.as_deref()
                ),
                (1, "worker-a", Some(format!("a-{}", job.id)).as_deref()),
                "job {}",
                job.id
            );
            assert_eq!(logged.outcome, AttemptOutcome::Delivered);
        } else if job.id % 2 == 0 {
            assert_eq!(stored.state, JobState::Pending, "job {}", job.id);
            assert_eq!(stored.next_attempt_at, retry_at, "job {}", job.id);
            assert_eq!(stored.last_error.as_deref(), Some("mailbox busy"));
            assert_eq!(
                (logged.attempt, logged.worker.as_str(), logged.outcome),
                (2, "worker-b", AttemptOutcome::Transient),
                "job {}",
                job.id
            );
            assert_eq!(logged.error.as_deref(), Some("mailbox busy"));
        } else {
            assert_eq!(stored.state, JobState::Done, "job {}", job.id);
            assert_eq!(
                (
                    logged.attempt,
                    logged.worker.as_str(),
                    logged.receipt.as_deref()
                ),
                (2, "worker-b", Some("b")),
                "job {}",
                job.id
            );
            assert_eq!(logged.outcome, AttemptOutcome::Delivered);
        }
    }
    store.close().await;
}

/// A provider retry: on PostgreSQL the planner first runs as if the order had no result
/// (one statement records a first result), then again with the real disposition. An alert
/// that only the first, unwritten plan raised must not be reported (the store logs the
/// reported one as "no notifier is routed").
async fn only_the_plan_written_reports_its_unrouted_alert(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = migrated_store(&db.url).await;
    let body = failed("RETRIED-1");
    let (event, receipt) = received(&body);
    let alert = esim_courier_core::Alert::about_event(
        esim_courier_core::AlertKind::UnrecognisedResult,
        &event,
        "an alert kind no route takes".into(),
        now_ms(),
    );
    // Accepted plans raise an alert no route takes; other dispositions raise none.
    let plan = move |_: &_, d: &Disposition| Planned {
        jobs: Vec::new(),
        unrouted: (*d == Disposition::Accepted).then(|| alert.clone()),
    };
    let first = store
        .intake(receipt, &event, plan.clone())
        .await
        .expect("recorded");
    assert_eq!(first.disposition, Disposition::Accepted);
    assert!(
        first.unrouted.is_some(),
        "the written plan's alert is reported"
    );
    let retry = store.intake(receipt, &event, plan).await.expect("recorded");
    assert_eq!(retry.disposition, Disposition::Duplicate);
    assert_eq!(retry.unrouted, None, "the retry wrote no plan");
    store.close().await;
}

/// The benchmark's `store --statements` reads what the SQLite writer timed: each statement of
/// an intake, and the commit, with how many times it ran. A store opened without the option
/// times nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_writer_times_its_statements_when_asked() {
    let timed = |sql_start: &str| {
        esim_courier_store::sqlite_statement_timings()
            .into_iter()
            .filter(|s| s.sql.starts_with(sql_start))
            .map(|s| s.runs)
            .sum::<u64>()
    };
    let db = test_db(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    let plain = migrated_store(&db.url).await;
    let receipts_before = timed("INSERT INTO webhook_receipts");
    intake(&plain, &completed("TIMED-0", "8988247000102099990")).await;
    plain.close().await;
    // No other test of this process opens a store with the option.
    let untimed = timed("INSERT INTO webhook_receipts") - receipts_before;

    let db = test_db(Backend::Sqlite)
        .await
        .expect("SQLite is always there");
    let options = esim_courier_store::StoreOptions {
        statement_timings: true,
        ..esim_courier_store::StoreOptions::new(&db.url, esim_courier_tests::test_keys())
    };
    let store = Store::connect(&options).await.expect("connects");
    store.migrate().await.expect("migrates");
    let (receipts, commits) = (timed("INSERT INTO webhook_receipts"), timed("COMMIT"));
    for n in 1..=3 {
        intake(
            &store,
            &completed(&format!("TIMED-{n}"), "8988247000102099990"),
        )
        .await;
    }
    // A claim reads each order job's context in the writer (one statement per job), so the
    // delivery needs no read of its own on another connection.
    let contexts = timed("SELECT e.id, e.order_no");
    let jobs = store.claim("worker", 30_000, 10).await.expect("claims");
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert_eq!(timed("SELECT e.id, e.order_no") - contexts, 3);
    for job in &jobs {
        let ctx = store.job_context(job).await.expect("the context is read");
        let event = ctx.event.expect("an order job has its event");
        assert_eq!(Some(event.order_no.as_str()), job.order_no.as_deref());
        assert_eq!(event.iccid, "8988247000102099990");
    }
    store.close().await;
    assert!(
        timed("INSERT INTO webhook_receipts") - receipts >= 3,
        "each intake's receipt is timed: {:?}",
        esim_courier_store::sqlite_statement_timings()
    );
    assert!(timed("COMMIT") > commits, "the commits are timed");
    assert!(esim_courier_store::sqlite_statement_timings()
        .iter()
        .all(|s| !s.sql.is_empty() && s.runs > 0 && !s.sql.contains("  ")));
    assert_eq!(
        untimed, 0,
        "a store opened without the option times nothing"
    );
}

/// PostgreSQL: a batch of outcomes that meets a deadlock is written again one outcome at a
/// time, as `pg_outcome.rs` says. Another transaction holds the last job's row, then asks
/// for the one before it, which the batch has locked on its way; PostgreSQL ends the batch,
/// whose `deadlock_timeout` passes first. Every delivery must still hear that its outcome
/// counted, with each job done and its attempt logged once. Before, each outcome of the
/// batch got the deadlock as an error: their leases would expire and the emails go out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_outcomes_that_meets_a_deadlock_is_written_one_at_a_time() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let store = migrated_store(&db.url).await;
    add_jobs(&store, 40).await;
    let jobs = store.claim("worker-a", 60_000, 40).await.expect("claims");
    assert_eq!(jobs.len(), 40);
    let (held, wanted) = (jobs[39].id, jobs[38].id);
    let mut other = AnyConnection::connect(&db.url).await.expect("connects");
    let before = deadlocks(&mut other).await;
    sqlx::raw_sql("BEGIN; SET LOCAL deadlock_timeout = '10s'")
        .execute(&mut other)
        .await
        .expect("begins");
    sqlx::query("SELECT id FROM outbox_jobs WHERE id = $1 FOR UPDATE")
        .bind(held)
        .fetch_one(&mut other)
        .await
        .expect("locks the last job");

    let by = attempt_now("worker-a");
    let outcomes = futures_util::future::join_all(
        jobs.iter()
            .map(|job| store.job_delivered(job, &by, Some("250 ok"))),
    );
    let other_side = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let got = sqlx::query("SELECT id FROM outbox_jobs WHERE id = $1 FOR UPDATE")
            .bind(wanted)
            .fetch_one(&mut other)
            .await
            .map(|_| ());
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut other)
            .await
            .expect("rolls back");
        got
    };
    let (written, got) = tokio::join!(outcomes, other_side);
    got.expect("the other transaction got the row once the batch was ended");
    for (job, written) in jobs.iter().zip(written) {
        assert!(
            written.expect("the outcome is recorded"),
            "job {}: the lease held",
            job.id
        );
    }
    let count = |sql: &'static str| {
        let url = db.url.clone();
        async move {
            let mut conn = AnyConnection::connect(&url).await.expect("connects");
            sqlx::query(sql)
                .fetch_one(&mut conn)
                .await
                .expect("counted")
                .try_get::<i64, _>("n")
                .expect("n")
        }
    };
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM outbox_jobs WHERE state = 'done'").await,
        40
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM delivery_attempts").await,
        40
    );
    // The deadlock did happen: otherwise this test would show nothing. A server process
    // reports its counts when it ends at the latest: close the store's connections first.
    store.close().await;
    let after = deadlocks_after(&mut other, before).await;
    assert_eq!(
        after,
        before + 1,
        "one deadlock, between the batch and the other transaction"
    );
}

/// A batch of outcomes meets a job whose row another transaction changed and committed while
/// the batch waited for it (an erasure marking a delivery under way does so): the batch
/// locks the row's newest version, which its update cannot see. Each delivery's outcome is
/// still written, the changed job's too, rather than reported as a lost lease (which would
/// leave the job in flight until its lease expired, then deliver it again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_outcomes_writes_the_outcome_of_a_job_changed_under_it() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let store = migrated_store(&db.url).await;
    add_jobs(&store, 40).await;
    let jobs = store.claim("worker-a", 60_000, 40).await.expect("claims");
    assert_eq!(jobs.len(), 40);
    let changed = jobs[39].id;
    let mut other = AnyConnection::connect(&db.url).await.expect("connects");
    sqlx::raw_sql("BEGIN")
        .execute(&mut other)
        .await
        .expect("begins");
    sqlx::query("UPDATE outbox_jobs SET updated_at = updated_at + 1 WHERE id = $1")
        .bind(changed)
        .execute(&mut other)
        .await
        .expect("changes the last job");

    let by = attempt_now("worker-a");
    let outcomes = futures_util::future::join_all(
        jobs.iter()
            .map(|job| store.job_delivered(job, &by, Some("250 ok"))),
    );
    let other_side = async {
        // The outcomes are waiting for the changed row by now: commit the change.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        sqlx::raw_sql("COMMIT")
            .execute(&mut other)
            .await
            .expect("commits");
    };
    let (written, ()) = tokio::join!(outcomes, other_side);
    for (job, written) in jobs.iter().zip(written) {
        assert!(
            written.expect("the outcome is recorded"),
            "job {}: the lease held",
            job.id
        );
    }
    let done: i64 = sqlx::query("SELECT COUNT(*) AS n FROM outbox_jobs WHERE state = 'done'")
        .fetch_one(&mut other)
        .await
        .expect("counted")
        .try_get("n")
        .expect("n");
    assert_eq!(done, 40);
    let logged: i64 = sqlx::query("SELECT COUNT(*) AS n FROM delivery_attempts")
        .fetch_one(&mut other)
        .await
        .expect("counted")
        .try_get("n")
        .expect("n");
    assert_eq!(logged, 40);
    store.close().await;
}

/// The deadlocks PostgreSQL has counted in this test's database once it counts more than
/// `before`, or after 15 s. A server process reports its counts when it ends at the latest:
/// close the connections of the transaction that was ended first.
pub(crate) async fn deadlocks_after(conn: &mut AnyConnection, before: i64) -> i64 {
    let mut after = before;
    for _ in 0..150 {
        after = deadlocks(conn).await;
        if after > before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    after
}

/// The deadlocks PostgreSQL has counted in this test's database.
pub(crate) async fn deadlocks(conn: &mut AnyConnection) -> i64 {
    sqlx::query("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(conn)
        .await
        .expect("read")
        .try_get("deadlocks")
        .expect("deadlocks")
}
