//! The intake rules, over HTTP.

use esim_courier_core::Content;
use esim_courier_tests::{
    eventually, on_both_backends, spawn_app, AppOptions, Backend, SAMPLE_COMPLETED, SAMPLE_FAILED,
};
use serde_json::{json, Value};

on_both_backends!(
    the_providers_sample_is_accepted_and_recorded_durably,
    a_retry_with_other_key_order_and_spacing_is_a_duplicate,
    failed_then_completed_is_a_new_event_and_the_customer_is_notified,
    completed_then_failed_is_a_conflict_and_operators_are_alerted,
    a_second_completed_with_another_iccid_is_a_conflict,
    failed_with_empty_iccid_and_lpa_is_accepted_and_reaches_operators,
    numbers_instead_of_strings_are_accepted,
    unknown_extra_fields_are_kept_in_the_raw_receipt,
    an_unrecognised_result_is_recorded_and_alerted,
    completed_without_a_usable_activation_code_is_recorded_and_alerted,
    fifty_simultaneous_deliveries_make_one_order_and_one_event,
    simultaneous_different_first_results_of_one_order_follow_the_rules,
    a_retry_is_a_duplicate_even_when_the_orders_event_count_is_wrong,
    two_hundred_simultaneous_orders_are_all_recorded,
    webhooks_and_an_operator_command_write_the_same_database_at_once,
);

async fn the_providers_sample_is_accepted_and_recorded_durably(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, body) = app.webhook_json(SAMPLE_COMPLETED).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "accepted", "orderNo": "2026032516xxxxxxxxxxx"})
    );
    // The answer came after the commit: the rows are there now.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_receipts WHERE outcome = 'accepted'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE state = 'COMPLETED'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT recorded_events FROM orders").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE notifier = 'customer'")
            .await,
        1
    );
    let (status, order) = app.order("2026032516xxxxxxxxxxx").await;
    assert_eq!(status, 200);
    let event = &order["events"][0];
    assert_eq!(event["packageName"], "Malaysia, 1 Day, 1GB, 256kbps");
    assert_eq!(event["currency"], "SGD");
    assert_eq!(event["price"], "9.99");
    // The matching ID is masked in the API.
    assert_eq!(event["activationCode"], "LPA:1$rsp.demo$************xxxx");
    assert!(!order.to_string().contains("69C32E7D"), "{order}");
    // The placeholder ICCID is a warning, not a rejection.
    assert!(
        event["warnings"][0]
            .as_str()
            .is_some_and(|w| w.contains("ICCID")),
        "{event}"
    );
    app.stop().await;
}

async fn a_retry_with_other_key_order_and_spacing_is_a_duplicate(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    assert_eq!(
        app.webhook_json(SAMPLE_COMPLETED).await.1["status"],
        "accepted"
    );
    let reordered = r#"{"result":"COMPLETED","price":"9.99","packageName":"Malaysia, 1 Day, 1GB, 256kbps",
        "packageCode":"YN2602130xxxxxx","lpa":"LPA:1$rsp.demo$69C32E7Dxxxxxxxx","iccid":"8910010000xxxxxxxxxx",
        "currency":"4","orderNo":"2026032516xxxxxxxxxxx"}"#;
    let (status, body) = app.webhook_json(reordered).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"status": "duplicate", "orderNo": "2026032516xxxxxxxxxxx"})
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_receipts").await, 2);
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_jobs").await, 1);
    app.register("2026032516xxxxxxxxxxx", json!({"email": "ana@example.com"}))
        .await;
    eventually(10, "the customer notification", || async {
        (!app.customer.delivered().is_empty()).then_some(())
    })
    .await;
    assert_eq!(app.customer.delivered().len(), 1);
    app.stop().await;
}

async fn failed_then_completed_is_a_new_event_and_the_customer_is_notified(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let failed = r#"{"orderNo":"ORD-1","result":"FAILED","iccid":"","lpa":"","packageName":"Japan, 7 Days, 5GB","price":"12.50","currency":"2"}"#;
    let completed = r#"{"orderNo":"ORD-1","result":"COMPLETED","iccid":"8944500102198304826","lpa":"LPA:1$smdp.example.com$ABC-123","packageName":"Japan, 7 Days, 5GB","price":"12.50","currency":"2"}"#;
    app.register("ORD-1", json!({"email": "ken@example.jp", "locale": "ja"}))
        .await;
    assert_eq!(app.webhook_json(failed).await.1["status"], "accepted");
    assert_eq!(app.webhook_json(completed).await.1["status"], "accepted");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM order_events WHERE order_no = 'ORD-1'")
            .await,
        2
    );
    let delivered = eventually(10, "the activation notification", || async {
        let d = app.customer.delivered();
        (!d.is_empty()).then_some(d)
    })
    .await;
    let Content::OrderCompleted(order) = &delivered[0].content else {
        panic!("not a completed order")
    };
    assert_eq!(
        order.activation_code.qr_text(),
        "LPA:1$smdp.example.com$ABC-123"
    );
    assert_eq!(
        order.customer.as_ref().map(|c| c.email.as_str()),
        Some("ken@example.jp")
    );
    eventually(10, "the failed-order notification", || async {
        (!app.ops.delivered().is_empty()).then_some(())
    })
    .await;
    assert_eq!(app.ops.delivered()[0].kind(), "order_failed");
    let (_, order) = app.order("ORD-1").await;
    assert_eq!(order["state"], "COMPLETED");
    app.stop().await;
}

async fn completed_then_failed_is_a_conflict_and_operators_are_alerted(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    app.register("2026032516xxxxxxxxxxx", json!({"email": "ana@example.com"}))
        .await;
    assert_eq!(
        app.webhook_json(SAMPLE_COMPLETED).await.1["status"],
        "accepted"
    );
    let failed = r#"{"orderNo":"2026032516xxxxxxxxxxx","result":"FAILED","iccid":"","lpa":""}"#;
    let (status, body) = app.webhook_json(failed).await;
    assert_eq!(
        status, 200,
        "a conflict is recorded, so the provider must not retry"
    );
    assert_eq!(body["status"], "conflict");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM order_events WHERE disposition = 'conflict'")
            .await,
        1
    );
    let alert = app.first_alert(10, "the conflict alert").await;
    assert_eq!(alert.kind.as_str(), "conflict");
    assert_eq!(alert.order_no.as_deref(), Some("2026032516xxxxxxxxxxx"));
    // The order keeps its COMPLETED state and the customer got exactly one notification.
    let (_, order) = app.order("2026032516xxxxxxxxxxx").await;
    assert_eq!(order["state"], "COMPLETED");
    eventually(10, "the activation notification", || async {
        (!app.customer.delivered().is_empty()).then_some(())
    })
    .await;
    assert_eq!(app.customer.delivered().len(), 1);
    app.stop().await;
}

async fn a_second_completed_with_another_iccid_is_a_conflict(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let first = r#"{"orderNo":"ORD-2","result":"COMPLETED","iccid":"8944500102198304826","lpa":"LPA:1$smdp.example.com$FIRST"}"#;
    let second = r#"{"orderNo":"ORD-2","result":"COMPLETED","iccid":"89852000000000000001","lpa":"LPA:1$smdp.example.com$SECOND"}"#;
    assert_eq!(app.webhook_json(first).await.1["status"], "accepted");
    assert_eq!(app.webhook_json(second).await.1["status"], "conflict");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE notifier = 'customer'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE kind = 'alert'")
            .await,
        1
    );
    app.stop().await;
}

async fn failed_with_empty_iccid_and_lpa_is_accepted_and_reaches_operators(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, body) = app.webhook_json(SAMPLE_FAILED).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    let n = eventually(10, "the failed-order notification", || async {
        app.ops.delivered().into_iter().next()
    })
    .await;
    let Content::OrderFailed(order) = n.content else {
        panic!("not a failed order: {n:?}")
    };
    assert_eq!(order.order_no.as_str(), "2026032517000000000042");
    assert_eq!(order.package_name.as_deref(), Some("Japan, 7 Days, 5GB"));
    assert_eq!(
        order.contract_price.map(|m| m.to_string()).as_deref(),
        Some("12.50 USD")
    );
    assert!(app.customer.attempts().is_empty());
    app.stop().await;
}

async fn numbers_instead_of_strings_are_accepted(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let body = r#"{"orderNo": 2026032599, "currency": 3, "price": 7.5, "iccid": "8944500102198304826",
        "lpa": "LPA:1$smdp.example.com$NUM-1", "result": "COMPLETED"}"#;
    let (status, answer) = app.webhook_json(body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["orderNo"], "2026032599");
    let (_, order) = app.order("2026032599").await;
    assert_eq!(order["events"][0]["currency"], "EUR");
    assert_eq!(order["events"][0]["price"], "7.5");
    app.stop().await;
}

async fn unknown_extra_fields_are_kept_in_the_raw_receipt(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let mut payload: Value = serde_json::from_str(SAMPLE_COMPLETED).expect("fixture is JSON");
    payload["smdpStatus"] = json!("RELEASED");
    payload["extra"] = json!({"nested": [1, 2, 3]});
    let (status, _) = app.webhook_json(payload.to_string()).await;
    assert_eq!(status, 200);
    use sqlx::Row;
    let id: i64 = sqlx::query("SELECT id FROM webhook_receipts")
        .fetch_one(&app.db)
        .await
        .expect("a receipt")
        .try_get("id")
        .expect("an id");
    let raw = app
        .store
        .receipt_body(id)
        .await
        .expect("the body decrypts")
        .expect("the receipt");
    let stored: Value = serde_json::from_slice(&raw).expect("stored body is the JSON sent");
    assert_eq!(stored, payload);
    app.stop().await;
}

async fn an_unrecognised_result_is_recorded_and_alerted(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, body) = app
        .webhook_json(r#"{"orderNo":"ORD-3","result":"REFUNDED"}"#)
        .await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    let (_, order) = app.order("ORD-3").await;
    assert_eq!(order["events"][0]["result"], "REFUNDED");
    let alert = app.first_alert(10, "the alert").await;
    assert_eq!(alert.kind.as_str(), "unrecognised_result");
    app.stop().await;
}

async fn completed_without_a_usable_activation_code_is_recorded_and_alerted(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let body = r#"{"orderNo":"ORD-4","result":"COMPLETED","iccid":"8944500102198304826","lpa":"LPA:1$host$id$1.2$1$extra"}"#;
    assert_eq!(app.webhook_json(body).await.0, 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM order_events WHERE order_no = 'ORD-4'")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE notifier = 'customer'")
            .await,
        0
    );
    let alert = app.first_alert(10, "the alert").await;
    assert_eq!(alert.kind.as_str(), "missing_activation_code");
    assert!(alert.reason.contains("at most 5"), "{}", alert.reason);
    app.stop().await;
}

async fn fifty_simultaneous_deliveries_make_one_order_and_one_event(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let answers =
        futures_util::future::join_all((0..50).map(|_| app.webhook_json(SAMPLE_COMPLETED))).await;
    let mut accepted = 0;
    let mut duplicate = 0;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        match body["status"].as_str() {
            Some("accepted") => accepted += 1,
            Some("duplicate") => duplicate += 1,
            other => panic!("unexpected status {other:?}"),
        }
    }
    assert_eq!((accepted, duplicate), (1, 49));
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_receipts").await, 50);
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_jobs").await, 1);
    app.stop().await;
}

/// On PostgreSQL an order's first result is recorded in one statement that takes the order
/// only while it has no recorded event; the others go through the full intake. Racing
/// different first results, on new and on registered orders, must still give exactly one
/// accepted COMPLETED per order, the rest by the rules, and one activation job.
async fn simultaneous_different_first_results_of_one_order_follow_the_rules(backend: Backend) {
    let Some(app) = spawn_app(
        backend,
        AppOptions {
            dispatcher: false,
            ..AppOptions::default()
        },
    )
    .await
    else {
        return;
    };
    let sample: Value = serde_json::from_str(SAMPLE_COMPLETED).expect("the sample parses");
    let rounds = 20;
    for round in 0..rounds {
        let order_no = format!("RACE-{round}");
        if round % 2 == 0 {
            let (status, _) = app
                .register(&order_no, json!({"email": "ana@example.com"}))
                .await;
            assert_eq!(status, 201);
        }
        let completed = |code: &str| {
            let mut body = sample.clone();
            body["orderNo"] = json!(order_no);
            body["lpa"] = json!(format!("LPA:1$rsp.demo${code}"));
            body.to_string()
        };
        let failed = json!({"orderNo": order_no, "result": "FAILED", "iccid": "", "lpa": ""});
        let bodies = [
            completed("69C32E7DAAAA0001"),
            completed("69C32E7DBBBB0002"),
            failed.to_string(),
            completed("69C32E7DAAAA0001"),
        ];
        let answers =
            futures_util::future::join_all(bodies.into_iter().map(|b| app.webhook_json(b))).await;
        let statuses: Vec<&str> = answers
            .iter()
            .map(|(status, body)| {
                assert_eq!(*status, 200, "{body}");
                body["status"].as_str().expect("a status")
            })
            .collect();
        assert!(
            statuses.iter().filter(|s| **s == "accepted").count() >= 1,
            "{statuses:?}"
        );
        let accepted_completed = app
            .count(&format!(
                "SELECT COUNT(*) FROM order_events WHERE order_no = '{order_no}'
                    AND result = 'COMPLETED' AND disposition = 'accepted'"
            ))
            .await;
        assert_eq!(accepted_completed, 1, "round {round}: {statuses:?}");
        // Two identical COMPLETED: one of the four is always a duplicate.
        assert_eq!(
            statuses.iter().filter(|s| **s == "duplicate").count(),
            1,
            "round {round}: {statuses:?}"
        );
        let events = app
            .count(&format!(
                "SELECT COUNT(*) FROM order_events WHERE order_no = '{order_no}'"
            ))
            .await;
        assert_eq!(events, 3, "round {round}: one event per distinct delivery");
        let counted = app
            .count(&format!(
                "SELECT recorded_events FROM orders WHERE order_no = '{order_no}'"
            ))
            .await;
        assert_eq!(
            counted, events,
            "round {round}: the order counts its events"
        );
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE kind = 'order_completed'")
            .await,
        rounds,
        "one activation per order"
    );
    app.stop().await;
}

/// The one-statement path trusts `orders.recorded_events`; a wrong count (edited by hand)
/// must not turn the provider's retry into an error: the full intake reads the events.
async fn a_retry_is_a_duplicate_even_when_the_orders_event_count_is_wrong(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, body) = app.webhook_json(SAMPLE_COMPLETED).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("accepted")));
    sqlx::query("UPDATE orders SET recorded_events = 0")
        .execute(&app.db)
        .await
        .expect("the count, edited");
    let (status, body) = app.webhook_json(SAMPLE_COMPLETED).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("duplicate")),
        "{body}"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_receipts").await, 2);
    app.stop().await;
}

async fn two_hundred_simultaneous_orders_are_all_recorded(backend: Backend) {
    let Some(app) = spawn_app(
        backend,
        AppOptions {
            dispatcher: false,
            ..AppOptions::default()
        },
    )
    .await
    else {
        return;
    };
    // Concurrent intakes share commits on SQLite (group commit): each must still get its own
    // answer, and a duplicate inside the same batch must still be recognised.
    let bodies: Vec<String> = (0..200)
        .map(|i| {
            format!(
                r#"{{"orderNo":"BULK-{}","result":"FAILED","iccid":"","lpa":""}}"#,
                i % 150
            )
        })
        .collect();
    let answers =
        futures_util::future::join_all(bodies.into_iter().map(|b| app.webhook_json(b))).await;
    let accepted = answers
        .iter()
        .filter(|(s, b)| *s == 200 && b["status"] == "accepted")
        .count();
    let duplicate = answers
        .iter()
        .filter(|(s, b)| *s == 200 && b["status"] == "duplicate")
        .count();
    assert_eq!((accepted, duplicate), (150, 50), "{answers:?}");
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events").await, 150);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_receipts").await,
        200
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM outbox_jobs").await, 150);
    app.stop().await;
}

async fn webhooks_and_an_operator_command_write_the_same_database_at_once(backend: Backend) {
    let Some(app) = spawn_app(
        backend,
        AppOptions {
            dispatcher: false,
            ..AppOptions::default()
        },
    )
    .await
    else {
        return;
    };
    // A second store on the same database, as an operator command (`resend`, `dead-letters
    // retry`) opens it beside the running service. On SQLite both are writers of one file:
    // each waits for the other's lock, neither fails.
    let other = esim_courier_store::Store::connect(&esim_courier_store::StoreOptions::new(
        app.database_url(),
        esim_courier_tests::test_keys(),
    ))
    .await
    .expect("a second store opens");
    let webhooks = futures_util::future::join_all((0..100).map(|i| {
        app.webhook_json(format!(
            r#"{{"orderNo":"BOTH-{i}","result":"FAILED","iccid":"","lpa":""}}"#
        ))
    }));
    let registrations = async {
        for i in 0..100 {
            let customer = esim_courier_core::Customer {
                email: esim_courier_core::EmailAddress::parse(&format!("traveller{i}@example.com"))
                    .expect("an address"),
                name: None,
                locale: None,
                retail_price: None,
            };
            let order_no =
                esim_courier_core::OrderNo::parse(&format!("BOTH-{i}")).expect("an order number");
            other
                .register_customer(&order_no, &customer)
                .await
                .expect("the registration is written");
        }
    };
    let (answers, ()) = tokio::join!(webhooks, registrations);
    assert!(
        answers
            .iter()
            .all(|(s, b)| *s == 200 && b["status"] == "accepted"),
        "{answers:?}"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE order_no LIKE 'BOTH-%' AND customer_email IS NOT NULL AND state = 'FAILED'")
            .await,
        100
    );
    other.close().await;
    app.stop().await;
}
