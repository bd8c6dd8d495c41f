//! `esim-courier reconcile` against the fake provider: orders whose webhooks were lost in an
//! outage are recovered from the provider's order API, emailed once over SMTP, and shown as
//! coming from reconciliation; the late webhook is then a duplicate.

use std::time::Duration;

use esim_courier_tests::provider::{FakeProvider, Scripted};
use esim_courier_tests::smtp::{
    open_activation_email, read_qr, readable_text, Response, SmtpServer, Stage,
};
use esim_courier_tests::{on_both_backends, test_db, Backend};

use crate::email::{order_json, register, to_customers, write_email_config};
use crate::harness::{edit_config, run_cli, set_provider, wait_until, Server, WEBHOOK_TOKEN};

on_both_backends!(
    an_outage_longer_than_the_webhook_retries_is_recovered_by_a_sweep,
    serve_sweeps_at_start_and_every_interval_without_an_operator,
    a_registered_order_without_a_webhook_is_looked_up_until_it_finishes_or_is_overdue,
    with_verification_a_forged_code_is_never_emailed_and_the_providers_is,
    a_confirmed_email_gets_its_retries_however_long_the_provider_took,
    with_verification_a_refused_account_is_alerted_at_once_and_the_email_waits_for_the_fix,
    a_sweep_killed_half_way_runs_again_after_the_restart,
);

pub(crate) const LPA: &str = "LPA:1$rsp.yoni.example$69C32E7D00000001";
pub(crate) const ICCID: &str = "8944500102198304826";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What each test starts from: the fake provider, an SMTP server, the folder, and a
/// configuration there whose emails go to that server and whose `[provider]` is the fake (see
/// [`with_provider`]).
pub(crate) type World = (
    FakeProvider,
    SmtpServer,
    tempfile::TempDir,
    std::path::PathBuf,
);

pub(crate) fn world(db_url: &str, interval: &str, extra: &[(&str, toml::Value)]) -> World {
    let provider = FakeProvider::start("reseller-7", "the-app-secret");
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), db_url, &smtp.url(), "");
    with_provider(&config, &provider, interval, extra);
    (provider, smtp, dir, config)
}

/// A new order whose customer (ana@) the shop registers while esim-courier runs; then
/// esim-courier stops, the provider completes the order, and its webhook's 3 attempts find
/// no one. The order, and the webhook URL that no longer answers.
async fn lose_the_webhook(
    config: &std::path::Path,
    dir: &std::path::Path,
    provider: &FakeProvider,
    client: &reqwest::Client,
) -> (esim_courier_tests::provider::Order, String) {
    let order = provider.new_order("JP-7D-5GB");
    provider.add(order.clone());
    let server = Server::start(config, dir).await;
    register(
        client,
        &server,
        &order.order_no,
        "ana@traveller.example",
        "en",
    )
    .await;
    let down = format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base);
    drop(server);
    provider.finish(&order.order_no, "COMPLETED", ICCID, LPA);
    let statuses = provider.push_webhook(&down, &order.order_no, QUICK).await;
    assert_eq!(
        statuses,
        [0, 0, 0],
        "every attempt failed: the provider gives up"
    );
    (order, down)
}

/// The provider's retry delays, shortened.
pub(crate) const QUICK: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_millis(10));

/// Adds the fake provider as `[provider]`, and `[reconcile]` with `sweep_interval = interval`
/// and the `extra` keys.
fn with_provider(
    config: &std::path::Path,
    provider: &FakeProvider,
    interval: &str,
    extra: &[(&str, toml::Value)],
) {
    edit_config(config, |doc| {
        set_provider(doc, &provider.base, "the-app-secret");
        let mut reconcile = toml::Table::new();
        reconcile.insert("sweep_interval".into(), interval.into());
        reconcile.insert("sweep_window".into(), "1h".into());
        for (key, value) in extra {
            reconcile.insert((*key).into(), value.clone());
        }
        doc.insert("reconcile".into(), reconcile.into());
    });
}

async fn an_outage_longer_than_the_webhook_retries_is_recovered_by_a_sweep(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    // Sweeps by hand only: the server's own are off here (see the next test).
    let (provider, smtp, dir, config) = world(&db.url, "0s", &[]);
    let client = esim_courier_tests::http_client();

    // The shop registers the customer of an order it placed; esim-courier goes down, and
    // the order's webhook is lost. Meanwhile one we never heard of fails and its webhook is
    // lost too; one more is still processing, and one finished two days ago lies outside the
    // sweep's window.
    let (registered, down) = lose_the_webhook(&config, dir.path(), &provider, &client).await;
    let unheard = provider.new_order("TH-3D-1GB");
    provider.add(unheard.clone());
    provider.finish(&unheard.order_no, "FAILED", "", "");
    let processing = provider.new_order("JP-7D-5GB");
    provider.add(processing.clone());
    let mut old = provider.new_order("JP-7D-5GB");
    old.create_time -= 2 * DAY_MS;
    provider.add(old.clone());
    provider.finish(&old.order_no, "COMPLETED", ICCID, LPA);
    let statuses = provider.push_webhook(&down, &unheard.order_no, QUICK).await;
    assert_eq!(statuses, [0, 0, 0]);

    // Back up: a sweep finds both lost results.
    let server = Server::start(&config, dir.path()).await;
    let (code, out, err) = run_cli(&config, dir.path(), &["reconcile", "--since", "6h"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "swept 3 orders from the last 6h in 1 pages: 2 recovered, 0 already on record, 0 conflicting, 1 not finished, 0 unreadable"
        ),
        "{out}{err}"
    );

    // Exactly one activation email, with the provider's activation code.
    wait_until(30, "the activation email", || {
        !to_customers(&smtp).is_empty()
    })
    .await;
    let mails = to_customers(&smtp);
    assert_eq!(mails.len(), 1, "exactly one activation email");
    let mail = &mails[0];
    assert_eq!(mail.to, ["ana@traveller.example".to_owned()]);
    let (html, _, png, _) = open_activation_email(&mail.data);
    assert_eq!(read_qr(&png), LPA);
    assert!(html.contains(&registered.order_no) && html.contains(ICCID));
    // The FAILED order reaches operators as a webhook's would.
    wait_until(30, "the operators' email of the FAILED order", || {
        smtp.peek().iter().any(|m| {
            m.to.iter().any(|t| t.contains("ops@"))
                && String::from_utf8_lossy(&m.data).contains(&unheard.order_no)
        })
    })
    .await;

    // Operators see where each result came from.
    let (_, order) = order_json(&config, dir.path(), &registered.order_no).await;
    assert_eq!(order["events"][0]["source"], "reconciliation", "{order}");
    let (_, text, _) = run_cli(
        &config,
        dir.path(),
        &["orders", "show", "--", &registered.order_no],
        &[],
    )
    .await;
    assert!(text.contains("(accepted, by reconciliation)"), "{text}");
    let (_, unheard_order) = order_json(&config, dir.path(), &unheard.order_no).await;
    assert_eq!(unheard_order["events"][0]["source"], "reconciliation");
    assert_eq!(unheard_order["events"][0]["result"], "FAILED");
    // Outside the window: untouched.
    let (code, _, _) = run_cli(
        &config,
        dir.path(),
        &["orders", "show", "--", &old.order_no],
        &[],
    )
    .await;
    assert_eq!(code, 2, "the order outside the window is not recorded");

    // The late webhook is a duplicate, and a lookup after it records nothing: no second email.
    let finished = provider
        .orders()
        .into_iter()
        .find(|o| o.order_no == registered.order_no)
        .expect("the provider's order");
    let late = client
        .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base))
        .json(&finished.webhook())
        .send()
        .await
        .expect("answers");
    assert_eq!(late.status().as_u16(), 200);
    let answer: serde_json::Value = late.json().await.expect("JSON");
    assert_eq!(answer["status"], "duplicate", "{answer}");
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["reconcile", "--order", &registered.order_no],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("already on record"), "{out}");
    let (code, out, _) = run_cli(
        &config,
        dir.path(),
        &["reconcile", "--order", "2026113099999999999"],
        &[],
    )
    .await;
    assert_eq!(code, 2);
    assert!(out.contains("unknown to the provider"), "{out}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        to_customers(&smtp).len(),
        1,
        "one email, whichever came first"
    );

    // Every call was signed as the provider checks.
    let requests = provider.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| !r.refused), "{requests:?}");
    drop(server);
}

async fn serve_sweeps_at_start_and_every_interval_without_an_operator(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (provider, smtp, dir, config) = world(&db.url, "2s", &[]);
    let client = esim_courier_tests::http_client();

    // Registered, then esim-courier is down while the order finishes and its webhook is lost.
    let (first, _) = lose_the_webhook(&config, dir.path(), &provider, &client).await;

    // The restart sweeps at once: the email goes out with no operator involved.
    let server = Server::start(&config, dir.path()).await;
    wait_until(30, "the first activation email", || {
        !to_customers(&smtp).is_empty()
    })
    .await;
    let (_, order) = order_json(&config, dir.path(), &first.order_no).await;
    assert_eq!(order["events"][0]["source"], "reconciliation", "{order}");

    // While it runs, another order's webhook never comes (the provider's retries went to an
    // old address): a later interval's sweep finds it.
    let second = provider.new_order("JP-7D-5GB");
    provider.add(second.clone());
    register(
        &client,
        &server,
        &second.order_no,
        "ben@traveller.example",
        "en",
    )
    .await;
    provider.finish(&second.order_no, "COMPLETED", "89852000000000000001", LPA);
    wait_until(30, "the second activation email", || {
        to_customers(&smtp).len() >= 2
    })
    .await;
    let mails = to_customers(&smtp);
    assert_eq!(mails.len(), 2, "one email per order");
    assert!(mails
        .iter()
        .any(|m| m.to == ["ben@traveller.example".to_owned()]));
    let log = server.log_text();
    assert!(log.contains("reconciliation sweep done"), "{log}");
    let (code, out, _) = run_cli(&config, dir.path(), &["dead-letters", "list"], &[]).await;
    assert_eq!(code, 0);
    assert!(!out.contains("reconcile_sweep"), "no sweep gave up: {out}");
    drop(server);
}

async fn a_registered_order_without_a_webhook_is_looked_up_until_it_finishes_or_is_overdue(
    backend: Backend,
) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    // No sweeps: only the lookups of registered orders are at work here.
    let (provider, smtp, dir, config) = world(
        &db.url,
        "0s",
        &[
            ("expect_within", "1s".into()),
            ("lookup_interval", "1s".into()),
            ("give_up_after", "5s".into()),
        ],
    );
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();

    // Two orders the shop registered; neither webhook ever comes. One is still processing at
    // the first lookups and finishes later; the other never does.
    let late = provider.new_order("JP-7D-5GB");
    provider.add(late.clone());
    let stuck = provider.new_order("JP-7D-5GB");
    provider.add(stuck.clone());
    for (order, email) in [
        (&late, "ana@traveller.example"),
        (&stuck, "ben@traveller.example"),
    ] {
        register(&client, &server, &order.order_no, email, "en").await;
    }
    let looked_up = |order_no: &str| {
        provider
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/page") && r.body["orderNo"] == order_no)
            .count()
    };
    wait_until(30, "two lookups of the late order", || {
        looked_up(&late.order_no) >= 2
    })
    .await;
    assert!(
        to_customers(&smtp).is_empty(),
        "nothing to send while it processes"
    );
    provider.finish(&late.order_no, "COMPLETED", ICCID, LPA);
    wait_until(30, "the late order's activation email", || {
        !to_customers(&smtp).is_empty()
    })
    .await;
    let mails = to_customers(&smtp);
    assert_eq!(mails[0].to, ["ana@traveller.example".to_owned()]);
    let (_, _, png, _) = open_activation_email(&mails[0].data);
    assert_eq!(read_qr(&png), LPA);
    let (_, order) = order_json(&config, dir.path(), &late.order_no).await;
    assert_eq!(order["events"][0]["source"], "reconciliation", "{order}");

    // The stuck one: operators hear of it once, with the command that resumes the lookups.
    wait_until(30, "the order_overdue alert", || {
        smtp.peek().iter().any(|m| {
            m.to.iter().any(|t| t.contains("ops@"))
                && readable_text(&m.data).contains(&stuck.order_no)
        })
    })
    .await;
    let lookups = looked_up(&stuck.order_no);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(looked_up(&stuck.order_no), lookups, "it stopped looking");
    let alerts: Vec<String> = smtp
        .peek()
        .iter()
        .filter(|m| m.to.iter().any(|t| t.contains("ops@")))
        .map(|m| readable_text(&m.data))
        .filter(|t| t.contains(&stuck.order_no))
        .collect();
    assert_eq!(alerts.len(), 1, "one alert");
    assert!(alerts[0].contains("dead-letters retry"), "{}", alerts[0]);
    let (_, out, _) = run_cli(&config, dir.path(), &["dead-letters", "list"], &[]).await;
    assert!(out.contains("reconcile_lookup"), "{out}");
    assert_eq!(to_customers(&smtp).len(), 1, "no email for the stuck order");

    // What operators graph: provider calls, the overdue order, how long it has waited.
    let metrics = server.metrics(&client).await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("esim_courier_provider_calls_total{")
                && l.contains(r#"endpoint="/v1/order/e-sim/page""#)
                && l.contains(r#"outcome="ok""#)),
        "{metrics}"
    );
    assert!(
        metrics.contains("esim_courier_orders_overdue_total 1"),
        "{metrics}"
    );
    let waiting: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("esim_courier_oldest_awaiting_result_seconds "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("the oldest waiting order's age: {metrics}"));
    assert!(
        waiting >= 5.0,
        "the stuck order has waited since its registration: {waiting}"
    );

    // Retrying the dead letter, as the alert says, resumes the lookups with a new window:
    // still processing at the next lookup, it is looked up again, and once the provider
    // finishes the order its email goes out.
    let before_retry = looked_up(&stuck.order_no);
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["dead-letters", "retry", "--all"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    wait_until(30, "a lookup after the retry", || {
        looked_up(&stuck.order_no) > before_retry
    })
    .await;
    provider.finish(&stuck.order_no, "COMPLETED", "89852000000000000001", LPA);
    wait_until(30, "the stuck order's email after the retry", || {
        to_customers(&smtp).len() >= 2
    })
    .await;
    drop(server);
}

async fn with_verification_a_forged_code_is_never_emailed_and_the_providers_is(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (provider, smtp, dir, config) = world(&db.url, "0s", &[("verify_webhooks", true.into())]);
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let post = |body: serde_json::Value| {
        let client = client.clone();
        let url = format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base);
        async move {
            let res = client.post(url).json(&body).send().await.expect("answers");
            assert_eq!(res.status().as_u16(), 200);
            res.json::<serde_json::Value>().await.expect("JSON")["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };

    // Two registered orders the provider completed.
    let target = provider.new_order("JP-7D-5GB");
    provider.add(target.clone());
    provider.finish(&target.order_no, "COMPLETED", ICCID, LPA);
    let genuine = provider.new_order("JP-7D-5GB");
    provider.add(genuine.clone());
    provider.finish(&genuine.order_no, "COMPLETED", "89852000000000000001", LPA);
    for (order, email) in [
        (&target, "ana@traveller.example"),
        (&genuine, "ben@traveller.example"),
    ] {
        register(&client, &server, &order.order_no, email, "en").await;
    }
    let webhook_of = |order_no: &str| {
        provider
            .orders()
            .into_iter()
            .find(|o| o.order_no == order_no)
            .expect("the provider's order")
            .webhook()
    };

    // Someone who learnt the webhook URL posts the first order as COMPLETED with a code of
    // their own; the second order's genuine webhook comes as usual.
    let mut forged = webhook_of(&target.order_no);
    forged["lpa"] = "LPA:1$evil.example$FORGED-MATCHING-ID".into();
    assert_eq!(post(forged.clone()).await, "accepted");
    assert_eq!(post(webhook_of(&genuine.order_no)).await, "accepted");

    // Both customers get the provider's code; nobody gets the forged one.
    wait_until(30, "two activation emails", || {
        to_customers(&smtp).len() >= 2
    })
    .await;
    wait_until(30, "the webhook_unverified alert", || {
        smtp.peek().iter().any(|m| {
            m.to.iter().any(|t| t.contains("ops@"))
                && readable_text(&m.data).contains(&target.order_no)
        })
    })
    .await;
    let mails = to_customers(&smtp);
    assert_eq!(mails.len(), 2, "one email per order");
    for mail in &mails {
        let (html, text, png, _) = open_activation_email(&mail.data);
        assert_eq!(read_qr(&png), LPA, "the provider's code");
        assert!(!html.contains("evil.example") && !text.contains("FORGED"));
    }
    let alert = smtp
        .peek()
        .into_iter()
        .find(|m| m.to.iter().any(|t| t.contains("ops@")))
        .map(|m| readable_text(&m.data))
        .expect("the alert");
    assert!(
        alert.contains("activation code is not the provider's"),
        "{alert}"
    );
    assert!(
        !alert.contains("FORGED"),
        "the alert never repeats a code: {alert}"
    );

    // The record shows the forged webhook set aside and the provider's result accepted.
    let (_, order) = order_json(&config, dir.path(), &target.order_no).await;
    let events = order["events"].as_array().expect("events");
    assert_eq!(events.len(), 2, "{order}");
    assert_eq!(events[0]["disposition"], "unverified");
    assert_eq!(events[1]["disposition"], "accepted");
    assert_eq!(events[1]["source"], "reconciliation");

    // The genuine webhook, late, is a duplicate of the provider's result: nothing more.
    assert_eq!(post(webhook_of(&target.order_no)).await, "duplicate");
    // The forged one again (its sender retrying): a duplicate of the event set aside, recorded
    // as such, not a failure and not a new event.
    assert_eq!(post(forged).await, "duplicate");
    let (_, order) = order_json(&config, dir.path(), &target.order_no).await;
    assert_eq!(order["events"].as_array().map(Vec::len), Some(2), "{order}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(to_customers(&smtp).len(), 2);
    drop(server);
}

/// With `verify_webhooks`, a provider that refuses the reseller's account (code 503: this
/// server's address is not allowed) raises `provider_account` at once, one alert for the
/// order however many rounds it waits, rather than after `give_up_after`; once the provider
/// answers again (the operator fixed the allow-list), the email goes out by itself.
async fn with_verification_a_refused_account_is_alerted_at_once_and_the_email_waits_for_the_fix(
    backend: Backend,
) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (provider, smtp, dir, config) = world(
        &db.url,
        "0s",
        &[
            ("verify_webhooks", true.into()),
            ("lookup_interval", "1s".into()),
        ],
    );
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let order = provider.new_order("JP-7D-5GB");
    provider.add(order.clone());
    provider.finish(&order.order_no, "COMPLETED", ICCID, LPA);
    register(
        &client,
        &server,
        &order.order_no,
        "ana@traveller.example",
        "en",
    )
    .await;
    let asked_before = provider.requests().len();
    for _ in 0..3 {
        provider.then(Scripted::Code(503));
    }
    let webhook = provider
        .orders()
        .into_iter()
        .find(|o| o.order_no == order.order_no)
        .expect("the provider's order")
        .webhook();
    let res = client
        .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base))
        .json(&webhook)
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);

    let refusals = || {
        smtp.peek()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.contains("ops@")))
            .map(|m| readable_text(&m.data))
            .filter(|text| text.contains("refused to confirm"))
            .collect::<Vec<_>>()
    };
    wait_until(30, "the provider_account alert", || !refusals().is_empty()).await;
    wait_until(30, "the activation email once the provider answers", || {
        to_customers(&smtp).len() == 1
    })
    .await;
    let asked = provider.requests().len() - asked_before;
    assert!(
        asked >= 4,
        "three refused rounds, then the confirmation: {asked}"
    );
    let alerts = refusals();
    assert_eq!(alerts.len(), 1, "one alert for the order: {alerts:?}");
    assert!(
        alerts[0].contains(&order.order_no)
            && alerts[0].contains("code 503")
            && alerts[0].contains("not allowed"),
        "{}",
        alerts[0]
    );
    let (_, _, png, _) = open_activation_email(&to_customers(&smtp)[0].data);
    assert_eq!(read_qr(&png), LPA);
    // The alert is listed with the order it is about.
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["orders", "show", &order.order_no],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("alert -> ops-email"), "{out}");
    drop(server);
}

/// With `verify_webhooks`, the webhook comes before the provider's order API shows the order
/// completed: the activation email waits several rounds for the confirmation (each used one
/// of the job's attempts), on a job as old as a day. Once confirmed, its first delivery meets
/// a busy mailbox: it is retried and delivered, its attempts and retry time counted from the
/// confirmation, and the retry does not ask the provider again.
async fn a_confirmed_email_gets_its_retries_however_long_the_provider_took(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let (provider, smtp, dir, config) = world(
        &db.url,
        "0s",
        &[
            ("verify_webhooks", true.into()),
            ("lookup_interval", "1s".into()),
        ],
    );
    // Two attempts, and the default day of retries, for the activation email.
    edit_config(&config, |doc| {
        let retry = doc
            .get_mut("notifiers")
            .and_then(|n| n.get_mut("customer-email"))
            .and_then(|c| c.get_mut("retry"))
            .and_then(toml::Value::as_table_mut)
            .expect("the customer notifier's retry");
        retry.insert("max_attempts".into(), 2.into());
    });
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();

    let order = provider.new_order("JP-7D-5GB");
    provider.add(order.clone());
    register(
        &client,
        &server,
        &order.order_no,
        "ana@traveller.example",
        "en",
    )
    .await;
    let mut completed = order.clone();
    completed.status = "COMPLETED".into();
    completed.iccid = ICCID.into();
    completed.lpa = LPA.into();
    let res = client
        .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base))
        .json(&completed.webhook())
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);

    // The provider still says PROCESSING: rounds at about 0, 1 and 3 s.
    let email_job = |order: &serde_json::Value| {
        order["notifications"]
            .as_array()
            .and_then(|jobs| jobs.iter().find(|j| j["notifier"] == "customer-email"))
            .cloned()
            .unwrap_or_default()
    };
    let mut rounds = 0;
    for _ in 0..150 {
        let (_, shown) = order_json(&config, dir.path(), &order.order_no).await;
        rounds = email_job(&shown)["attempt_log"]
            .as_array()
            .map_or(0, Vec::len);
        if rounds >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rounds >= 3, "three rounds waiting for the provider");
    // The job as old as if its webhook came a day ago (the retries may take a day).
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("db");
    let aged = sqlx::query(
        "UPDATE outbox_jobs SET created_at = created_at - $1 WHERE notifier = 'customer-email'",
    )
    .bind(25 * 3_600_000_i64)
    .execute(&pool)
    .await
    .expect("aged")
    .rows_affected();
    assert_eq!(aged, 1);
    pool.close().await;

    smtp.reply_next(
        Stage::Rcpt,
        Response::custom(
            450,
            "4.2.1 <ana@traveller.example>: Mailbox busy, try later".into(),
        ),
    );
    provider.finish(&order.order_no, "COMPLETED", ICCID, LPA);
    wait_until(30, "the confirmed email after its retry", || {
        !to_customers(&smtp).is_empty()
    })
    .await;
    let mut job = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, shown) = order_json(&config, dir.path(), &order.order_no).await;
        job = email_job(&shown);
        if job["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(job["state"], "done", "{job}");
    let log = job["attempt_log"].as_array().cloned().unwrap_or_default();
    let waited = log
        .iter()
        .take_while(|a| {
            a["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("waiting for the provider to confirm"))
        })
        .count();
    assert!(waited >= 3, "{log:?}");
    let delivery: Vec<(i64, &str)> = log[waited..]
        .iter()
        .map(|a| {
            (
                a["attempt"].as_i64().unwrap_or_default(),
                a["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        delivery,
        [(1, "transient"), (2, "delivered")],
        "the delivery's own attempts, after the confirmation: {log:?}"
    );
    assert_eq!(job["attempts"], 2);

    let mails = to_customers(&smtp);
    assert_eq!(mails.len(), 1);
    let (_, _, png, _) = open_activation_email(&mails[0].data);
    assert_eq!(read_qr(&png), LPA);
    assert!(
        smtp.peek()
            .iter()
            .all(|m| !m.to.iter().any(|t| t.contains("ops@"))),
        "no dead letter, no alert"
    );
    // One question per round and one that confirmed; the retry did not ask again.
    let asked = provider
        .requests()
        .iter()
        .filter(|r| r.body.to_string().contains(&order.order_no))
        .count();
    assert_eq!(asked, waited + 1);
    drop(server);
}

/// Two `serve` replicas on one PostgreSQL database look up 60 registered orders whose
/// webhooks were lost: every one is recovered, and the provider never sees more than 10
/// `/page` calls in any one-second window (the rate is the deployment's, not each process's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_recover_60_lost_orders_within_the_providers_rate() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let (provider, smtp, dir, config) = world(
        &db.url,
        "0s",
        &[
            ("expect_within", "1s".into()),
            ("lookup_interval", "1s".into()),
        ],
    );
    let a = Server::start(&config, dir.path()).await;
    let b = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let mut orders = Vec::new();
    for i in 0..60 {
        let order = provider.new_order("JP-7D-5GB");
        provider.add(order.clone());
        provider.finish(
            &order.order_no,
            "COMPLETED",
            &format!("89440001{i:011}"),
            LPA,
        );
        let server = if i % 2 == 0 { &a } else { &b };
        register(
            &client,
            server,
            &order.order_no,
            &format!("t{i}@traveller.example"),
            "en",
        )
        .await;
        orders.push(order.order_no);
    }
    // Once the replicas' lookups are under way, an operator runs a sweep by hand: its calls
    // take their turns at the same database gate as the replicas' lookups.
    let pages = || {
        provider
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/page"))
            .count()
    };
    wait_until(60, "20 lookups", || pages() >= 20).await;
    let (_, (code, out, err)) = tokio::join!(
        wait_until(60, "60 activation emails", || {
            to_customers(&smtp).len() >= 60
        }),
        run_cli(&config, dir.path(), &["reconcile", "--since", "1h"], &[])
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("swept 60 orders"), "{out}{err}");
    let mails = to_customers(&smtp);
    assert_eq!(mails.len(), 60, "one email per order");
    for order_no in &orders {
        let res = client
            .get(format!("{}/api/v1/orders/{order_no}", a.base))
            .bearer_auth(crate::harness::API_TOKEN)
            .send()
            .await
            .expect("answers");
        let order: serde_json::Value = res.json().await.expect("JSON");
        assert_eq!(order["events"][0]["source"], "reconciliation", "{order}");
    }
    let mut at: Vec<std::time::Instant> = provider
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/page"))
        .map(|r| r.at)
        .collect();
    at.sort();
    assert!(
        at.len() >= 22,
        "20 lookups and the sweep's 2 pages: {}",
        at.len()
    );
    let busiest = (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| **t - at[i] <= Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(busiest <= 10, "{busiest} /page calls within one second");
    drop((a, b));
}

/// The orders recorded by reconciliation, and how many distinct ones.
async fn reconciled(db_url: &str) -> (i64, i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db_url).await.expect("db");
    let row: (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(DISTINCT order_no) FROM order_events WHERE source = 'reconciliation'",
    )
    .fetch_one(&pool)
    .await
    .expect("counts");
    pool.close().await;
    row
}

async fn a_sweep_killed_half_way_runs_again_after_the_restart(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    // Only the sweep at start; leases short, so a dead server's sweep is taken over soon.
    let (provider, _smtp, dir, config) = world(&db.url, "1h", &[]);
    edit_config(&config, |doc| {
        crate::harness::table(doc, "dispatcher").insert("lease".into(), "2s".into());
    });
    // 150 finished orders we never heard of: 3 pages, each answered slowly.
    for i in 0..150 {
        let order = provider.new_order("JP-7D-5GB");
        provider.add(order.clone());
        provider.finish(
            &order.order_no,
            "COMPLETED",
            &format!("89440001{i:011}"),
            LPA,
        );
    }
    for _ in 0..3 {
        provider.then(Scripted::Slow(Duration::from_secs(2)));
    }
    let pages = || {
        provider
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/page"))
            .count()
    };

    let mut first = Server::start(&config, dir.path()).await;
    wait_until(30, "the sweep's second page", || pages() >= 2).await;
    first.child.kill().await.expect("SIGKILL");
    let (before, _) = reconciled(&db.url).await;
    assert!(before < 150, "killed half-way: {before} recorded");

    let second = Server::start(&config, dir.path()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (events, orders) = loop {
        let counts = reconciled(&db.url).await;
        if counts.0 >= 150 || tokio::time::Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!((events, orders), (150, 150), "every order once");
    wait_until(30, "the sweep to finish", || {
        second.log_text().contains("reconciliation sweep done")
    })
    .await;
    drop(second);
}
