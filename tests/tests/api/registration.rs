//! The order API: customer registration before or after the webhook.

use esim_courier_core::Content;
use esim_courier_tests::{
    eventually, on_both_backends, spawn_app, AppOptions, Backend, API_TOKEN, SAMPLE_COMPLETED,
};
use serde_json::json;

on_both_backends!(
    registration_creates_then_updates,
    registration_validates_its_fields,
    the_api_needs_its_bearer_token,
    webhook_before_registration_waits_then_notifies_once,
    registration_before_webhook_notifies_once,
    a_registration_in_any_language_is_read_back_and_notified,
    a_customer_never_registered_raises_an_alert,
    after_delivery_a_registration_with_another_address_is_refused_and_changes_nothing,
);

async fn registration_creates_then_updates(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let body = json!({"email": "ana@example.com", "name": "Ana", "locale": "zh-Hans", "price": "14.90", "currency": "USD"});
    let (status, answer) = app.register("ORD-10", body.clone()).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (201, Some("registered"))
    );
    let (status, _) = app
        .register(
            "ORD-10",
            json!({"email": "ana.b@example.com", "price": 15, "currency": 2}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, order) = app.order("ORD-10").await;
    assert_eq!(status, 200);
    assert_eq!(order["state"], "awaiting_webhook");
    assert_eq!(order["customer"]["email"], "ana.b@example.com");
    assert_eq!(order["customer"]["price"], "15");
    assert_eq!(order["customer"]["currency"], "USD");
    app.stop().await;
}

async fn registration_validates_its_fields(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let cases = [
        (json!({"name": "no email"}), "email"),
        (json!({"email": "not-an-address"}), "email"),
        // Addresses the mailer refuses to send to: refused here, not dead at delivery.
        (json!({"email": "ana..smith@example.com"}), "email"),
        (json!({"email": "ana.@example.com"}), "email"),
        (json!({"email": "a(b)@example.com"}), "email"),
        (
            json!({"email": "a@example.com", "locale": "../../etc"}),
            "locale",
        ),
        (
            json!({"email": "a@example.com", "price": "abc", "currency": "USD"}),
            "price",
        ),
        (
            json!({"email": "a@example.com", "price": "1.00"}),
            "currency",
        ),
        (
            json!({"email": "a@example.com", "name": "Ana\u{0}"}),
            "name",
        ),
        (
            json!({"email": "a@example.com", "price": "1.00", "currency": "US\u{0}D"}),
            "currency",
        ),
        (
            json!({"email": "a@example.com", "price": "1.00", "currency": "dollars"}),
            "currency",
        ),
        (
            json!({"email": "a@example.com", "price": "1.00", "currency": 99}),
            "currency",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app.register("ORD-11", body.clone()).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(answer["field"], field, "{body}");
    }
    let (status, answer) = app
        .register(
            "ORD-11",
            json!({"email": "a@example.com", "colour": "blue"}),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_json"))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM orders").await, 0);
    app.stop().await;
}

async fn the_api_needs_its_bearer_token(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let url = format!("{}/api/v1/orders/ORD-12", app.base);
    for token in [None, Some("wrong"), Some(esim_courier_tests::WEBHOOK_TOKEN)] {
        let mut req = app
            .client
            .put(&url)
            .json(&json!({"email": "a@example.com"}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        assert_eq!(req.send().await.expect("answers").status().as_u16(), 401);
    }
    let res = app
        .client
        .get(&url)
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 404);
    // The scheme's name in any case: a shop's client that writes `bearer` is let in (404:
    // past the token check); another scheme with the same token is not.
    for (scheme, want) in [("bearer", 404), ("BEARER", 404), ("Basic", 401)] {
        let res = app
            .client
            .get(&url)
            .header("authorization", format!("{scheme} {API_TOKEN}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(res.status().as_u16(), want, "{scheme}");
    }
    app.stop().await;
}

async fn webhook_before_registration_waits_then_notifies_once(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    assert_eq!(
        app.webhook_json(SAMPLE_COMPLETED).await.1["status"],
        "accepted"
    );
    eventually(10, "the job to wait for its customer", || async {
        (app.count("SELECT COUNT(*) FROM outbox_jobs WHERE state = 'waiting'")
            .await
            == 1)
            .then_some(())
    })
    .await;
    assert!(
        app.customer.attempts().is_empty(),
        "nothing is sent without a customer"
    );
    app.register(
        "2026032516xxxxxxxxxxx",
        json!({"email": "ana@example.com", "locale": "ms"}),
    )
    .await;
    let n = eventually(10, "the activation notification", || async {
        app.customer.delivered().into_iter().next()
    })
    .await;
    let Content::OrderCompleted(order) = n.content else {
        panic!("not an order")
    };
    assert_eq!(
        order
            .customer
            .and_then(|c| c.locale)
            .map(|l| l.to_string())
            .as_deref(),
        Some("ms")
    );
    // Registering again, and the provider retrying, send nothing more.
    app.register("2026032516xxxxxxxxxxx", json!({"email": "ana@example.com"}))
        .await;
    app.webhook_json(SAMPLE_COMPLETED).await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(app.customer.delivered().len(), 1);
    app.stop().await;
}

async fn registration_before_webhook_notifies_once(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    app.register("2026032516xxxxxxxxxxx", json!({"email": "ana@example.com"}))
        .await;
    app.webhook_json(SAMPLE_COMPLETED).await;
    app.webhook_json(SAMPLE_COMPLETED).await;
    eventually(10, "the activation notification", || async {
        (!app.customer.delivered().is_empty()).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(app.customer.delivered().len(), 1);
    app.stop().await;
}

/// `*` (any language), alone or as a list of that one item (`*,`, which a browser's
/// `Accept-Language` can be trimmed to), is kept as `*` and read back: the order shows, and
/// its activation is sent, in the default language.
async fn a_registration_in_any_language_is_read_back_and_notified(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, answer) = app
        .register(
            "2026032516xxxxxxxxxxx",
            json!({"email": "ana@example.com", "locale": "*,"}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let (status, order) = app.order("2026032516xxxxxxxxxxx").await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["customer"]["locale"], "*");
    app.webhook_json(SAMPLE_COMPLETED).await;
    eventually(10, "the activation notification", || async {
        (!app.customer.delivered().is_empty()).then_some(())
    })
    .await;
    let (status, order) = app.order("2026032516xxxxxxxxxxx").await;
    assert_eq!(status, 200, "{order}");
    app.stop().await;
}

async fn a_customer_never_registered_raises_an_alert(backend: Backend) {
    let options = AppOptions {
        customer_wait: std::time::Duration::from_millis(300),
        ..AppOptions::default()
    };
    let Some(app) = spawn_app(backend, options).await else {
        return;
    };
    app.webhook_json(SAMPLE_COMPLETED).await;
    let alert = app.first_alert(10, "the customer-unknown alert").await;
    assert_eq!(alert.kind.as_str(), "customer_unknown");
    assert_eq!(alert.order_no.as_deref(), Some("2026032516xxxxxxxxxxx"));
    // A late registration still delivers the email, and the alert is not repeated.
    app.register(
        "2026032516xxxxxxxxxxx",
        json!({"email": "late@example.com"}),
    )
    .await;
    eventually(10, "the late activation notification", || async {
        (!app.customer.delivered().is_empty()).then_some(())
    })
    .await;
    assert_eq!(app.ops.delivered().len(), 1);
    app.stop().await;
}

async fn after_delivery_a_registration_with_another_address_is_refused_and_changes_nothing(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let order_no = "2026032516xxxxxxxxxxx";
    app.register(order_no, json!({"email": "ana@example.com", "name": "Ana"}))
        .await;
    app.webhook_json(SAMPLE_COMPLETED).await;
    let order = eventually(10, "the activation recorded as delivered", || async {
        let (_, order) = app.order(order_no).await;
        (order["notifications"][0]["state"] == "done").then_some(order)
    })
    .await;
    let attempt = &order["notifications"][0]["attempt_log"][0];
    assert_eq!(attempt["outcome"], "delivered");
    assert_eq!(
        attempt["recipient"], "a***@example.com",
        "the attempt records where it went, masked"
    );

    let (status, answer) = app
        .register(
            order_no,
            json!({"email": "mallory@example.net", "name": "M"}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"], "already_delivered");
    assert_eq!(answer["field"], "email");
    assert_eq!(answer["deliveredTo"], "a***@example.com");
    assert!(!answer.to_string().contains("ana@"), "masked: {answer}");
    let (_, after) = app.order(order_no).await;
    assert_eq!(
        after["customer"], order["customer"],
        "the record is unchanged"
    );

    // The same address again is fine.
    let (status, _) = app
        .register(order_no, json!({"email": "ana@example.com", "name": "Ana"}))
        .await;
    assert_eq!(status, 200);
    app.drain().await;
    assert_eq!(app.customer.delivered().len(), 1, "nothing was sent again");
    app.stop().await;
}
