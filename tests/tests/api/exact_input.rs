//! Hostile and unusual input keeps its identity: numbers never go through a float, and an
//! order number is never rewritten into another one.

use esim_courier_tests::{on_both_backends, spawn_app, AppOptions, Backend};
use serde_json::json;

on_both_backends!(
    two_long_numeric_order_numbers_differing_in_the_last_digit_are_two_orders,
    a_price_that_is_no_decimal_amount_is_dropped_with_a_warning_never_a_float,
    an_order_number_with_nul_is_refused_and_its_lookalike_is_its_own_order,
);

async fn two_long_numeric_order_numbers_differing_in_the_last_digit_are_two_orders(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    // JSON numbers, not strings: 21 digits, past what a u64 or an f64 holds exactly.
    let bodies = [
        r#"{"orderNo": 202603251612345678901, "result": "COMPLETED", "iccid": 89100100001234567890,
            "lpa": "LPA:1$rsp.example.com$AAAA1111", "currency": 2, "price": 4.5}"#,
        r#"{"orderNo": 202603251612345678902, "result": "COMPLETED", "iccid": 89100100001234567891,
            "lpa": "LPA:1$rsp.example.com$BBBB2222", "currency": 2, "price": 4.5}"#,
    ];
    for (body, order_no) in bodies
        .iter()
        .zip(["202603251612345678901", "202603251612345678902"])
    {
        let (status, answer) = app.webhook_json(*body).await;
        assert_eq!(
            (status, answer),
            (200, json!({"status": "accepted", "orderNo": order_no}))
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 2);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE notifier = 'customer'")
            .await,
        2,
        "each order gets its own activation job"
    );
    let (status, order) = app.order("202603251612345678901").await;
    assert_eq!(status, 200);
    assert_eq!(order["events"][0]["iccid"], "89100100001234567890");
    let (_, order) = app.order("202603251612345678902").await;
    assert_eq!(order["events"][0]["iccid"], "89100100001234567891");
    app.stop().await;
}

async fn a_price_that_is_no_decimal_amount_is_dropped_with_a_warning_never_a_float(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, answer) = app
        .webhook_json(r#"{"orderNo": "P-1", "result": "FAILED", "currency": 2, "price": 1e400}"#)
        .await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("accepted")));
    let (_, order) = app.order("P-1").await;
    let event = &order["events"][0];
    assert_eq!(event["price"], serde_json::Value::Null);
    let warnings = event["warnings"].to_string();
    assert!(warnings.contains("1e400"), "{warnings}");

    // A long numeric price is kept to the last digit.
    app.webhook_json(
        r#"{"orderNo": "P-2", "result": "FAILED", "currency": 2, "price": 12345678901234567.25}"#,
    )
    .await;
    let (_, order) = app.order("P-2").await;
    assert_eq!(order["events"][0]["price"], "12345678901234567.25");
    app.stop().await;
}

async fn an_order_number_with_nul_is_refused_and_its_lookalike_is_its_own_order(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, answer) = app
        .webhook_json(r#"{"orderNo": "A\u0000B", "result": "FAILED"}"#)
        .await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "invalid_payload");
    assert_eq!(answer["field"], "orderNo");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_receipts WHERE outcome = 'quarantined'")
            .await,
        1,
        "the refused body is kept"
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0);

    let (status, answer) = app
        .webhook_json(r#"{"orderNo": "A\uFFFDB", "result": "FAILED"}"#)
        .await;
    assert_eq!(
        (status, answer),
        (200, json!({"status": "accepted", "orderNo": "A\u{FFFD}B"}))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events").await, 1);
    app.stop().await;
}
