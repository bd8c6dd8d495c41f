//! Optional webhook hardening: allowlist, trusted proxies, signatures, token rotation, rate
//! limit. What is refused and what is kept is the same on both databases.

use std::num::NonZeroU32;

use esim_courier_receiver::{
    Hardening, RateLimit, SignatureAlgorithm, SignatureCheck, SignatureEncoding,
};
use esim_courier_tests::{
    on_both_backends, spawn_app, AppOptions, Backend, SAMPLE_COMPLETED, WEBHOOK_TOKEN,
};
use hmac::{Hmac, KeyInit, Mac};

on_both_backends!(
    the_allowlist_refuses_other_sources_and_believes_only_trusted_proxies,
    signed_webhooks_are_verified,
    several_tokens_work_at_once_during_a_rotation,
    the_rate_limit_answers_429_per_source,
);

fn options(hardening: Hardening) -> AppOptions {
    AppOptions {
        hardening,
        dispatcher: false,
        ..AppOptions::default()
    }
}

async fn post_from(app: &esim_courier_tests::TestApp, forwarded_for: Option<&str>) -> u16 {
    let mut req = app
        .client
        .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", app.base))
        .header("content-type", "application/json")
        .body(SAMPLE_COMPLETED);
    if let Some(ip) = forwarded_for {
        req = req.header("x-forwarded-for", ip);
    }
    req.send().await.expect("answers").status().as_u16()
}

async fn the_allowlist_refuses_other_sources_and_believes_only_trusted_proxies(backend: Backend) {
    let hardening = Hardening {
        allow_sources: vec!["203.0.113.0/24".parse().expect("cidr")],
        trusted_proxies: vec!["127.0.0.1/32".parse().expect("cidr")],
        ..Hardening::default()
    };
    let Some(app) = spawn_app(backend, options(hardening)).await else {
        return;
    };
    assert_eq!(
        post_from(&app, None).await,
        403,
        "the proxy itself is not an allowed source"
    );
    assert_eq!(post_from(&app, Some("198.51.100.7")).await, 403);
    assert_eq!(post_from(&app, Some("203.0.113.9")).await, 200);
    // A client cannot smuggle an allowed address in front of its own: the rightmost
    // untrusted address counts.
    assert_eq!(
        post_from(&app, Some("203.0.113.9, 198.51.100.7")).await,
        403
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM webhook_receipts").await, 1);
    app.stop().await;

    // Without trusted proxies the header is ignored: 127.0.0.1 is the source.
    let hardening = Hardening {
        allow_sources: vec!["127.0.0.0/8".parse().expect("cidr")],
        ..Hardening::default()
    };
    let Some(app) = spawn_app(backend, options(hardening)).await else {
        return;
    };
    assert_eq!(post_from(&app, Some("203.0.113.9")).await, 200);
    app.stop().await;
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

async fn signed_webhooks_are_verified(backend: Backend) {
    let hardening = Hardening {
        signature: Some(SignatureCheck {
            header: "x-provider-signature".into(),
            algorithm: SignatureAlgorithm::Sha256,
            encoding: SignatureEncoding::Hex,
            prefix: "sha256=".into(),
            secret: "shared-secret".to_owned().into(),
        }),
        ..Hardening::default()
    };
    let Some(app) = spawn_app(backend, options(hardening)).await else {
        return;
    };
    let post = |signature: Option<String>| {
        let mut req = app
            .client
            .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", app.base))
            .header("content-type", "application/json")
            .body(SAMPLE_COMPLETED);
        if let Some(s) = signature {
            req = req.header("x-provider-signature", s);
        }
        async move { req.send().await.expect("answers") }
    };
    let good = format!(
        "sha256={}",
        sign("shared-secret", SAMPLE_COMPLETED.as_bytes())
    );
    assert_eq!(post(Some(good)).await.status().as_u16(), 200);
    for bad in [
        None,
        Some(format!(
            "sha256={}",
            sign("other-secret", SAMPLE_COMPLETED.as_bytes())
        )),
        Some("sha256=zz".into()),
    ] {
        let res = post(bad).await;
        assert_eq!(res.status().as_u16(), 401);
        let body: serde_json::Value = res.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_signature");
    }
    // Refused bodies are kept for operators, never lost.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM webhook_receipts WHERE outcome = 'quarantined'")
            .await,
        3
    );
    app.stop().await;
}

async fn several_tokens_work_at_once_during_a_rotation(backend: Backend) {
    let options = AppOptions {
        webhook_tokens: vec!["old-token", "new-token"],
        dispatcher: false,
        ..AppOptions::default()
    };
    let Some(app) = spawn_app(backend, options).await else {
        return;
    };
    for (token, status) in [
        ("old-token", 200),
        ("new-token", 200),
        ("older-token", 401),
        ("", 404),
    ] {
        let res = app
            .post_raw(token, Some("application/json"), SAMPLE_COMPLETED)
            .await;
        assert_eq!(res.status().as_u16(), status, "token {token:?}");
    }
    app.stop().await;
}

async fn the_rate_limit_answers_429_per_source(backend: Backend) {
    let limit = RateLimit {
        per_second: NonZeroU32::MIN,
        burst: NonZeroU32::new(3).expect("3"),
    };
    let Some(app) = spawn_app(
        backend,
        options(Hardening {
            rate_limit: Some(limit),
            ..Hardening::default()
        }),
    )
    .await
    else {
        return;
    };
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let res = app
            .post_raw(WEBHOOK_TOKEN, Some("application/json"), SAMPLE_COMPLETED)
            .await;
        if res.status().as_u16() == 429 && retry_after.is_none() {
            retry_after = res
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
        statuses.push(res.status().as_u16());
    }
    assert_eq!(
        &statuses[..3],
        [200, 200, 200],
        "the burst passes: {statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(
        retry_after.as_deref(),
        Some("1"),
        "429 says when to come back"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(post_from(&app, None).await, 200, "the bucket refills");
    app.stop().await;
}
