//! A shop registers the customer the moment payment completes, often the same instant the
//! provider's webhook arrives. Whatever the order of the two, the email leaves as soon as both
//! are in: never after `customer_wait`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use esim_courier_core::Content;
use esim_courier_dispatch::{Hook, HookPoint};
use esim_courier_tests::{on_both_backends, spawn_app, AppOptions, Backend, TestApp, API_TOKEN};
use futures_util::stream::{self, StreamExt};
use serde_json::json;

on_both_backends!(
    a_registration_committing_while_the_job_decides_to_wait_sends_the_email_at_once,
    two_hundred_orders_in_every_interleaving_each_get_exactly_one_email_at_once,
);

/// Long enough that an email held back until it expires is plainly missing after a drain.
const CUSTOMER_WAIT: Duration = Duration::from_secs(600);

fn completed(order_no: &str, n: usize) -> String {
    json!({
        "orderNo": order_no, "result": "COMPLETED", "iccid": format!("8910010000{n:010}"),
        "lpa": format!("LPA:1$rsp.example.com$MATCH{n:08}"), "packageName": "Japan, 7 Days, 5GB",
        "currency": "2", "price": "4.50",
    })
    .to_string()
}

/// The exact interleaving that used to park the email for 30 minutes: the job has read its
/// order (no customer yet) and decided to wait; the registration commits before the job's
/// "waiting" is written. The hook runs the registration at precisely that point.
async fn a_registration_committing_while_the_job_decides_to_wait_sends_the_email_at_once(
    backend: Backend,
) {
    let base: Arc<OnceLock<String>> = Arc::default();
    let registered = Arc::new(AtomicBool::new(false));
    let hook: Hook = {
        let (base, registered) = (Arc::clone(&base), Arc::clone(&registered));
        Arc::new(move |point, job| {
            let (base, registered) = (Arc::clone(&base), Arc::clone(&registered));
            let order_no = job.order_no.clone();
            Box::pin(async move {
                if point != HookPoint::BeforeWaitingForCustomer
                    || registered.swap(true, Ordering::SeqCst)
                {
                    return;
                }
                let base = base.get().expect("the app is up");
                let order_no = order_no.expect("an order's job");
                let status = esim_courier_tests::http_client()
                    .put(format!("{base}/api/v1/orders/{order_no}"))
                    .bearer_auth(API_TOKEN)
                    .json(&json!({"email": "ana@example.com"}))
                    .send()
                    .await
                    .expect("the app answers")
                    .status();
                assert_eq!(status.as_u16(), 201, "the registration commits");
            })
        })
    };
    let options = AppOptions {
        customer_wait: CUSTOMER_WAIT,
        dispatcher: false,
        hook: Some(hook),
        ..AppOptions::default()
    };
    let Some(app) = spawn_app(backend, options).await else {
        return;
    };
    base.set(app.base.clone()).expect("set once");
    let (status, _) = app.webhook_json(completed("RACE-1", 1)).await;
    assert_eq!(status, 200);

    app.drain().await;

    assert!(
        registered.load(Ordering::SeqCst),
        "the job reached the point where it decides to wait"
    );
    let delivered = app.customer.delivered();
    assert_eq!(delivered.len(), 1, "the email left without waiting");
    let Content::OrderCompleted(order) = &delivered[0].content else {
        panic!("not an activation: {:?}", delivered[0].content)
    };
    assert_eq!(
        order.customer.as_ref().map(|c| c.email.as_str()),
        Some("ana@example.com")
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE state = 'waiting'")
            .await,
        0
    );
    assert!(app.ops.delivered().is_empty(), "no customer_unknown alert");
    app.stop().await;
}

/// How one order's webhook and registration reach the app.
#[derive(Debug, Clone, Copy)]
enum Interleaving {
    WebhookFirst,
    RegistrationFirst,
    AtOnce,
    /// At once, the webhook through one replica and the registration through another.
    AtOnceOnTwoReplicas,
}

async fn two_hundred_orders_in_every_interleaving_each_get_exactly_one_email_at_once(
    backend: Backend,
) {
    let options = AppOptions {
        customer_wait: CUSTOMER_WAIT,
        ..AppOptions::default()
    };
    let Some(app) = spawn_app(backend, options.clone()).await else {
        return;
    };
    // Replicas share a database only on PostgreSQL in production; there the fourth
    // interleaving sends the two requests to two different processes' worth of app.
    let replica = match backend {
        Backend::Postgres => Some(app.replica(options).await),
        Backend::Sqlite => None,
    };
    let mut ways = vec![
        Interleaving::WebhookFirst,
        Interleaving::RegistrationFirst,
        Interleaving::AtOnce,
    ];
    if replica.is_some() {
        ways.push(Interleaving::AtOnceOnTwoReplicas);
    }
    let other = replica.as_ref().unwrap_or(&app);
    let orders: Vec<(String, Interleaving)> = (0..200)
        .map(|i| (format!("MIX-{i:03}"), ways[i % ways.len()]))
        .collect();
    stream::iter(orders.iter().enumerate())
        .for_each_concurrent(32, |(i, (order_no, way))| {
            let (app, other) = (&app, other);
            async move {
                let body = completed(order_no, i);
                let customer = json!({"email": format!("traveller{i}@example.com")});
                match way {
                    Interleaving::WebhookFirst => {
                        webhook(app, body).await;
                        register(app, order_no, customer).await;
                    }
                    Interleaving::RegistrationFirst => {
                        register(app, order_no, customer).await;
                        webhook(app, body).await;
                    }
                    // Two requests in flight at once: the client opens a connection for each.
                    Interleaving::AtOnce => {
                        tokio::join!(webhook(app, body), register(app, order_no, customer));
                    }
                    Interleaving::AtOnceOnTwoReplicas => {
                        tokio::join!(webhook(app, body), register(other, order_no, customer));
                    }
                }
            }
        })
        .await;

    app.drain().await;

    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE state = 'waiting'")
            .await,
        0,
        "no email waits for customer_wait"
    );
    let mut per_order: HashMap<String, Vec<String>> = HashMap::new();
    for n in app.customer.delivered() {
        let Content::OrderCompleted(order) = n.content else {
            panic!("not an activation")
        };
        per_order
            .entry(order.order_no.to_string())
            .or_default()
            .push(
                order
                    .customer
                    .map(|c| c.email.as_str().to_owned())
                    .unwrap_or_default(),
            );
    }
    for (i, (order_no, way)) in orders.iter().enumerate() {
        assert_eq!(
            per_order.get(order_no).map(Vec::as_slice),
            Some([format!("traveller{i}@example.com")].as_slice()),
            "{order_no} ({way:?}) gets exactly one email, to its customer"
        );
    }
    assert_eq!(per_order.len(), 200);
    assert!(app.ops.delivered().is_empty(), "no alert of any kind");
    if let Some(replica) = replica {
        replica.stop().await;
    }
    app.stop().await;
}

async fn webhook(to: &TestApp, body: String) {
    let (status, answer) = to.webhook_json(body).await;
    assert_eq!(status, 200, "{answer}");
}

async fn register(to: &TestApp, order_no: &str, customer: serde_json::Value) {
    let (status, answer) = to.register(order_no, customer).await;
    assert!(status == 200 || status == 201, "{status} {answer}");
}
