//! Every error code of the webhook, and what is kept of refused bodies.

use esim_courier_tests::{
    eventually, on_both_backends, spawn_app, AppOptions, Backend, SAMPLE_COMPLETED,
};
use serde_json::Value;

on_both_backends!(
    a_wrong_token_is_401_and_nothing_is_stored,
    a_token_of_any_shape_reaches_the_token_check_or_no_route,
    a_body_over_the_limit_is_413_before_parsing_and_quarantined,
    a_non_json_content_type_is_415_and_quarantined,
    broken_json_is_400_and_quarantined_with_an_alert,
    missing_order_no_or_result_is_422_naming_the_field,
    an_unreachable_store_answers_503,
    health_and_readiness,
    unknown_paths_wrong_methods_and_huge_registrations_get_json_errors,
);

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let body: Value = res.json().await.expect("error bodies are JSON");
    assert!(
        body["error"].is_string() && body["message"].is_string(),
        "{body}"
    );
    (status, body)
}

async fn a_wrong_token_is_401_and_nothing_is_stored(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, body) = error_of(
        app.post_raw("not-the-token", Some("application/json"), SAMPLE_COMPLETED)
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_receipts").await, 0);
    app.stop().await;
}

/// The route's `{token}` is one non-empty path segment, whatever its characters: anything
/// else is no route at all.
async fn a_token_of_any_shape_reaches_the_token_check_or_no_route(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let right = esim_courier_tests::WEBHOOK_TOKEN;
    let cases = [
        // Percent-encoded UTF-8, an encoded slash, an encoded space: one segment each.
        ("t%C3%B6k%C3%A9n".to_owned(), 401, "unauthorized"),
        ("a%2Fb".to_owned(), 401, "unauthorized"),
        (format!("{right}%20"), 401, "unauthorized"),
        ("%F0%9F%93%B1".to_owned(), 401, "unauthorized"),
        // No segment, or two.
        (String::new(), 404, "not_found"),
        ("a/b".to_owned(), 404, "not_found"),
        (format!("{right}/"), 404, "not_found"),
    ];
    for (token, status, error) in cases {
        let (got, body) = error_of(
            app.post_raw(&token, Some("application/json"), SAMPLE_COMPLETED)
                .await,
        )
        .await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{token}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_receipts").await, 0);
    app.stop().await;
}

async fn a_body_over_the_limit_is_413_before_parsing_and_quarantined(backend: Backend) {
    let options = AppOptions {
        max_body_bytes: 1024,
        ..AppOptions::default()
    };
    let Some(app) = spawn_app(backend, options).await else {
        return;
    };
    // Not even JSON: the size check comes first.
    let big = format!(
        "{{\"orderNo\":\"BIG-1\",\"result\":\"COMPLETED\",\"pad\":\"{}\"",
        "x".repeat(5000)
    );
    let (status, body) = error_of(app.post_webhook(big).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_receipts WHERE outcome = 'quarantined' AND http_status = 413").await, 1);
    // A chunked body with no Content-Length is cut at the limit too.
    let stream =
        futures_util::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![b' '; 512])));
    let res = app
        .post_raw(
            esim_courier_tests::WEBHOOK_TOKEN,
            Some("application/json"),
            reqwest::Body::wrap_stream(stream),
        )
        .await;
    assert_eq!(res.status().as_u16(), 413);
    app.stop().await;
}

async fn a_non_json_content_type_is_415_and_quarantined(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, body) = error_of(
        app.post_raw(
            esim_courier_tests::WEBHOOK_TOKEN,
            Some("text/plain"),
            SAMPLE_COMPLETED,
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (status, _) = error_of(
        app.post_raw(esim_courier_tests::WEBHOOK_TOKEN, None, SAMPLE_COMPLETED)
            .await,
    )
    .await;
    assert_eq!(status, 415);
    // The body is kept, tied to its order, so nothing the provider sent is lost.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_receipts WHERE outcome = 'quarantined' AND order_no = '2026032516xxxxxxxxxxx'").await,
        2
    );
    // application/json with a charset is fine.
    let ok = app
        .post_raw(
            esim_courier_tests::WEBHOOK_TOKEN,
            Some("application/json; charset=utf-8"),
            SAMPLE_COMPLETED,
        )
        .await;
    assert_eq!(ok.status().as_u16(), 200);
    app.stop().await;
}

async fn broken_json_is_400_and_quarantined_with_an_alert(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    for body in [&b"{\"orderNo\": \"1\""[..], b"[1,2]", b"\xff\xfe{}", b""] {
        let (status, answer) = error_of(app.post_webhook(body.to_vec()).await).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some("invalid_json")),
            "{body:?}"
        );
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_receipts WHERE outcome = 'quarantined' AND http_status = 400").await, 4);
    let alerts = eventually(10, "four rejection alerts", || async {
        let alerts = app.alerts();
        (alerts.len() == 4).then_some(alerts)
    })
    .await;
    assert!(alerts.iter().all(|a| a.kind.as_str() == "webhook_rejected"));
    app.stop().await;
}

async fn missing_order_no_or_result_is_422_naming_the_field(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let cases = [
        (r#"{"result":"COMPLETED"}"#, "orderNo"),
        (r#"{"orderNo":"","result":"COMPLETED"}"#, "orderNo"),
        (r#"{"orderNo":{"a":1},"result":"COMPLETED"}"#, "orderNo"),
        (r#"{"orderNo":"ORD-5"}"#, "result"),
        (r#"{"orderNo":"ORD-5","result":true}"#, "result"),
    ];
    for (body, field) in cases {
        let (status, answer) = error_of(app.post_webhook(body).await).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(answer["error"], "invalid_payload");
        assert_eq!(answer["field"], field, "{body}");
    }
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_receipts WHERE outcome = 'quarantined'")
            .await,
        5
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_receipts WHERE order_no = 'ORD-5'")
            .await,
        2
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events").await, 0);
    // The order the refused bodies name is found, as the rejection alert's command says
    // (`orders show ORD-5`): still awaiting a usable webhook, its two bodies quarantined.
    let (status, order) = app.order("ORD-5").await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["state"], "awaiting_webhook");
    let details = app
        .store
        .order_details("ORD-5")
        .await
        .expect("reads")
        .expect("on record");
    let outcomes: Vec<&str> = details.receipts.iter().map(|r| r.2.as_str()).collect();
    assert_eq!(outcomes, ["quarantined", "quarantined"]);
    // The provider's retry with a result is then recorded as usual.
    let retry = r#"{"orderNo":"ORD-5","result":"FAILED"}"#;
    assert_eq!(app.webhook_json(retry).await.0, 200);
    let (_, order) = app.order("ORD-5").await;
    assert_eq!(order["state"], "FAILED", "{order}");
    app.stop().await;
}

async fn an_unreachable_store_answers_503(backend: Backend) {
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
    assert_eq!(
        app.client
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .expect("answers")
            .status()
            .as_u16(),
        200
    );
    app.store.close().await;
    let (status, body) = error_of(app.post_webhook(SAMPLE_COMPLETED).await).await;
    assert_eq!((status, body["error"].as_str()), (503, Some("unavailable")));
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(ready.status().as_u16(), 503);
    // Liveness does not depend on the store.
    let live = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_receipts").await, 0);
    app.stop().await;
}

async fn health_and_readiness(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let res = app
            .client
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("answers");
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.headers().contains_key("x-request-id"));
        let body: Value = res.json().await.expect("JSON");
        assert_eq!(body["status"], status);
    }
    app.stop().await;
}

async fn unknown_paths_wrong_methods_and_huge_registrations_get_json_errors(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let (status, body) = error_of(
        app.client
            .get(format!("{}/nope", app.base))
            .send()
            .await
            .expect("answers"),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let wrong_method = app
        .client
        .get(format!(
            "{}/webhooks/order/{}",
            app.base,
            esim_courier_tests::WEBHOOK_TOKEN
        ))
        .send()
        .await
        .expect("answers");
    let (status, body) = error_of(wrong_method).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    let huge = serde_json::json!({"email": "a@example.com", "name": "x".repeat(40_000)});
    let (status, body) = app.register("ORD-BIG", huge).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    app.stop().await;
}
