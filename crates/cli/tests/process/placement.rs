//! `POST /api/v1/placements` against the fake provider: one provider order per reference,
//! whatever the retries, races and crashes; the provider's errors handled as its table says;
//! the placement's customer emailed when the result comes.

use std::time::Duration;

use esim_courier_tests::provider::{FakeProvider, Scripted};
use esim_courier_tests::smtp::{open_activation_email, read_qr, readable_text, SmtpServer};
use esim_courier_tests::{on_both_backends, test_db, Backend};
use serde_json::{json, Value};

use crate::email::{order_json, to_customers};
use crate::harness::{edit_config, run_cli, wait_until, Server, API_TOKEN, WEBHOOK_TOKEN};
use crate::reconcile::{world, World, ICCID, LPA, QUICK};

on_both_backends!(
    one_reference_places_one_order_and_its_customer_gets_the_email,
    a_placement_killed_after_the_provider_placed_it_is_not_placed_twice,
    a_webhook_before_the_placements_answer_is_emailed_when_the_answer_commits,
    the_providers_errors_retry_alert_or_fail_the_placement,
    a_placement_whose_customer_is_forgotten_before_it_is_placed_fails_and_says_why,
    a_customer_forgotten_while_the_provider_places_their_order_is_not_bound_to_it,
);

/// No sweeps, and lookups far off: only placements talk to the provider here.
fn placing_world(db_url: &str) -> World {
    world(db_url, "0s", &[("expect_within", "1h".into())])
}

fn body(reference: &str, package: &str, email: &str) -> Value {
    json!({"reference": reference, "packageCode": package, "email": email, "name": "Ana",
           "locale": "en", "price": "14.90", "currency": "USD"})
}

async fn post(client: &reqwest::Client, server: &Server, body: &Value) -> (u16, Value) {
    let res = client
        .post(format!("{}/api/v1/placements", server.base))
        .bearer_auth(API_TOKEN)
        .json(body)
        .send()
        .await
        .expect("answers");
    let status = res.status().as_u16();
    (status, res.json().await.expect("a JSON answer"))
}

async fn placement(client: &reqwest::Client, server: &Server, reference: &str) -> Value {
    let res = client
        .get(format!("{}/api/v1/placements/{reference}", server.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    res.json().await.expect("JSON")
}

/// Polls the placement until its status is `status`; returns it.
async fn placement_becomes(
    client: &reqwest::Client,
    server: &Server,
    reference: &str,
    status: &str,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let p = placement(client, server, reference).await;
        if p["status"] == status {
            return p;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "placement {reference} never became {status}: {p}\n{}",
            server.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The provider's place calls, each with its `idempotentKey`.
fn place_keys(provider: &FakeProvider) -> Vec<Option<String>> {
    provider
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/order/e-sim")
        .map(|r| r.idempotent_key.clone())
        .collect()
}

fn ops_alerts(smtp: &SmtpServer) -> Vec<String> {
    smtp.peek()
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains("ops@")))
        .map(|m| readable_text(&m.data))
        .collect()
}

async fn one_reference_places_one_order_and_its_customer_gets_the_email(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (provider, smtp, dir, config) = placing_world(&db.url);
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();

    // The shop posts the same placement twice at once (a double click, a retry).
    let asked = body("shop-order-1001", "JP-7D-5GB", "ana@traveller.example");
    let (a, b) = tokio::join!(
        post(&client, &server, &asked),
        post(&client, &server, &asked)
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 202],
        "one new, one answered as it stands: {a:?} {b:?}"
    );
    for (_, answer) in [&a, &b] {
        assert_eq!(answer["reference"], "shop-order-1001", "{answer}");
    }
    // The same reference with another package: refused, nothing placed.
    let (status, answer) = post(
        &client,
        &server,
        &body("shop-order-1001", "TH-3D-1GB", "ana@traveller.example"),
    )
    .await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"], "reference_conflict");
    assert_eq!(answer["field"], "reference");
    // Unusable references and missing fields are refused with the field named.
    for (bad, field) in [
        (
            json!({"packageCode": "JP-7D-5GB", "email": "a@b.example"}),
            "reference",
        ),
        (body("has space", "JP-7D-5GB", "a@b.example"), "reference"),
        (
            body(&"r".repeat(65), "JP-7D-5GB", "a@b.example"),
            "reference",
        ),
        (body("ok-ref", "", "a@b.example"), "packageCode"),
        (body("ok-ref", "JP-7D-5GB", "not an address"), "email"),
    ] {
        let (status, answer) = post(&client, &server, &bad).await;
        assert_eq!(
            (status, answer["field"].as_str()),
            (422, Some(field)),
            "{answer}"
        );
    }

    let placed = placement_becomes(&client, &server, "shop-order-1001", "placed").await;
    let orders = provider.orders();
    assert_eq!(orders.len(), 1, "one order at the provider");
    assert_eq!(placed["orderNo"], orders[0].order_no.as_str());
    assert_eq!(orders[0].email, "ana@traveller.example");
    assert_eq!(orders[0].package_code, "JP-7D-5GB");
    let keys = place_keys(&provider);
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.as_deref() == Some("shop-order-1001")),
        "{keys:?}"
    );
    // Asked again once placed: the same placement, with its order number.
    let (status, again) = post(&client, &server, &asked).await;
    assert_eq!(
        (status, &again["orderNo"]),
        (200, &placed["orderNo"]),
        "{again}"
    );

    // The provider finishes the order and its webhook comes: the placement's customer gets
    // the activation email with the provider's code.
    let order_no = orders[0].order_no.clone();
    provider.finish(&order_no, "COMPLETED", ICCID, LPA);
    let url = format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base);
    assert_eq!(provider.push_webhook(&url, &order_no, QUICK).await, [200]);
    wait_until(30, "the activation email", || {
        !to_customers(&smtp).is_empty()
    })
    .await;
    let mails = to_customers(&smtp);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["ana@traveller.example".to_owned()]);
    let (_, _, png, _) = open_activation_email(&mails[0].data);
    assert_eq!(read_qr(&png), LPA);

    // Operators see which placement placed the order, and the placement's call with its
    // attempts beside the email's.
    let (_, order) = order_json(&config, dir.path(), &order_no).await;
    assert_eq!(order["placement"], "shop-order-1001", "{order}");
    assert_eq!(
        order["customer"]["email"], "ana@traveller.example",
        "{order}"
    );
    let kinds: Vec<&str> = order["notifications"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"place_order") && kinds.contains(&"order_completed"),
        "{order}"
    );
    let (code, text, err) = run_cli(&config, dir.path(), &["orders", "show", &order_no], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains("placed by esim-courier, reference shop-order-1001"),
        "{text}"
    );
    drop(server);
}

async fn a_placement_killed_after_the_provider_placed_it_is_not_placed_twice(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (provider, _smtp, dir, config) = placing_world(&db.url);
    // Short leases, so the dead server's placement is taken over soon.
    edit_config(&config, |doc| {
        crate::harness::table(doc, "dispatcher").insert("lease".into(), "2s".into());
    });
    // The provider places the order at once but its answer takes 10 s: the server is
    // killed in between, after the provider acted and before the outcome was committed.
    provider.then(Scripted::Late(Duration::from_secs(10)));
    let client = esim_courier_tests::http_client();
    let mut first = Server::start(&config, dir.path()).await;
    let (status, _) = post(
        &client,
        &first,
        &body("shop-order-2002", "JP-7D-5GB", "ben@traveller.example"),
    )
    .await;
    assert_eq!(status, 202);
    wait_until(30, "the provider to hold the order", || {
        provider.orders().len() == 1
    })
    .await;
    first.child.kill().await.expect("SIGKILL");
    drop(first);

    let second = Server::start(&config, dir.path()).await;
    let placed = placement_becomes(&client, &second, "shop-order-2002", "placed").await;
    let orders = provider.orders();
    assert_eq!(
        orders.len(),
        1,
        "still one order at the provider: {orders:?}"
    );
    assert_eq!(placed["orderNo"], orders[0].order_no.as_str());
    let keys = place_keys(&provider);
    assert!(
        keys.len() >= 2,
        "the call was made again after the restart: {keys:?}"
    );
    assert!(
        keys.iter().all(|k| k.as_deref() == Some("shop-order-2002")),
        "every call with the same idempotentKey: {keys:?}"
    );
    drop(second);
}

async fn a_webhook_before_the_placements_answer_is_emailed_when_the_answer_commits(
    backend: Backend,
) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    // The customer wait stays at its default (30 minutes): the email must not wait for it.
    let (provider, smtp, dir, config) = placing_world(&db.url);
    provider.then(Scripted::Late(Duration::from_secs(6)));
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let (status, _) = post(
        &client,
        &server,
        &body("shop-order-3003", "JP-7D-5GB", "cleo@traveller.example"),
    )
    .await;
    assert_eq!(status, 202);
    wait_until(30, "the provider to hold the order", || {
        provider.orders().len() == 1
    })
    .await;
    // The order completes at once and its webhook arrives while the provider's answer to the
    // placement is still on its way: the order has no customer yet.
    let order_no = provider.orders()[0].order_no.clone();
    provider.finish(&order_no, "COMPLETED", ICCID, LPA);
    let url = format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base);
    assert_eq!(provider.push_webhook(&url, &order_no, QUICK).await, [200]);
    // The activation job parks itself: the order has no customer yet.
    let parked = || {
        let (config, dir) = (config.clone(), dir.path().to_owned());
        let order_no = order_no.clone();
        async move {
            let (_, order) = order_json(&config, &dir, &order_no).await;
            order["notifications"].as_array().is_some_and(|jobs| {
                jobs.iter()
                    .any(|j| j["kind"] == "order_completed" && j["state"] == "waiting")
            })
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !parked().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the activation job never waited for its customer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = placement(&client, &server, "shop-order-3003").await;
    assert_eq!(p["status"], "placing", "the answer has not come yet: {p}");

    placement_becomes(&client, &server, "shop-order-3003", "placed").await;
    wait_until(30, "the activation email after the binding", || {
        !to_customers(&smtp).is_empty()
    })
    .await;
    let mails = to_customers(&smtp);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["cleo@traveller.example".to_owned()]);
    let (_, _, png, _) = open_activation_email(&mails[0].data);
    assert_eq!(read_qr(&png), LPA);
    drop(server);
}

async fn the_providers_errors_retry_alert_or_fail_the_placement(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (provider, smtp, dir, config) = placing_world(&db.url);
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let place = |reference: &'static str, package: &'static str| {
        let (client, server) = (&client, &server);
        async move {
            let (status, answer) = post(
                client,
                server,
                &body(reference, package, "dan@traveller.example"),
            )
            .await;
            assert_eq!(status, 202, "{answer}");
        }
    };

    // 101 "still processing": retried, then placed.
    provider.then(Scripted::Code(101));
    place("err-101", "JP-7D-5GB").await;
    placement_becomes(&client, &server, "err-101", "placed").await;

    // 506 "insufficient balance": operators hear of it at once, naming the cause, and the
    // placement is retried later (here the balance is topped up by then).
    provider.then(Scripted::Code(506));
    place("err-506", "JP-7D-5GB").await;
    wait_until(30, "the provider_account alert", || {
        ops_alerts(&smtp)
            .iter()
            .any(|a| a.contains("provider_account") && a.contains("err-506"))
    })
    .await;
    let alert = ops_alerts(&smtp)
        .into_iter()
        .find(|a| a.contains("provider_account"))
        .expect("the alert");
    assert!(
        alert.contains("506") && alert.contains("insufficient balance"),
        "{alert}"
    );
    placement_becomes(&client, &server, "err-506", "placed").await;

    // Malformed JSON and HTTP 500: transient, retried, placed; nothing panics.
    provider.then(Scripted::Malformed);
    provider.then(Scripted::Http(500));
    place("err-garbled", "JP-7D-5GB").await;
    placement_becomes(&client, &server, "err-garbled", "placed").await;

    // 504 "package does not exist": the placement fails with the provider's reason, and
    // operators are told.
    place("err-504", "NO-SUCH-PACKAGE").await;
    let failed = placement_becomes(&client, &server, "err-504", "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("package does not exist")),
        "{failed}"
    );
    assert!(failed.get("orderNo").is_none(), "{failed}");
    wait_until(30, "the placement_failed alert", || {
        ops_alerts(&smtp)
            .iter()
            .any(|a| a.contains("placement_failed") && a.contains("err-504"))
    })
    .await;

    // 501 "account does not exist": the placement stops at once; operators hear what is wrong
    // with the account, and that the placement failed, with the command that retries it.
    provider.then(Scripted::Code(501));
    place("err-501", "JP-7D-5GB").await;
    let failed = placement_becomes(&client, &server, "err-501", "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("account does not exist")),
        "{failed}"
    );
    wait_until(30, "the alerts about err-501", || {
        let alerts = ops_alerts(&smtp);
        let about = |kind: &str| {
            alerts
                .iter()
                .any(|a| a.contains(kind) && a.contains("err-501"))
        };
        about("provider_account") && about("placement_failed")
    })
    .await;
    assert!(
        ops_alerts(&smtp)
            .iter()
            .any(|a| a.contains("err-501") && a.contains("dead-letters retry")),
        "the command that retries it"
    );

    // One provider order per placed reference, each asked with its own key.
    let orders = provider.orders();
    assert_eq!(orders.len(), 3, "{orders:?}");
    let keys = place_keys(&provider);
    for (reference, calls) in [("err-101", 2), ("err-506", 2), ("err-garbled", 3)] {
        let n = keys
            .iter()
            .filter(|k| k.as_deref() == Some(reference))
            .count();
        assert_eq!(
            n, calls,
            "{reference}: the refused calls, then the one that placed: {keys:?}"
        );
    }
    for refused in ["err-504", "err-501"] {
        assert_eq!(
            keys.iter()
                .filter(|k| k.as_deref() == Some(refused))
                .count(),
            1,
            "{refused}: a permanent error is not retried"
        );
    }
    assert!(
        !server.log_text().contains("panicked"),
        "{}",
        server.log_text()
    );
    drop(server);
}

/// The provider is busy at the first calls; meanwhile the shop's customer asks to be
/// forgotten. The placement is not placed for nobody: it fails, says why to the shop's GET,
/// and operators get `placement_failed`.
async fn a_placement_whose_customer_is_forgotten_before_it_is_placed_fails_and_says_why(
    backend: Backend,
) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (provider, smtp, dir, config) = placing_world(&db.url);
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    // Four "busy" answers: the retries wait at least 0.5 + 1 + 2 + 4 s in all.
    for _ in 0..4 {
        provider.then(Scripted::Code(102));
    }
    let (status, answer) = post(
        &client,
        &server,
        &body("forgot-1", "JP-7D-5GB", "fay@traveller.example"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    wait_until(30, "the first call", || !place_keys(&provider).is_empty()).await;
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["customers", "forget", "fay@traveller.example"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" 1 placement(s)"), "{out}");

    let failed = placement_becomes(&client, &server, "forgot-1", "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("customer's data was erased")),
        "{failed}"
    );
    wait_until(30, "the placement_failed alert", || {
        ops_alerts(&smtp)
            .iter()
            .any(|a| a.contains("placement_failed") && a.contains("forgot-1"))
    })
    .await;
    let calls = place_keys(&provider).len();
    assert!((1..=4).contains(&calls), "only the busy calls: {calls}");
    assert!(provider.orders().is_empty(), "nothing was placed");
    drop(server);
}

/// The provider places the order at once but answers 4 s later; meanwhile the customer is
/// forgotten. The answer is recorded (the order exists at the provider), but the erased
/// customer is not written back onto the new order, and nobody is emailed.
async fn a_customer_forgotten_while_the_provider_places_their_order_is_not_bound_to_it(
    backend: Backend,
) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (provider, smtp, dir, config) = placing_world(&db.url);
    provider.then(Scripted::Late(Duration::from_secs(4)));
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let (status, answer) = post(
        &client,
        &server,
        &body("forgot-2", "JP-7D-5GB", "gus@traveller.example"),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    wait_until(30, "the provider to hold the order", || {
        provider.orders().len() == 1
    })
    .await;
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["customers", "forget", "gus@traveller.example"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" 1 placement(s)"), "{out}");

    let placed = placement_becomes(&client, &server, "forgot-2", "placed").await;
    let order_no = placed["orderNo"].as_str().expect("its order").to_owned();
    // Its result comes: the order has no customer, and there is nobody to email.
    provider.finish(&order_no, "COMPLETED", ICCID, LPA);
    let url = format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base);
    let statuses = provider.push_webhook(&url, &order_no, QUICK).await;
    assert_eq!(statuses[0], 200);
    let (_, order) = order_json(&config, dir.path(), &order_no).await;
    assert!(
        order["customer"].is_null(),
        "no customer on the new order: {order}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(to_customers(&smtp).is_empty(), "nobody was emailed");
    let text = server.log_text();
    assert!(!text.contains("gus@"), "the address is not logged");
    drop(server);
}
