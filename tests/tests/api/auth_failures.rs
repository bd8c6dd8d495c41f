//! Unauthenticated floods are visible: wrong webhook tokens and wrong API bearer tokens raise
//! one `auth_failures` alert when they pass the rate, not one per request.

use esim_courier_core::AlertKind;
use esim_courier_tests::{eventually, on_both_backends, spawn_app, AppOptions, Backend};

on_both_backends!(two_hundred_wrong_token_webhooks_in_a_minute_raise_one_auth_failures_alert);

async fn two_hundred_wrong_token_webhooks_in_a_minute_raise_one_auth_failures_alert(
    backend: Backend,
) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    for i in 0..200 {
        let res = app
            .post_raw(&format!("guess-{i}"), Some("application/json"), "{}")
            .await;
        assert_eq!(res.status().as_u16(), 401);
    }
    for _ in 0..5 {
        let res = app
            .client
            .get(format!("{}/api/v1/orders/ORD-1", app.base))
            .bearer_auth("not-the-api-token")
            .send()
            .await
            .expect("answers");
        assert_eq!(res.status().as_u16(), 401);
    }
    // The alert is written off the request path: wait for its job, then deliver everything.
    eventually(10, "the auth_failures alert job", || async {
        (app.count("SELECT COUNT(*) FROM outbox_jobs WHERE kind = 'alert'")
            .await
            > 0)
        .then_some(())
    })
    .await;
    app.drain().await;
    let alerts = app.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].kind, AlertKind::AuthFailures);
    assert!(
        alerts[0].reason.contains("127.0.0.1"),
        "{}",
        alerts[0].reason
    );
    assert!(
        !alerts[0].reason.contains("guess-"),
        "the guessed tokens are not repeated"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_receipts").await,
        0,
        "unauthenticated bodies are not stored"
    );
    app.stop().await;
}
