//! Reconciliation at the store level, against the fake provider over HTTP: a sweep records
//! each lost result once, also while new orders shift the provider's pages under it.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use esim_courier_core::testing::RecordingNotifier;
use esim_courier_core::Audience;
use esim_courier_core::{CurrencyTable, Routes};
use esim_courier_dispatch::reconcile::{ReconcileSettings, Reconciler, SweepReport, SweepSchedule};
use esim_courier_dispatch::{Dispatcher, DispatcherConfig, Registered, RetryPolicy};
use esim_courier_provider_yoni::{YoniConfig, YoniProvider};
use esim_courier_store::{now_ms, JobKind, Store, StoreOptions, RECONCILER};
use esim_courier_tests::provider::{FakeProvider, Scripted};
use esim_courier_tests::{eventually, migrated_store, on_both_backends, test_db, Backend};
use tokio_util::sync::CancellationToken;

on_both_backends!(
    a_sweep_records_each_order_once_while_new_orders_shift_the_pages,
    a_provider_that_ignores_the_page_number_does_not_keep_a_sweep_for_ever,
    shutdown_during_a_slow_sweep_releases_it_within_the_grace_period,
    replicas_scheduling_the_same_sweep_slot_make_one_job,
    a_provider_call_turn_that_passed_while_it_was_taken_is_not_used,
    a_turn_an_hour_ahead_from_a_clock_that_ran_ahead_is_not_waited_for,
    an_operator_notifier_named_reconciler_does_not_take_the_sweep,
    a_sweep_the_provider_asks_to_wait_is_retried_after_its_wait,
);

const LPA: &str = "LPA:1$rsp.yoni.example$69C32E7D00000001";

async fn reconciler(url: &str, fake: &FakeProvider) -> Reconciler {
    let store = migrated_store(url).await;
    reconciler_on(store, fake, Duration::from_secs(5))
}

/// A reconciler on `store` whose provider client waits up to `timeout` for an answer.
fn reconciler_on(store: Store, fake: &FakeProvider, timeout: Duration) -> Reconciler {
    let provider = YoniProvider::new(
        YoniConfig {
            base_url: fake.base.clone(),
            app_id: fake.app_id.clone(),
            app_secret: fake.app_secret.clone().into(),
            timeout,
            requests_per_second: NonZeroU32::new(10).expect("above 0"),
        },
        CurrencyTable::default(),
    )
    .expect("a valid config");
    Reconciler::new(store, Arc::new(provider), Routes::default())
}

/// Sweeps every hour over two days, lookups every minute, no verification.
fn hourly_sweeps() -> ReconcileSettings {
    ReconcileSettings {
        expect_within: Duration::from_secs(60),
        sweep: Some(SweepSchedule {
            interval: Duration::from_secs(3600),
            window: Duration::from_secs(48 * 3600),
        }),
        lookup_interval: Duration::from_secs(60),
        give_up_after: Duration::from_secs(24 * 3600),
        verify_webhooks: false,
    }
}

/// A single integer from `sql` on the database at `url`.
async fn count(url: &str, sql: &'static str) -> i64 {
    use sqlx::{Connection, Row};
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connects");
    sqlx::query(sql)
        .fetch_one(&mut conn)
        .await
        .expect("query runs")
        .try_get(0)
        .expect("an integer")
}

/// `n` finished orders at the fake provider, as if their webhooks were lost.
fn finished_orders(fake: &FakeProvider, n: usize) {
    for i in 0..n {
        let order = fake.new_order("JP-7D-5GB");
        fake.add(order.clone());
        let iccid = format!("89440001{i:011}");
        fake.finish(&order.order_no, "COMPLETED", &iccid, LPA);
    }
}

async fn a_sweep_records_each_order_once_while_new_orders_shift_the_pages(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let fake = FakeProvider::start("reseller-7", "the-app-secret");
    let reconciler = reconciler(&db.url, &fake).await;
    finished_orders(&fake, 120);

    // After the first page, 7 new orders arrive: the next page repeats 7 of the first.
    let mut pages_seen = 0;
    let report = reconciler
        .sweep(now_ms() - 3_600_000, |_, _| {
            pages_seen += 1;
            if pages_seen == 1 {
                finished_orders(&fake, 7);
            }
        })
        .await
        .expect("the sweep runs");
    assert_eq!(
        report,
        SweepReport {
            pages: 3,
            orders: 120,
            recovered: 120,
            ..SweepReport::default()
        }
    );
    let events = count(
        &db.url,
        "SELECT COUNT(*) FROM order_events WHERE source = 'reconciliation'",
    )
    .await;
    assert_eq!(events, 120, "one event per order, none twice");

    // The next sweep finds the 7 newer ones and nothing twice.
    let again = reconciler
        .sweep(now_ms() - 3_600_000, |_, _| {})
        .await
        .expect("the sweep runs");
    assert_eq!(
        (again.orders, again.recovered, again.already_known),
        (127, 7, 120)
    );
    // What was known already was only read: one receipt per order recorded, none per sweep.
    let receipts = count(
        &db.url,
        "SELECT COUNT(*) FROM webhook_receipts WHERE source = 'reconciliation'",
    )
    .await;
    assert_eq!(
        receipts, 127,
        "no receipt for an order a sweep already knew"
    );
    // Every call was signed as the provider checks; pages asked newest first, 50 at a time.
    let requests = fake.requests();
    assert!(requests.iter().all(|r| !r.refused));
    assert_eq!(requests.len(), 6);
}

/// A provider that answers its first page whatever page is asked for, with a `total` that
/// promises more: the sweep stops once pages only repeat what it read, rather than paging
/// for ever (and using the provider's lookup rate) while the next sweeps pile up behind it.
async fn a_provider_that_ignores_the_page_number_does_not_keep_a_sweep_for_ever(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let fake = FakeProvider::start("reseller-7", "the-app-secret");
    let reconciler = reconciler(&db.url, &fake).await;
    finished_orders(&fake, 500);
    // The newest record cannot be used (no order number): repeated on every page, it is no
    // new order either.
    let mut unusable = fake.new_order("JP-7D-5GB");
    unusable.order_no = String::new();
    fake.add(unusable);
    fake.ignore_page_numbers();
    let report = reconciler
        .sweep(now_ms() - 3_600_000, |_, _| {})
        .await
        .expect("the sweep runs");
    let pages = 1 + Reconciler::REPEATED_PAGES;
    assert_eq!(
        report,
        SweepReport {
            pages,
            orders: 49,
            recovered: 49,
            unreadable: u64::from(pages),
            ..SweepReport::default()
        }
    );
    assert_eq!(
        fake.requests().len(),
        1 + usize::try_from(Reconciler::REPEATED_PAGES).expect("small")
    );
}

/// A stop (SIGTERM, a deploy) while a sweep waits on a slow provider: the dispatcher stops
/// within its grace period, not after the sweep, and gives the sweep back at once for another
/// worker, its attempt not counted.
async fn shutdown_during_a_slow_sweep_releases_it_within_the_grace_period(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let fake = FakeProvider::start("reseller-7", "the-app-secret");
    finished_orders(&fake, 3);
    // The first page comes after 30 s; the client would wait 60 s for it.
    fake.then(Scripted::Slow(Duration::from_secs(30)));
    let store = migrated_store(&db.url).await;
    let reconciler = reconciler_on(store.clone(), &fake, Duration::from_secs(60));
    let settings = hourly_sweeps();
    assert!(store.schedule_sweep(now_ms()).await.expect("scheduled"));
    let config = DispatcherConfig {
        shutdown_grace: Duration::from_millis(200),
        ..DispatcherConfig::default()
    };
    let shutdown = CancellationToken::new();
    let dispatcher = Dispatcher::new(store.clone(), HashMap::new(), Routes::default(), config)
        .with_reconciler(reconciler, settings);
    let run = tokio::spawn(Arc::new(dispatcher).run(shutdown.clone()));
    eventually(10, "the sweep to ask for its first page", || async {
        (!fake.requests().is_empty()).then_some(())
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("the dispatcher stops within its grace period, not after the page")
        .expect("clean");
    assert_eq!(
        count(
            &db.url,
            "SELECT COUNT(*) FROM outbox_jobs WHERE kind = 'reconcile_sweep' AND state = 'in_flight'"
        )
        .await,
        0,
        "no sweep left leased"
    );
    let claimed = store.claim("next-worker", 1000, 10).await.expect("claims");
    assert_eq!(claimed.len(), 1, "the sweep is claimable again at once");
    assert_eq!(claimed[0].kind, JobKind::ReconcileSweep);
    assert_eq!(
        claimed[0].attempts, 1,
        "its first attempt, the released one not counted"
    );
    store.close().await;
}

async fn replicas_scheduling_the_same_sweep_slot_make_one_job(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let one = migrated_store(&db.url).await;
    let other = Store::connect(&StoreOptions::new(&db.url, esim_courier_tests::test_keys()))
        .await
        .expect("connects");
    let slot = 1_796_000_400_000;
    let (a, b) = tokio::join!(one.schedule_sweep(slot), other.schedule_sweep(slot));
    let created = [a.expect("schedules"), b.expect("schedules")];
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
    assert!(one.schedule_sweep(slot + 600_000).await.expect("schedules"));
    let jobs = count(
        &db.url,
        "SELECT COUNT(*) FROM outbox_jobs WHERE kind = 'reconcile_sweep'",
    )
    .await;
    assert_eq!(jobs, 2, "one job per slot");
}

/// The deployment-wide turn for a provider call is taken by a committed update. When that
/// update waits (here: another process holds the gate's row for 300 ms, as a stalled disk or
/// a busy replica would), the turn it returns has passed: used, the call would land closer
/// than the interval to the calls whose turns come next. The caller takes the next turn.
async fn a_provider_call_turn_that_passed_while_it_was_taken_is_not_used(backend: Backend) {
    use esim_courier_core::CallGate;
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = migrated_store(&db.url).await;
    let gate = store.provider_gate(NonZeroU32::new(10).expect("non-zero"));
    let interval = 110;
    let other = sqlx::AnyPool::connect(&db.url).await.expect("connects");
    let mut held = other.begin().await.expect("begins");
    sqlx::query("UPDATE provider_gate SET next_at = next_at WHERE id = 1")
        .execute(&mut *held)
        .await
        .expect("holds the row");
    let turn = tokio::spawn(async move { gate.turn().await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let released = now_ms();
    held.commit().await.expect("commits");
    turn.await.expect("the turn is taken");
    let next_at: i64 = sqlx::query_scalar("SELECT next_at FROM provider_gate WHERE id = 1")
        .fetch_one(&other)
        .await
        .expect("reads");
    let used = next_at - interval;
    assert!(
        used >= released,
        "the call went at the turn of {used}, taken while the row was held until {released}"
    );
    other.close().await;
    store.close().await;
}

/// A replica whose clock ran an hour ahead (or one corrected since) moved the shared gate an
/// hour on. Waited for, every provider call of every replica would sleep that hour, each
/// holding a dispatcher's slot: the gate starts again from now instead.
async fn a_turn_an_hour_ahead_from_a_clock_that_ran_ahead_is_not_waited_for(backend: Backend) {
    use esim_courier_core::CallGate;
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = migrated_store(&db.url).await;
    let gate = store.provider_gate(NonZeroU32::new(10).expect("non-zero"));
    let other = sqlx::AnyPool::connect(&db.url).await.expect("connects");
    sqlx::query("UPDATE provider_gate SET next_at = $1 WHERE id = 1")
        .bind(now_ms() + 3_600_000)
        .execute(&other)
        .await
        .expect("moved an hour on");
    tokio::time::timeout(Duration::from_secs(60), gate.turn())
        .await
        .expect("the turn is not an hour away");
    let next_at: i64 = sqlx::query_scalar("SELECT next_at FROM provider_gate WHERE id = 1")
        .fetch_one(&other)
        .await
        .expect("reads");
    assert!(
        next_at < now_ms() + 60_000,
        "the gate starts again from now: {} s ahead",
        (next_at - now_ms()) / 1000
    );
    other.close().await;
    store.close().await;
}

/// Scheduled work is stored under the notifier name `reconciler`: an operator notifier an
/// operator named so (one that groups its alerts) must not take the sweep and dead-letter it
/// as "not a notification", neither as one of its own jobs nor when it claims its batch for
/// an alert due beside the sweep. The sweep runs and records the lost orders; the alert is
/// delivered.
async fn an_operator_notifier_named_reconciler_does_not_take_the_sweep(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let fake = FakeProvider::start("reseller-7", "the-app-secret");
    finished_orders(&fake, 3);
    let store = migrated_store(&db.url).await;
    let reconciler = reconciler_on(store.clone(), &fake, Duration::from_secs(5));
    let settings = hourly_sweeps();
    assert!(store.schedule_sweep(now_ms()).await.expect("scheduled"));
    let alert = esim_courier_core::Alert::webhook_rejected(Some("R-1"), 422, "a test", now_ms());
    store
        .raise_alert(
            "a-test",
            vec![esim_courier_store::NewJob {
                notifier: RECONCILER.to_owned(),
                kind: JobKind::Alert,
                payload: Some(serde_json::to_string(&alert).expect("JSON")),
            }],
        )
        .await
        .expect("raised");
    // A grouping notifier's claim of its batch takes its notifications, not the sweep due
    // beside them.
    let taken = store
        .claim_for_notifier(RECONCILER, "a-worker", 60_000, 10)
        .await
        .expect("claims");
    let kinds: Vec<JobKind> = taken.iter().map(|j| j.kind).collect();
    assert_eq!(kinds, [JobKind::Alert]);
    for job in &taken {
        assert!(store.job_release(job).await.expect("released"));
    }
    let ops = RecordingNotifier::new(RECONCILER, Audience::Operator);
    let notifiers = HashMap::from([(
        RECONCILER.to_owned(),
        Registered {
            notifier: Arc::new(ops.clone()),
            policy: RetryPolicy::default(),
            group_window: Some(Duration::from_millis(100)),
        },
    )]);
    let shutdown = CancellationToken::new();
    let dispatcher = Dispatcher::new(
        store.clone(),
        notifiers,
        Routes::default(),
        DispatcherConfig::default(),
    )
    .with_reconciler(reconciler, settings);
    let run = tokio::spawn(Arc::new(dispatcher).run(shutdown.clone()));
    eventually(20, "the sweep to record the lost orders", || async {
        (count(
            &db.url,
            "SELECT COUNT(*) FROM order_events WHERE source = 'reconciliation'",
        )
        .await
            == 3)
            .then_some(())
    })
    .await;
    eventually(10, "the sweep to be done", || async {
        (count(
            &db.url,
            "SELECT COUNT(*) FROM outbox_jobs WHERE kind = 'reconcile_sweep' AND state = 'done'",
        )
        .await
            == 1)
            .then_some(())
    })
    .await;
    assert_eq!(
        count(
            &db.url,
            "SELECT COUNT(*) FROM outbox_jobs WHERE state = 'dead'"
        )
        .await,
        0,
        "nothing dead-lettered"
    );
    eventually(10, "the alert to be delivered", || async {
        (!ops.delivered().is_empty()).then_some(())
    })
    .await;
    shutdown.cancel();
    run.await.expect("clean");
    store.close().await;
}

/// A sweep the provider answers with 429 and `Retry-After: 120` is tried again after those two
/// minutes, not on the sweep's own backoff (about a second), which would ask a rate-limited
/// provider again at once and give the sweep up within seconds.
async fn a_sweep_the_provider_asks_to_wait_is_retried_after_its_wait(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let fake = FakeProvider::start("reseller-7", "the-app-secret");
    finished_orders(&fake, 3);
    fake.then(Scripted::TooMany(120));
    let store = migrated_store(&db.url).await;
    let reconciler = reconciler_on(store.clone(), &fake, Duration::from_secs(5));
    let settings = hourly_sweeps();
    let scheduled_at = now_ms();
    assert!(store.schedule_sweep(scheduled_at).await.expect("scheduled"));
    let shutdown = CancellationToken::new();
    let dispatcher = Dispatcher::new(
        store.clone(),
        HashMap::new(),
        Routes::default(),
        DispatcherConfig::default(),
    )
    .with_reconciler(reconciler, settings);
    let run = tokio::spawn(Arc::new(dispatcher).run(shutdown.clone()));
    eventually(20, "the sweep's first attempt to be recorded", || async {
        (count(
            &db.url,
            "SELECT COUNT(*) FROM delivery_attempts a JOIN outbox_jobs j ON j.id = a.job_id
              WHERE j.kind = 'reconcile_sweep'",
        )
        .await
            == 1)
            .then_some(())
    })
    .await;
    shutdown.cancel();
    run.await.expect("clean");
    // The sweep that was tried (the next slot's sweep, an hour on, is scheduled beside it).
    let next = count(
        &db.url,
        "SELECT j.next_attempt_at FROM outbox_jobs j
          WHERE j.kind = 'reconcile_sweep' AND j.state = 'pending'
            AND EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.job_id = j.id)",
    )
    .await;
    assert!(
        next >= scheduled_at + 120_000,
        "retried {} ms after it was due",
        next - scheduled_at
    );
    assert_eq!(fake.requests().len(), 1, "asked once");
    store.close().await;
}
