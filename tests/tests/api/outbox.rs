//! Outbox claims at the store level: leases and concurrent claimers.

use std::collections::HashSet;

use esim_courier_core::{
    ActivationCode, Currency, Customer, EmailAddress, EventSource, Locale, Money, OrderResult,
};
use esim_courier_store::{now_ms, Attempt, Clock, JobKind, NewJob, Store};
use esim_courier_tests::{on_both_backends, test_db, Backend};
use sqlx::{Connection, Executor, Row};

on_both_backends!(
    an_expired_lease_makes_the_job_claimable_again,
    two_claimers_never_take_the_same_job,
    an_unreadable_job_becomes_a_dead_letter_and_the_others_are_still_claimed,
    claims_take_the_earliest_due_jobs_first,
    a_claim_tells_when_the_next_job_falls_due,
    a_claimed_jobs_context_holds_its_event_and_its_registered_customer,
);

use esim_courier_tests::migrated_store as store;

/// An attempt by `worker` that starts and ends now (to an operator channel: no recipient).
pub(crate) fn attempt_now(worker: &str) -> Attempt<'_> {
    Attempt {
        worker,
        started_at: now_ms(),
        finished_at: now_ms(),
        recipient: None,
    }
}

pub(crate) async fn add_jobs(store: &Store, n: usize) {
    add_jobs_from(store, 0, n).await;
}

/// Jobs for orders `JOB-<first>`..: one FAILED order each.
async fn add_jobs_from(store: &Store, first: usize, n: usize) {
    for i in first..first + n {
        let body = format!(r#"{{"orderNo":"JOB-{i}","result":"FAILED"}}"#);
        let (event, receipt) = esim_courier_tests::received(&body);
        store
            .intake(receipt, &event, |_, _| {
                vec![NewJob {
                    notifier: "n".into(),
                    kind: JobKind::OrderFailed,
                    payload: None,
                }]
                .into()
            })
            .await
            .expect("recorded");
    }
}

/// What a claimed activation job becomes a notification from: the event as recorded (its
/// activation code opened) and the order's registered customer, every column read back as
/// written. It is read with the claim: by SQLite's writer in the claim's transaction, on
/// PostgreSQL in the claim's statement.
async fn a_claimed_jobs_context_holds_its_event_and_its_registered_customer(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = store(&db.url).await;
    let (event, receipt) = esim_courier_tests::received(esim_courier_tests::SAMPLE_COMPLETED);
    store
        .intake(receipt, &event, |_, _| {
            vec![NewJob {
                notifier: "customer-email".into(),
                kind: JobKind::OrderCompleted,
                payload: None,
            }]
            .into()
        })
        .await
        .expect("recorded");
    let customer = Customer {
        email: EmailAddress::parse("ana.sousa@example.com").expect("an address"),
        name: Some("Ana Sousa".into()),
        locale: Some(Locale::parse("pt-BR").expect("a locale")),
        retail_price: Some(Money::parse("12.50", Currency::from_code("EUR")).expect("a price")),
    };
    store
        .register_customer(&event.order_no, &customer)
        .await
        .expect("registered");

    let jobs = store.claim("worker", 30_000, 10).await.expect("claims");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    // The claim read the context (on both engines): a registration committed after it is
    // for the next claim to read, not this delivery.
    let later = Customer {
        email: EmailAddress::parse("ana.new@example.com").expect("an address"),
        ..customer.clone()
    };
    store
        .register_customer(&event.order_no, &later)
        .await
        .expect("registered again before delivery");
    let ctx = store
        .job_context(&jobs[0])
        .await
        .expect("the context is read");
    assert_eq!(ctx.customer.as_ref(), Some(&customer));
    let recorded = ctx.event.expect("an order job has its event");
    assert_eq!(Some(recorded.id), jobs[0].event_id);
    assert_eq!(recorded.order_no, event.order_no);
    assert_eq!(recorded.result, OrderResult::Completed);
    assert_eq!(recorded.iccid, "8910010000xxxxxxxxxx");
    assert_eq!(
        recorded
            .activation_code
            .as_ref()
            .map(ActivationCode::qr_text),
        Some("LPA:1$rsp.demo$69C32E7Dxxxxxxxx".to_owned())
    );
    assert_eq!(recorded.package_code.as_deref(), Some("YN2602130xxxxxx"));
    assert_eq!(
        recorded.package_name.as_deref(),
        Some("Malaysia, 1 Day, 1GB, 256kbps")
    );
    assert_eq!(
        recorded.contract_price.map(|m| m.amount().to_string()),
        Some("9.99".to_owned())
    );
    assert!(recorded.currency.is_some(), "{:?}", recorded.currency);
    assert_eq!(recorded.source, EventSource::Webhook);
    assert_eq!(recorded.erased_code, None);
    store.close().await;
}

async fn an_expired_lease_makes_the_job_claimable_again(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    // The lease expires because the store's clock moves, not because the test sleeps.
    let clock = Clock::manual(now_ms());
    let store = esim_courier_tests::migrated_store_on(&db.url, clock.clone()).await;
    add_jobs(&store, 1).await;
    let a = store.claim("worker-a", 300, 10).await.expect("claims");
    assert_eq!(a.len(), 1);
    assert!(
        store
            .claim("worker-b", 300, 10)
            .await
            .expect("claims")
            .is_empty(),
        "leased to A"
    );
    clock.advance(std::time::Duration::from_millis(299));
    assert!(
        store
            .claim("worker-b", 300, 10)
            .await
            .expect("claims")
            .is_empty(),
        "still leased to A 1 ms before the lease ends"
    );
    clock.advance(std::time::Duration::from_millis(2));
    let b = store.claim("worker-b", 30_000, 10).await.expect("claims");
    assert_eq!(b.len(), 1, "A's lease expired (A crashed): B takes the job");
    assert_eq!(b[0].attempts, 2);
    let late = attempt_now("worker-a");
    assert!(
        !store.job_delivered(&a[0], &late, None).await.expect("runs"),
        "A no longer owns it"
    );
    let on_time = attempt_now("worker-b");
    assert!(store
        .job_delivered(&b[0], &on_time, Some("ok"))
        .await
        .expect("runs"));
    assert!(
        store
            .claim("worker-c", 300, 10)
            .await
            .expect("claims")
            .is_empty(),
        "done jobs stay done"
    );
    store.close().await;
}

async fn two_claimers_never_take_the_same_job(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let setup = store(&db.url).await;
    add_jobs(&setup, 300).await;
    // Two stores = two connection pools, as two replicas would have.
    let claimer = |name: &'static str| {
        let url = db.url.clone();
        tokio::spawn(async move {
            let store = store(&url).await;
            let mut ids = Vec::new();
            loop {
                let jobs = store.claim(name, 60_000, 7).await.expect("claims");
                if jobs.is_empty() {
                    break;
                }
                for job in &jobs {
                    let attempt = attempt_now(name);
                    assert!(store
                        .job_delivered(job, &attempt, None)
                        .await
                        .expect("records"));
                }
                ids.extend(jobs.iter().map(|j| j.id));
            }
            store.close().await;
            ids
        })
    };
    let (a, b) = tokio::join!(claimer("replica-a"), claimer("replica-b"));
    let (a, b) = (a.expect("a runs"), b.expect("b runs"));
    let all: HashSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(
        a.len() + b.len(),
        300,
        "every job claimed once: a={} b={}",
        a.len(),
        b.len()
    );
    assert_eq!(all.len(), 300);
    setup.close().await;
}

async fn an_unreadable_job_becomes_a_dead_letter_and_the_others_are_still_claimed(
    backend: Backend,
) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = store(&db.url).await;
    // A job of a kind this version does not know (written by a newer one, say), due first.
    let raw = sqlx::AnyPool::connect(&db.url).await.expect("connects");
    sqlx::query(
        "INSERT INTO outbox_jobs (dedup_key, notifier, kind, state, attempts, created_at, updated_at, next_attempt_at)
         VALUES ('from-the-future', 'n', 'postcard', 'pending', 0, 0, 0, 0)",
    )
    .execute(&raw)
    .await
    .expect("inserted");
    add_jobs(&store, 2).await;
    let jobs = store
        .claim("worker", 30_000, 10)
        .await
        .expect("the claim succeeds despite the unreadable row");
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.kind == JobKind::OrderFailed));
    let (state, error): (String, Option<String>) = sqlx::query_as(
        "SELECT state, last_error FROM outbox_jobs WHERE dedup_key = 'from-the-future'",
    )
    .fetch_one(&raw)
    .await
    .expect("still there");
    assert_eq!(state, "dead");
    let error = error.expect("the reason is kept");
    assert!(error.contains("postcard"), "{error}");
    // Later claims go on as usual.
    add_jobs_from(&store, 2, 1).await;
    assert_eq!(
        store
            .claim("worker", 30_000, 10)
            .await
            .expect("claims")
            .len(),
        1
    );
    raw.close().await;
}

async fn claims_take_the_earliest_due_jobs_first(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = store(&db.url).await;
    add_jobs(&store, 6).await;
    // Jobs 1..6 in order of writing; make them due in another order, one of them in flight
    // with an expired lease and one not due yet.
    let raw = sqlx::AnyPool::connect(&db.url).await.expect("connects");
    for (order_no, state, due, locked_until) in [
        ("JOB-0", "pending", 50, None),
        ("JOB-1", "waiting", 10, None),
        ("JOB-2", "in_flight", 20, Some(30)),
        ("JOB-3", "pending", 40, None),
        ("JOB-4", "pending", now_ms() + 600_000, None),
        ("JOB-5", "in_flight", 5, Some(now_ms() + 600_000)),
    ] {
        sqlx::query(
            "UPDATE outbox_jobs SET state = $1, next_attempt_at = $2, locked_until = $3, locked_by = $4 WHERE order_no = $5",
        )
        .bind(state)
        .bind(due)
        .bind(locked_until)
        .bind(locked_until.map(|_| "someone#1"))
        .bind(order_no)
        .execute(&raw)
        .await
        .expect("updated");
    }
    // Which jobs a claim takes matters; the order it returns them in does not (PostgreSQL's
    // `UPDATE … RETURNING` has none).
    let first = store.claim("worker", 30_000, 3).await.expect("claims");
    let mut order: Vec<_> = first
        .iter()
        .map(|j| j.order_no.clone().unwrap_or_default())
        .collect();
    order.sort();
    assert_eq!(
        order,
        ["JOB-1", "JOB-2", "JOB-3"],
        "the earliest due, across states"
    );
    let rest = store.claim("worker", 30_000, 10).await.expect("claims");
    let order: Vec<_> = rest
        .iter()
        .map(|j| j.order_no.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        order,
        ["JOB-0"],
        "neither a job due later nor one whose lease still runs"
    );
    raw.close().await;
}

/// A dispatcher's claim also tells it when to look again: when it took fewer jobs than it
/// asked for, the earliest time another job falls due, whether a waiting job's or a lease's
/// end; nothing when it took as many as it asked for.
async fn a_claim_tells_when_the_next_job_falls_due(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = store(&db.url).await;
    add_jobs(&store, 3).await;
    let later = now_ms() + 600_000;
    let raw = sqlx::AnyPool::connect(&db.url).await.expect("connects");
    for (order_no, state, due) in [
        ("JOB-0", "pending", 10),
        ("JOB-1", "pending", 20),
        ("JOB-2", "waiting", later),
    ] {
        sqlx::query("UPDATE outbox_jobs SET state = $1, next_attempt_at = $2 WHERE order_no = $3")
            .bind(state)
            .bind(due)
            .bind(order_no)
            .execute(&raw)
            .await
            .expect("updated");
    }
    raw.close().await;

    let first = store.claim_due("worker", 900_000, 1).await.expect("claims");
    assert_eq!(first.jobs.len(), 1);
    assert_eq!(
        first.next_due_at, None,
        "it took its limit: more may be due"
    );
    // The second claim's lease ends after the waiting job falls due; the first's too.
    let second = store
        .claim_due("worker", 900_000, 10)
        .await
        .expect("claims");
    let taken: Vec<_> = first
        .jobs
        .iter()
        .chain(&second.jobs)
        .map(|j| j.order_no.clone().unwrap_or_default())
        .collect();
    assert_eq!(taken, ["JOB-0", "JOB-1"], "the due jobs, earliest first");
    assert_eq!(
        second.next_due_at,
        Some(later),
        "the waiting job falls due first"
    );
    assert_eq!(
        second.next_due_at,
        store.next_due_at().await.expect("reads"),
        "as the store reads it apart"
    );
    let third = store.claim_due("worker", 1_000, 10).await.expect("claims");
    assert!(third.jobs.is_empty());
    assert_eq!(
        third.next_due_at,
        Some(later),
        "nothing else is due before it"
    );
    // A job the claim leases falls due again at its lease end, here before the waiting job.
    add_jobs_from(&store, 3, 1).await;
    let fourth = store.claim_due("worker", 1_000, 10).await.expect("claims");
    assert_eq!(fourth.jobs.len(), 1);
    let apart = store.next_due_at().await.expect("reads");
    assert!(
        apart.is_some_and(|due| due < later),
        "the new lease ends first: {apart:?}"
    );
    assert_eq!(fourth.next_due_at, apart, "as the store reads it apart");
}

/// PostgreSQL caches each statement's plan on its connection, and may keep a generic plan
/// made in the first minute, when the outbox was nearly empty. The claim's plan must stay
/// bounded however large the outbox grows after that: a claim of 16 jobs reads about 16 of
/// them, not every due job. (An earlier form, planned on a small outbox, re-read every due
/// job for each claim.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_planned_on_an_empty_outbox_stays_bounded_as_it_grows() {
    let statement = esim_courier_store::due_claim_statement(esim_courier_store::Backend::Postgres);
    // 3,000 due jobs.
    let grow = format!(
        "{NEW_JOBS} SELECT 'job-' || g, 'n', 'alert', 'pending', 0, {{now}}, {{now}}, {{now}} - 5000 + g
                  FROM generate_series(1, 3000) AS g"
    );
    let Some(plan) = plan_of_a_claim_planned_empty(&statement, "", &grow, 16).await else {
        return;
    };
    assert_claim_reads_few_jobs(&plan, "16 jobs out of 3,000 due");
}

/// A dispatcher's claim that takes fewer jobs than it asks for also reads when the next one
/// falls due, in the same statement. That read too must stay bounded under a plan made on an
/// empty outbox: with 8 jobs due and 3,000 waiting for later, a claim of 16 takes the 8 and
/// finds the earliest of the others without reading every waiting job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claims_next_due_time_planned_on_an_empty_outbox_stays_bounded() {
    let statement = esim_courier_store::due_claim_statement(esim_courier_store::Backend::Postgres);
    let grow = format!(
        "{NEW_JOBS} SELECT 'job-' || g, 'n', 'alert', CASE WHEN g > 3000 THEN 'pending' ELSE 'waiting' END,
                       0, {{now}}, {{now}}, CASE WHEN g > 3000 THEN {{now}} - g ELSE {{now}} + 60000 + g END
                  FROM generate_series(1, 3008) AS g"
    );
    let Some(plan) = plan_of_a_claim_planned_empty(&statement, "", &grow, 8).await else {
        return;
    };
    assert_claim_reads_few_jobs(&plan, "8 jobs and the next due time, 3,000 waiting");
    // The due jobs' index is read twice: for the claim, then for the next due time (which a
    // claim that takes its limit skips).
    let mut scans = 0;
    visit(&plan[0]["Plan"], &mut |node| {
        if node["Index Name"] == "outbox_jobs_due_pending"
            && node["Actual Loops"].as_f64().unwrap_or(0.0) > 0.0
        {
            scans += 1;
        }
    });
    assert_eq!(scans, 2, "the claim, then the next due time: {plan:#}");
}

/// The same for a grouping notifier's claim, in the outbox it grows in: thousands of
/// delivered jobs, a few due ones. It must read the due jobs, not walk the delivered ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notifier_claim_planned_on_an_empty_outbox_skips_the_delivered_jobs() {
    let statement =
        esim_courier_store::notifier_claim_statement(esim_courier_store::Backend::Postgres);
    // 3,000 delivered jobs of the notifier, then 40 due ones.
    let grow = format!(
        "{NEW_JOBS} SELECT 'job-' || g, 'n', 'alert', CASE WHEN g > 3000 THEN 'pending' ELSE 'done' END,
                       1, {{now}}, {{now}}, {{now}} - 5000 + g
                  FROM generate_series(1, 3040) AS g"
    );
    let Some(plan) = plan_of_a_claim_planned_empty(&statement, ", 'n'", &grow, 16).await else {
        return;
    };
    assert_claim_reads_few_jobs(&plan, "16 jobs, 40 due among 3,040");
}

/// A claim on PostgreSQL reads each order job's event and customer with it. Planned on an
/// empty database, its plan must still take each one by its key once thousands of orders
/// exist: a claim of 16 jobs reads 16 events and 16 orders, not every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_planned_on_an_empty_database_reads_only_its_jobs_contexts() {
    let statement = esim_courier_store::due_claim_statement(esim_courier_store::Backend::Postgres);
    // 3,000 orders, each with its receipt, its event and a due job.
    let grow = "INSERT INTO orders (order_no, created_at, updated_at, state, recorded_events, customer_email)
              SELECT 'ORD-' || g, {now}, {now}, 'COMPLETED', 1, 'c' || g || '@example.com'
                FROM generate_series(1, 3000) AS g;
         INSERT INTO webhook_receipts (received_at, order_no, outcome, http_status, body)
              SELECT {now}, order_no, 'accepted', 200, '{}'::bytea FROM orders;
         INSERT INTO order_events (order_no, receipt_id, received_at, result, disposition,
                                   fingerprint, iccid, warnings)
              SELECT order_no, id, {now}, 'COMPLETED', 'accepted', 'f', 'i', '[]'
                FROM webhook_receipts;
         INSERT INTO outbox_jobs (dedup_key, notifier, kind, state, attempts, created_at,
                                  updated_at, next_attempt_at, order_no, event_id)
              SELECT 'job-' || id, 'n', 'order_completed', 'pending', 0, {now}, {now},
                     {now} - 5000 + id, order_no, id
                FROM order_events";
    let Some(plan) = plan_of_a_claim_planned_empty(&statement, "", grow, 16).await else {
        return;
    };
    assert_eq!(
        plan[0]["Plan"]["Actual Rows"].as_f64(),
        Some(16.0),
        "16 jobs with their contexts: {plan:#}"
    );
    for table in ["order_events", "orders"] {
        let read = rows_read(&plan, table);
        assert!(
            (1..=16).contains(&read),
            "the claim read {read} rows of {table} for 16 jobs out of 3,000: {plan:#}"
        );
    }
}

/// Checks that the claim whose `plan` is given read about as many outbox rows as it leased
/// (at most 64, for a claim of 16), not every job: `what` it claimed, for the message.
fn assert_claim_reads_few_jobs(plan: &serde_json::Value, what: &str) {
    let read = rows_read(plan, "outbox_jobs");
    assert!(
        read <= 4 * 16,
        "the claim read {read} outbox rows for {what}: {plan:#}"
    );
}

/// The first columns of a new outbox job, for the rows a plan test adds.
const NEW_JOBS: &str = "INSERT INTO outbox_jobs (dedup_key, notifier, kind, state, attempts, created_at, updated_at, next_attempt_at)";

/// Prepares the claim `statement` (`$5`, if any, given by `notifier_arg`) with a generic plan
/// on an empty database, runs `grow` (`{now}` replaced) to fill it, and returns the
/// `EXPLAIN ANALYZE` of a claim of 16 then, rolled back. Checks that it claimed `claimed`.
/// `None` when PostgreSQL is not configured.
async fn plan_of_a_claim_planned_empty(
    statement: &str,
    notifier_arg: &str,
    grow: &str,
    claimed: u32,
) -> Option<serde_json::Value> {
    let db = test_db(Backend::Postgres).await?;
    let store = store(&db.url).await;
    let mut conn = generic_plans(&db.url).await;
    let types = if notifier_arg.is_empty() {
        ""
    } else {
        ", text"
    };
    conn.execute(sqlx::AssertSqlSafe(format!(
        "PREPARE claim (bigint, text, bigint, bigint{types}) AS {statement}"
    )))
    .await
    .expect("prepares");
    let now = now_ms();
    let execute = format!(
        "EXECUTE claim ({}, 'lease', {now}, 16{notifier_arg})",
        now + 60_000
    );
    // Planned on the empty outbox (in a transaction rolled back: nothing is claimed).
    conn.execute(sqlx::AssertSqlSafe(format!("BEGIN; {execute}; ROLLBACK")))
        .await
        .expect("claims");

    conn.execute(sqlx::AssertSqlSafe(grow.replace("{now}", &now.to_string())))
        .await
        .expect("fills the database");
    conn.execute("BEGIN").await.expect("begins");
    let plan = explain_analyze(&mut conn, &execute).await;
    conn.execute("ROLLBACK").await.expect("rolls back");

    let mut leased = None;
    visit(&plan[0]["Plan"], &mut |node| {
        if node["Relation Name"] == "outbox_jobs" && node["Node Type"] == "ModifyTable" {
            leased = node["Actual Rows"].as_f64();
        }
    });
    assert_eq!(
        leased,
        Some(f64::from(claimed)),
        "the {claimed} earliest jobs are claimed: {plan:#}"
    );
    eprintln!("the claim's plan: {plan:#}");
    conn.close().await.expect("closes");
    store.close().await;
    Some(plan)
}

/// PostgreSQL writes the outcomes of deliveries that finish together in one statement, which
/// joins them to their jobs. The plan cached for it must take each job by its key however
/// the outbox has grown since it was made: 8 outcomes written on an outbox of 3,000 jobs in
/// flight read about 8 of them, not every job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_batch_planned_on_an_empty_outbox_reads_only_its_jobs() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let store = store(&db.url).await;
    let mut conn = generic_plans(&db.url).await;
    let statement = esim_courier_store::outcome_batch_statement(8);
    conn.execute(sqlx::AssertSqlSafe(format!(
        "PREPARE finish AS {statement}"
    )))
    .await
    .expect("prepares");
    let now = now_ms();
    // Jobs 1..=8 delivered under the lease `lease`: state, error, next attempt, finished
    // at, job, lease, attempt, started at, outcome, receipt, worker, recipient, locale.
    let args: Vec<String> = (1..=8)
        .map(|job| {
            format!("'done', NULL, NULL, {now}, {job}, 'lease', 1, {now}, 'delivered', NULL, 'w', NULL, NULL")
        })
        .collect();
    let execute = format!("EXECUTE finish ({})", args.join(", "));
    // Planned on the empty outbox (nothing matches, and it is rolled back anyway).
    conn.execute(sqlx::AssertSqlSafe(format!("BEGIN; {execute}; ROLLBACK")))
        .await
        .expect("writes nothing");

    conn.execute(sqlx::AssertSqlSafe(format!(
        "INSERT INTO outbox_jobs (dedup_key, notifier, kind, state, attempts, created_at, updated_at,
                                  next_attempt_at, locked_until, locked_by)
         SELECT 'job-' || g, 'n', 'alert', 'in_flight', 1, {now}, {now}, {now}, {now} + 60000, 'lease'
           FROM generate_series(1, 3000) AS g"
    )))
    .await
    .expect("fills the outbox");
    conn.execute("BEGIN").await.expect("begins");
    let plan = explain_analyze(&mut conn, &execute).await;
    let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox_jobs WHERE state = 'done'")
        .fetch_one(&mut conn)
        .await
        .expect("counts");
    let logged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM delivery_attempts")
        .fetch_one(&mut conn)
        .await
        .expect("counts");
    conn.execute("ROLLBACK").await.expect("rolls back");
    assert_eq!((done, logged), (8, 8), "the 8 jobs are done and logged");

    let read = rows_read(&plan, "outbox_jobs");
    assert!(
        read <= 4 * 8,
        "the batch read {read} outbox rows for 8 jobs out of 3,000: {plan:#}"
    );
    conn.close().await.expect("closes");
    store.close().await;
}

/// A connection to `url` on which every prepared statement keeps the generic plan made at
/// its first use, as a long-lived pool connection may.
async fn generic_plans(url: &str) -> sqlx::postgres::PgConnection {
    let mut conn = sqlx::postgres::PgConnection::connect(url)
        .await
        .expect("connects");
    conn.execute("SET plan_cache_mode = force_generic_plan")
        .await
        .expect("sets");
    conn
}

/// Runs `statement` under `EXPLAIN (ANALYZE, FORMAT JSON)` on `conn` (so it is executed:
/// the caller rolls it back) and returns the plan.
async fn explain_analyze(
    conn: &mut sqlx::postgres::PgConnection,
    statement: &str,
) -> serde_json::Value {
    let plan: String = sqlx::query(sqlx::AssertSqlSafe(format!(
        "EXPLAIN (ANALYZE, FORMAT JSON) {statement}"
    )))
    .fetch_one(conn)
    .await
    .expect("explains")
    .try_get_unchecked(0)
    .expect("the plan");
    serde_json::from_str(&plan).expect("JSON")
}

/// How many rows of `table` the nodes of `plan` (an `EXPLAIN (ANALYZE, FORMAT JSON)`) read,
/// counting those their filters removed; the rows a write to it changed are not counted.
fn rows_read(plan: &serde_json::Value, table: &str) -> i64 {
    let mut read = 0;
    visit(&plan[0]["Plan"], &mut |node| {
        if node["Node Type"] != "ModifyTable" && node["Relation Name"] == table {
            let rows = node["Actual Rows"].as_f64().unwrap_or(0.0);
            let loops = node["Actual Loops"].as_f64().unwrap_or(1.0);
            let removed = node["Rows Removed by Filter"].as_f64().unwrap_or(0.0)
                + node["Rows Removed by Index Recheck"]
                    .as_f64()
                    .unwrap_or(0.0);
            read += ((rows + removed) * loops) as i64;
        }
    });
    read
}

/// Calls `f` on `node` and every node under it.
fn visit(node: &serde_json::Value, f: &mut impl FnMut(&serde_json::Value)) {
    f(node);
    for child in node["Plans"].as_array().into_iter().flatten() {
        visit(child, f);
    }
}

/// Replicas that start together on a new PostgreSQL database migrate it together: both
/// start, the migrations run once, and every index they build is valid. (Some build their
/// index `CONCURRENTLY`, which waits for every other transaction: one blocked on the
/// migration lock among them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once_and_every_index_is_valid() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let options = esim_courier_store::StoreOptions::new(&db.url, esim_courier_tests::test_keys());
    let (a, b) = tokio::join!(Store::connect(&options), Store::connect(&options));
    let (a, b) = (a.expect("connects"), b.expect("connects"));
    let (ran_a, ran_b) = tokio::join!(a.migrate(), b.migrate());
    ran_a.expect("the first replica starts");
    ran_b.expect("the second replica starts");
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connects");
    let invalid: i64 = sqlx::query("SELECT COUNT(*) AS n FROM pg_index WHERE NOT indisvalid")
        .fetch_one(&mut conn)
        .await
        .expect("read")
        .try_get("n")
        .expect("n");
    assert_eq!(invalid, 0);
    a.close().await;
    b.close().await;
}
