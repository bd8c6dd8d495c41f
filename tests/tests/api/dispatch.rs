//! The dispatcher: retries, dead letters, alerts, shutdown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use esim_courier_core::{
    async_trait, Audience, CurrencyTable, Notification, Notifier, NotifyError, Receipt, Routes,
    WebhookPayload,
};
use esim_courier_dispatch::{Dispatcher, DispatcherConfig, Registered, RetryPolicy};
use esim_courier_store::{now_ms, JobKind, JobState, NewJob, NewReceipt, Store};
use esim_courier_tests::{
    eventually, on_both_backends, spawn_app, test_db, AppOptions, Backend, SAMPLE_COMPLETED,
    SAMPLE_FAILED,
};
use serde_json::json;
use sqlx::Row;
use tokio_util::sync::CancellationToken;

on_both_backends!(
    a_marked_activation_job_is_cancelled_in_a_digest_too,
    transient_errors_are_retried_with_growing_delays_then_succeed,
    retry_after_from_the_channel_is_honoured,
    a_permanent_error_is_dead_lettered_at_once_and_alerts_operators,
    exhausted_retries_become_a_dead_letter_and_an_alert,
    an_alert_that_cannot_be_delivered_is_not_alerted_again,
    a_dead_letter_can_be_retried,
    a_dead_letter_retried_long_after_its_webhook_gets_its_retries_again,
    an_email_registered_long_after_its_webhook_gets_its_retries,
    shutdown_releases_the_lease_of_a_stuck_delivery,
    a_flipped_byte_in_a_stored_code_is_a_dead_letter_and_an_alert_not_a_loop,
);

async fn attempt_log(app_db: &sqlx::AnyPool, notifier: &str) -> Vec<(i64, i64, String)> {
    sqlx::query(
        "SELECT a.started_at, a.finished_at, a.outcome FROM delivery_attempts a JOIN outbox_jobs j ON j.id = a.job_id
          WHERE j.notifier = $1 ORDER BY a.id",
    )
    .bind(notifier.to_owned())
    .fetch_all(app_db)
    .await
    .expect("attempts")
    .iter()
    .map(|r| (r.try_get(0).expect("i64"), r.try_get(1).expect("i64"), r.try_get(2).expect("text")))
    .collect()
}

async fn transient_errors_are_retried_with_growing_delays_then_succeed(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    for _ in 0..3 {
        app.customer
            .fail_next(NotifyError::transient("SMTP 421 try again later"));
    }
    app.register("2026032516xxxxxxxxxxx", json!({"email": "ana@example.com"}))
        .await;
    app.webhook_json(SAMPLE_COMPLETED).await;
    eventually(20, "the 4th attempt to succeed", || async {
        (!app.customer.delivered().is_empty()).then_some(())
    })
    .await;
    let log = eventually(5, "four recorded attempts", || async {
        let log = attempt_log(&app.db, "customer").await;
        (log.len() == 4).then_some(log)
    })
    .await;
    let outcomes: Vec<&str> = log.iter().map(|(_, _, o)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        ["transient", "transient", "transient", "delivered"]
    );
    // Each wait is at least half the doubled delay (100 ms, 200 ms, 400 ms with equal jitter):
    // lower bounds the schedule guarantees however slow the machine is.
    for (k, window) in log.windows(2).enumerate() {
        let gap = window[1].0 - window[0].1;
        let floor = (100i64 << k) / 2;
        assert!(gap >= floor, "wait {k} was {gap} ms, below {floor} ms");
    }
    assert_eq!(app.customer.attempts().len(), 4);
    // All attempts carried the same key: the channel can deduplicate.
    assert!(app
        .customer
        .attempts()
        .iter()
        .all(|n| n.key == app.customer.attempts()[0].key));
    app.stop().await;
}

async fn retry_after_from_the_channel_is_honoured(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    app.ops.fail_next(
        NotifyError::transient("HTTP 429").with_retry_after(Duration::from_millis(1500)),
    );
    app.webhook_json(SAMPLE_FAILED).await;
    // The outcome is written after the channel answers: wait for the log, not the channel.
    let log = eventually(20, "two recorded attempts", || async {
        let log = attempt_log(&app.db, "ops").await;
        (log.len() == 2).then_some(log)
    })
    .await;
    assert_eq!(app.ops.delivered().len(), 1);
    assert!(
        log[1].0 - log[0].1 >= 1500,
        "retried after {} ms",
        log[1].0 - log[0].1
    );
    app.stop().await;
}

async fn a_permanent_error_is_dead_lettered_at_once_and_alerts_operators(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    app.customer
        .fail_next(NotifyError::permanent("550 mailbox unavailable"));
    app.register(
        "2026032516xxxxxxxxxxx",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    app.webhook_json(SAMPLE_COMPLETED).await;
    let alert = app.first_alert(10, "the dead-letter alert").await;
    assert_eq!(alert.kind.as_str(), "dead_letter");
    assert!(
        alert.reason.contains("550 mailbox unavailable"),
        "{}",
        alert.reason
    );
    assert!(alert
        .command
        .as_deref()
        .is_some_and(|c| c.starts_with("esim-courier dead-letters retry ")));
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_jobs WHERE notifier = 'customer' AND state = 'dead' AND attempts = 1").await, 1);
    assert_eq!(app.customer.attempts().len(), 1);
    let dead = app.store.dead_letters().await.expect("listed");
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("550 mailbox unavailable")
    );
    app.stop().await;
}

async fn exhausted_retries_become_a_dead_letter_and_an_alert(backend: Backend) {
    let mut options = AppOptions::default();
    options.policy.max_attempts = 3;
    let Some(app) = spawn_app(backend, options).await else {
        return;
    };
    for _ in 0..3 {
        app.customer
            .fail_next(NotifyError::transient("connection refused"));
    }
    app.register("2026032516xxxxxxxxxxx", json!({"email": "ana@example.com"}))
        .await;
    app.webhook_json(SAMPLE_COMPLETED).await;
    let alert = app.first_alert(20, "the dead-letter alert").await;
    assert!(
        alert.reason.contains("gave up after 3 attempts"),
        "{}",
        alert.reason
    );
    assert_eq!(app.customer.attempts().len(), 3);
    assert!(app.customer.delivered().is_empty());
    app.stop().await;
}

async fn an_alert_that_cannot_be_delivered_is_not_alerted_again(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    app.ops.fail_next(NotifyError::permanent("403 forbidden"));
    app.ops.fail_next(NotifyError::permanent("403 forbidden"));
    app.webhook_json(SAMPLE_FAILED).await;
    eventually(10, "both jobs dead", || async {
        (app.count("SELECT COUNT(*) FROM outbox_jobs WHERE state = 'dead'")
            .await
            == 2)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs").await,
        2,
        "no alert about the lost alert"
    );
    assert_eq!(app.ops.attempts().len(), 2);
    app.stop().await;
}

async fn a_dead_letter_can_be_retried(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    app.ops
        .fail_next(NotifyError::permanent("404 no such hook"));
    app.webhook_json(SAMPLE_FAILED).await;
    let dead = eventually(10, "a dead letter", || async {
        let d = app.store.dead_letters().await.expect("listed");
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(
        app.store
            .retry_dead(Some(dead[0].id), "test-operator")
            .await
            .expect("revived"),
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM audit_log WHERE action = 'dead_letter_retry' AND actor = 'test-operator'")
            .await,
        1,
        "the operator's retry is on record"
    );
    eventually(10, "the retried delivery", || async {
        app.ops
            .delivered()
            .into_iter()
            .find(|n| n.kind() == "order_failed")
    })
    .await;
    assert_eq!(
        app.store
            .retry_dead(None, "test-operator")
            .await
            .expect("nothing left"),
        0
    );
    app.stop().await;
}

/// Makes the jobs of `notifier` as old as if their webhook came `hours` ago.
async fn age_jobs(app: &esim_courier_tests::TestApp, notifier: &str, hours: i64) {
    let moved =
        sqlx::query("UPDATE outbox_jobs SET created_at = created_at - $1 WHERE notifier = $2")
            .bind(hours * 3_600_000)
            .bind(notifier.to_owned())
            .execute(&app.db)
            .await
            .expect("aged")
            .rows_affected();
    assert_eq!(moved, 1, "one job of {notifier}");
}

/// The dead-letter alerts the operators got so far.
fn dead_letter_alerts(app: &esim_courier_tests::TestApp) -> usize {
    app.alerts()
        .iter()
        .filter(|a| a.kind.as_str() == "dead_letter")
        .count()
}

/// An operator retries a dead letter days after its webhook (the channel was down over a
/// weekend): a transient failure then is retried, not dead-lettered at once for the job's age.
async fn a_dead_letter_retried_long_after_its_webhook_gets_its_retries_again(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    app.customer
        .fail_next(NotifyError::permanent("550 mailbox unavailable"));
    app.register("2026032516xxxxxxxxxxx", json!({"email": "ana@example.com"}))
        .await;
    app.webhook_json(SAMPLE_COMPLETED).await;
    let dead = eventually(10, "a dead letter", || async {
        let d = app.store.dead_letters().await.expect("listed");
        (!d.is_empty()).then_some(d)
    })
    .await;
    // The policy allows an hour of retries; the job is two days old.
    age_jobs(&app, "customer", 48).await;
    app.customer
        .fail_next(NotifyError::transient("421 try again later"));
    assert_eq!(
        app.store
            .retry_dead(Some(dead[0].id), "test-operator")
            .await
            .expect("revived"),
        1
    );
    eventually(10, "the email after a retry", || async {
        (!app.customer.delivered().is_empty()).then_some(())
    })
    .await;
    assert_eq!(
        app.customer.attempts().len(),
        3,
        "refused, deferred, delivered"
    );
    assert_eq!(dead_letter_alerts(&app), 1, "only the first refusal's");
    app.stop().await;
}

/// The shop registers a customer a day after the webhook (after the `customer_unknown`
/// alert): the activation email gets its retries from then, not none for the job's age.
async fn an_email_registered_long_after_its_webhook_gets_its_retries(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    app.webhook_json(SAMPLE_COMPLETED).await;
    eventually(10, "the email waiting for its customer", || async {
        (app.count(
            "SELECT COUNT(*) FROM outbox_jobs WHERE notifier = 'customer' AND state = 'waiting'",
        )
        .await
            == 1)
            .then_some(())
    })
    .await;
    age_jobs(&app, "customer", 25).await;
    app.customer
        .fail_next(NotifyError::transient("450 greylisted, try again later"));
    app.register("2026032516xxxxxxxxxxx", json!({"email": "ana@example.com"}))
        .await;
    eventually(10, "the email after a retry", || async {
        (!app.customer.delivered().is_empty()).then_some(())
    })
    .await;
    assert_eq!(app.customer.attempts().len(), 2, "deferred, then delivered");
    assert_eq!(dead_letter_alerts(&app), 0);
    app.stop().await;
}

/// A notifier that never answers.
#[derive(Debug)]
struct Stuck;

#[async_trait]
impl Notifier for Stuck {
    fn name(&self) -> &str {
        "stuck"
    }
    fn audience(&self) -> Audience {
        Audience::Operator
    }
    async fn notify(&self, _: &Notification) -> Result<Receipt, NotifyError> {
        std::future::pending().await
    }
}

async fn shutdown_releases_the_lease_of_a_stuck_delivery(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = esim_courier_tests::migrated_store(&db.url).await;
    let event = WebhookPayload::from_slice(SAMPLE_FAILED.as_bytes())
        .and_then(|p| p.into_event(&CurrencyTable::default()))
        .expect("fixture parses");
    let receipt = NewReceipt {
        received_at_ms: now_ms(),
        remote_addr: None,
        body: SAMPLE_FAILED.as_bytes(),
        source: esim_courier_core::EventSource::Webhook,
    };
    store
        .intake(receipt, &event, |_, _| {
            vec![NewJob {
                notifier: "stuck".into(),
                kind: JobKind::OrderFailed,
                payload: None,
            }]
            .into()
        })
        .await
        .expect("recorded");
    let notifiers = HashMap::from([(
        "stuck".to_owned(),
        Registered {
            notifier: Arc::new(Stuck),
            policy: RetryPolicy {
                timeout: Duration::from_secs(600),
                ..RetryPolicy::default()
            },
            group_window: None,
        },
    )]);
    let config = DispatcherConfig {
        shutdown_grace: Duration::from_millis(200),
        ..DispatcherConfig::default()
    };
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(
        std::sync::Arc::new(Dispatcher::new(
            store.clone(),
            notifiers,
            Routes::default(),
            config,
        ))
        .run(shutdown.clone()),
    );
    let state = |store: Store| async move {
        let d = store
            .order_details("2026032517000000000042")
            .await
            .expect("reads")
            .expect("order");
        (d.jobs[0].state, d.jobs[0].attempts)
    };
    eventually(10, "the delivery to start", || async {
        (state(store.clone()).await.0 == JobState::InFlight).then_some(())
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("shutdown is prompt")
        .expect("clean");
    assert_eq!(
        state(store.clone()).await,
        (JobState::Pending, 0),
        "lease released, attempt not counted"
    );
    assert_eq!(
        store
            .claim("next-worker", 1000, 10)
            .await
            .expect("claims")
            .len(),
        1,
        "claimable again at once"
    );
    store.close().await;
}

async fn a_flipped_byte_in_a_stored_code_is_a_dead_letter_and_an_alert_not_a_loop(
    backend: Backend,
) {
    let options = AppOptions {
        dispatcher: false,
        ..AppOptions::default()
    };
    let Some(app) = spawn_app(backend, options).await else {
        return;
    };
    app.register(
        "2026032516xxxxxxxxxxx",
        serde_json::json!({"email": "ana@example.com"}),
    )
    .await;
    app.webhook_json(SAMPLE_COMPLETED).await;
    // One character of the stored envelope changed (a disk, a hand, an attacker): the value
    // no longer authenticates.
    use sqlx::Row;
    let sealed: String = sqlx::query("SELECT lpa FROM order_events")
        .fetch_one(&app.db)
        .await
        .expect("the event")
        .try_get("lpa")
        .expect("text");
    assert!(sealed.starts_with("enc:"), "the code is stored sealed");
    let mut flipped = sealed.into_bytes();
    flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
    sqlx::query("UPDATE order_events SET lpa = $1")
        .bind(String::from_utf8(flipped).expect("base64 is text"))
        .execute(&app.db)
        .await
        .expect("updated");
    // Another order after it is served as ever.
    let mut other: serde_json::Value = serde_json::from_str(SAMPLE_COMPLETED).expect("JSON");
    other["orderNo"] = serde_json::json!("2026032516other");
    app.register(
        "2026032516other",
        serde_json::json!({"email": "bo@example.com"}),
    )
    .await;
    app.webhook_json(other.to_string()).await;
    app.drain().await;
    let sent = app.customer.attempts();
    assert_eq!(sent.len(), 1, "only the other order's email went out");
    match &sent[0].content {
        esim_courier_core::Content::OrderCompleted(o) => {
            assert_eq!(o.order_no.as_str(), "2026032516other");
        }
        other => panic!("an activation email, not {other:?}"),
    }
    let dead = app.store.dead_letters().await.expect("listed");
    assert_eq!(dead.len(), 1, "{dead:?}");
    let error = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("order_events.lpa") && error.contains("2026032516xxxxxxxxxxx"),
        "the error names the column and the row: {error}"
    );
    let alerts = app.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind.as_str(), "decrypt_failed");
    assert_eq!(alerts[0].order_no.as_deref(), Some("2026032516xxxxxxxxxxx"));
    // The order's page says what is wrong instead of failing silently.
    let shown = app.store.order_details("2026032516xxxxxxxxxxx").await;
    assert!(
        matches!(shown, Err(esim_courier_store::StoreError::Decrypt { .. })),
        "{shown:?}"
    );
    app.stop().await;
}

/// An order's customer erased while its activation job for a grouping operator notifier was
/// under way, then given back (a shutdown): at its next claim it is cancelled, not sent in the
/// notifier's digest, as a customer notifier's job is.
async fn a_marked_activation_job_is_cancelled_in_a_digest_too(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = esim_courier_tests::migrated_store(&db.url).await;
    let (event, receipt) = esim_courier_tests::received(SAMPLE_COMPLETED);
    store
        .intake(receipt, &event, |_, _| {
            vec![NewJob {
                notifier: "ops".into(),
                kind: JobKind::OrderCompleted,
                payload: None,
            }]
            .into()
        })
        .await
        .expect("recorded");
    let customer = esim_courier_tests::customer("ana@traveller.example");
    store
        .register_customer(&event.order_no, &customer)
        .await
        .expect("registered");
    let claimed = store.claim("worker-a", 60_000, 10).await.expect("claims");
    assert_eq!(claimed.len(), 1);
    store
        .forget_customer("ana@traveller.example", "dpo")
        .await
        .expect("erased");
    assert!(store.job_release(&claimed[0]).await.expect("given back"));

    let ops = esim_courier_core::testing::RecordingNotifier::new("ops", Audience::Operator);
    let notifiers = HashMap::from([(
        "ops".to_owned(),
        Registered {
            notifier: Arc::new(ops.clone()),
            policy: RetryPolicy::default(),
            group_window: Some(Duration::from_millis(100)),
        },
    )]);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(
        Arc::new(Dispatcher::new(
            store.clone(),
            notifiers,
            Routes::default(),
            DispatcherConfig::default(),
        ))
        .run(shutdown.clone()),
    );
    let order_no = event.order_no.to_string();
    eventually(10, "the job cancelled", || async {
        let state = store
            .order_details(&order_no)
            .await
            .expect("reads")
            .expect("the order")
            .jobs
            .first()
            .map(|j| j.state);
        (state == Some(JobState::Cancelled)).then_some(())
    })
    .await;
    assert!(ops.attempts().is_empty(), "not sent in a digest");
    shutdown.cancel();
    run.await.expect("clean");
    store.close().await;
}
