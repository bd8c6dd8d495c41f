//! A corpus of broken bodies, replayed against the running app: nothing panics, nothing
//! answers a 5xx, and the app still takes a good webhook afterwards.

use esim_courier_tests::{
    on_both_backends, spawn_app, AppOptions, Backend, SAMPLE_COMPLETED, WEBHOOK_TOKEN,
};

on_both_backends!(the_malformed_corpus_never_crashes_the_app_or_gets_a_5xx);

/// Truncations, wrong types, huge strings, invalid UTF-8, deep nesting, odd activation codes.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let sample = SAMPLE_COMPLETED.as_bytes();
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in (0..sample.len()).step_by(7) {
        out.push((format!("truncated at {cut}"), sample[..cut].to_vec()));
    }
    let wrong_types = [
        r#"{"orderNo": null, "result": "COMPLETED"}"#,
        r#"{"orderNo": true, "result": "COMPLETED"}"#,
        r#"{"orderNo": 1e309, "result": "COMPLETED"}"#,
        r#"{"orderNo": -0, "result": ["COMPLETED"]}"#,
        r#"{"orderNo": "A", "result": {"x": 1}}"#,
        r#"{"orderNo": "A", "result": "COMPLETED", "iccid": [], "lpa": {}, "price": [1], "currency": false}"#,
        r#"{"orderNo": "A", "result": "COMPLETED", "price": "NaN", "currency": "4"}"#,
        r#"{"orderNo": "A", "result": "COMPLETED", "price": "-5", "currency": "99999999999999999999"}"#,
        r#"{"orderNo": "A", "result": "COMPLETED", "lpa": "LPA:1$$$$$$$$$$$$"}"#,
        r#"{"orderNo": "A", "result": "COMPLETED", "lpa": "LPA:1$h\u0000st$id"}"#,
        r#"{"orderNo": "\u0000", "result": "FAILED"}"#,
        r#"{"orderNo": "N1", "result": "FAILED", "packageName": "a\u0000b", "packageCode": "\u0000", "iccid": "89\u0000"}"#,
        r#"{"orderNo": "N2", "result": "FAIL\u0000ED"}"#,
        r#"{"orderNo": "N3", "result": "COMPLETED", "iccid": "8944500102198304826", "lpa": "LPA:1$host$id", "currency": "\u0000", "price": "1"}"#,
        r#"{"orderNo": "\ud800", "result": "FAILED"}"#,
        r#"{"orderNo": "A", "orderNo": "B", "result": "FAILED"}"#,
        "[]",
        "null",
        "123",
        "\"orderNo\"",
        "{}",
        "{\"",
        "   ",
    ];
    for (i, body) in wrong_types.iter().enumerate() {
        out.push((format!("wrong types {i}"), body.as_bytes().to_vec()));
    }
    out.push((
        "invalid UTF-8".into(),
        b"{\"orderNo\": \"\xff\xfe\", \"result\": \"FAILED\"}".to_vec(),
    ));
    out.push(("lone continuation bytes".into(), vec![0x80; 64]));
    out.push((
        "a huge string".into(),
        format!(
            r#"{{"orderNo": "{}", "result": "FAILED"}}"#,
            "9".repeat(60_000)
        )
        .into_bytes(),
    ));
    out.push((
        "a huge package name".into(),
        format!(
            r#"{{"orderNo": "H1", "result": "FAILED", "packageName": "{}"}}"#,
            "x".repeat(60_000)
        )
        .into_bytes(),
    ));
    out.push(("over the limit".into(), vec![b' '; 70_000]));
    out.push((
        "deep arrays".into(),
        format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes(),
    ));
    out.push((
        "deep objects".into(),
        format!(
            r#"{{"orderNo":"D1","result":"FAILED","x":{}1{}}}"#,
            "{\"a\":".repeat(5_000),
            "}".repeat(5_000)
        )
        .into_bytes(),
    ));
    out.push(("many keys".into(), {
        let fields: Vec<String> = (0..3000).map(|i| format!("\"k{i}\":{i}")).collect();
        format!(
            r#"{{"orderNo":"K1","result":"FAILED",{}}}"#,
            fields.join(",")
        )
        .into_bytes()
    }));
    out
}

async fn the_malformed_corpus_never_crashes_the_app_or_gets_a_5xx(backend: Backend) {
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
    for (name, body) in corpus() {
        let res = app
            .post_raw(WEBHOOK_TOKEN, Some("application/json"), body)
            .await;
        let status = res.status().as_u16();
        assert!(
            matches!(status, 200 | 400 | 413 | 422),
            "{name}: HTTP {status}"
        );
        let json: serde_json::Value = res
            .json()
            .await
            .unwrap_or_else(|e| panic!("{name}: answer is not JSON: {e}"));
        assert!(json.is_object(), "{name}");
    }
    let (status, body) = app.webhook_json(SAMPLE_COMPLETED).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("accepted")),
        "still healthy after the corpus"
    );
    // Every refused body was kept.
    let refused = app
        .count("SELECT COUNT(*) FROM webhook_receipts WHERE outcome = 'quarantined'")
        .await;
    assert!(refused > 40, "{refused}");
    app.stop().await;
}
