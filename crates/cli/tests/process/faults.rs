//! Fault tests: the process killed under load, the mail server gone for a while, the
//! database unreachable during load. Nothing acknowledged may be lost; no email may go twice.
//!
//! Durations are short here to fit CI; `scripts/faults` runs them longer (e.g. the SMTP server
//! down for a full minute) through the environment variables read below.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use esim_courier_tests::proxy::FaultProxy;
use esim_courier_tests::smtp::{message_id, SmtpServer};
use esim_courier_tests::{test_db, Backend};
use futures_util::StreamExt;
use serde_json::json;

use crate::harness::{wait_until, Server, API_TOKEN, WEBHOOK_TOKEN};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A config whose activation emails go over SMTP to `smtp_url`; FAILED orders are not routed.
fn config(dir: &std::path::Path, db_url: &str, smtp_url: &str) -> std::path::PathBuf {
    let path = dir.join("esim-courier.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
bind = "127.0.0.1:0"
workers = 2
[database]
url = "{db_url}"
max_connections = 8
{encryption}
[webhook]
tokens = ["{WEBHOOK_TOKEN}"]
[api]
tokens = ["{API_TOKEN}"]
[dispatcher]
lease = "5s"
poll_interval = "200ms"
concurrency = 16
[notifiers.customer-email]
type = "email"
audience = "customer"
template = "activation"
from = "eSIM Shop <esim@shop.example>"
transport = {{ type = "smtp", url = "{smtp_url}", timeout = "30s", pool_max_size = 8 }}
retry = {{ max_attempts = 100, initial_delay = "200ms", max_delay = "2s", timeout = "40s" }}
[[routes]]
when = "COMPLETED"
notify = ["customer-email"]
"#,
            encryption = crate::harness::encryption_for(db_url)
        ),
    )
    .expect("config written");
    path
}

fn completed(i: usize) -> String {
    json!({"orderNo": format!("F-{i}"), "result": "COMPLETED", "iccid": "8944500102198304826",
           "lpa": format!("LPA:1$smdp.example.com$MATCH-{i}"), "packageName": "Malaysia 1GB"})
    .to_string()
}

fn customer(i: usize) -> String {
    format!("c{i}@traveller.example")
}

/// Customer address -> how many activation emails it received.
fn emails_per_customer(smtp: &SmtpServer) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for mail in smtp.peek() {
        for to in mail.to {
            *out.entry(to).or_default() += 1;
        }
    }
    out
}

/// Customer address -> the distinct Message-IDs it received: what a mail client shows.
fn messages_per_customer(smtp: &SmtpServer) -> HashMap<String, HashSet<String>> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    for mail in smtp.peek() {
        let id = message_id(&mail.data).unwrap_or_default();
        for to in mail.to {
            out.entry(to).or_default().insert(id.clone());
        }
    }
    out
}

async fn register_all(client: &reqwest::Client, base: &str, n: usize) {
    futures_util::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            let url = format!("{base}/api/v1/orders/F-{i}");
            async move {
                let res = client
                    .put(url)
                    .bearer_auth(API_TOKEN)
                    .json(&json!({"email": customer(i)}))
                    .send()
                    .await;
                assert!(
                    res.is_ok_and(|r| r.status().is_success()),
                    "registration {i}"
                );
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

esim_courier_tests::on_both_backends!(
    kill_9_under_load_loses_no_acknowledged_webhook_and_sends_no_email_twice
);

/// kill -9 while 5,000 distinct webhooks are arriving (32 at a time), then restart: every
/// webhook that got a 2xx is stored and yields exactly one email; none yields two.
async fn kill_9_under_load_loses_no_acknowledged_webhook_and_sends_no_email_twice(
    backend: Backend,
) {
    let Some(test_db) = test_db(backend).await else {
        return;
    };
    let n = usize::try_from(env_number("ESIM_COURIER_FAULT_WEBHOOKS", 5000)).unwrap_or(5000);
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), &test_db.url, &smtp.url());
    let mut server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    register_all(&client, &server.base, n).await;

    let acked: Arc<Mutex<HashSet<usize>>> = Arc::default();
    let kill_after = n * 2 / 5;
    let sender = {
        let (client, base, acked) = (client.clone(), server.base.clone(), Arc::clone(&acked));
        tokio::spawn(async move {
            futures_util::stream::iter(0..n)
                .map(|i| {
                    let (client, acked) = (client.clone(), Arc::clone(&acked));
                    let url = format!("{base}/webhooks/order/{WEBHOOK_TOKEN}");
                    async move {
                        let res = client
                            .post(url)
                            .header("content-type", "application/json")
                            .body(completed(i))
                            .send()
                            .await;
                        if res.is_ok_and(|r| r.status().as_u16() == 200) {
                            acked.lock().expect("lock").insert(i);
                        }
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<()>>()
                .await;
        })
    };
    wait_until(120, "enough acknowledged webhooks", || {
        acked.lock().expect("lock").len() >= kill_after
    })
    .await;
    server.child.kill().await.expect("SIGKILL");
    sender
        .await
        .expect("the sender ends when the server is gone");
    let acked: HashSet<usize> = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= kill_after && acked.len() < n,
        "killed mid-load: {} of {n} acknowledged",
        acked.len()
    );

    let _restarted = Server::start(&config, dir.path()).await;
    let wanted: HashSet<String> = acked.iter().map(|i| customer(*i)).collect();
    wait_until(300, "an email for every acknowledged webhook", || {
        let got = emails_per_customer(&smtp);
        wanted.iter().all(|c| got.contains_key(c))
    })
    .await;
    // Let any duplicate show itself: leases are 5 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Each customer sees one email: one Message-ID. A delivery under way at the moment of the
    // kill may have reached the server without being recorded; it is sent again after the
    // restart with the same Message-ID (mail clients show it once), and only those can repeat.
    let messages = messages_per_customer(&smtp);
    let two_messages: Vec<_> = messages.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(
        two_messages.is_empty(),
        "customers with two different emails: {two_messages:?}"
    );
    let got = emails_per_customer(&smtp);
    let resent: usize = got.values().map(|n| n - 1).sum();
    assert!(
        resent <= 16,
        "{resent} re-sends: more than the 16 deliveries that can be under way at the kill"
    );
    let missing = wanted.iter().filter(|c| !got.contains_key(*c)).count();
    assert_eq!(missing, 0);
    // Stored: every acknowledged order has its event.
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(&test_db.url).await.expect("db");
    let stored: Vec<String> = sqlx::query_scalar("SELECT order_no FROM order_events")
        .fetch_all(&db)
        .await
        .expect("rows");
    let stored: HashSet<String> = stored.into_iter().collect();
    assert!(
        acked.iter().all(|i| stored.contains(&format!("F-{i}"))),
        "an acknowledged webhook is missing from the store"
    );
}

/// The mail server is unreachable for a while, then back: every email is delivered, none
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_server_down_for_a_while_then_back_delivers_every_email_once() {
    let down_for = Duration::from_secs(env_number("ESIM_COURIER_FAULT_SMTP_DOWN_SECS", 8));
    let smtp = SmtpServer::start();
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", smtp.port).parse().expect("addr")).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(
        dir.path(),
        &format!("sqlite://{}/s.db", dir.path().display()),
        &format!("smtp://127.0.0.1:{}", proxy.port),
    );
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let n = 30;
    register_all(&client, &server.base, n).await;
    proxy.down();
    let went_down = Instant::now();
    for i in 0..n {
        assert_eq!(server.post(&client, completed(i)).await, 200);
    }
    tokio::time::sleep(down_for.saturating_sub(went_down.elapsed())).await;
    assert!(
        smtp.peek().is_empty(),
        "nothing got through while the server was down"
    );
    proxy.up();
    wait_until(120, "every email after the outage", || {
        emails_per_customer(&smtp).len() == n
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // What each customer sees: one message. (A send that timed out after the server took it
    // is retried with the same Message-ID, which mail clients show once.)
    let messages = messages_per_customer(&smtp);
    assert_eq!(messages.len(), n);
    assert!(
        messages.values().all(|ids| ids.len() == 1),
        "a customer got two different emails: {messages:?}"
    );
    drop(server);
}

/// PostgreSQL unreachable during load: the webhook answers 503 (so the provider retries),
/// the service recovers by itself, and no acknowledged event is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_during_load_answers_503_then_recovers_losing_nothing() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let (host, rest) = db
        .url
        .split_once("@127.0.0.1:")
        .expect("a local PostgreSQL URL");
    let target_port: u16 = rest
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let proxy = FaultProxy::start(format!("127.0.0.1:{target_port}").parse().expect("addr")).await;
    let via_proxy = format!(
        "{host}@127.0.0.1:{}/{}",
        proxy.port,
        rest.split_once('/').map_or("", |(_, d)| d)
    );
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), &via_proxy, &smtp.url());
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client_builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");

    let mut answers: Vec<(usize, u16, &'static str)> = Vec::new();
    let mut i = 0;
    for phase in ["before", "down", "after"] {
        match phase {
            "down" => proxy.down(),
            "after" => proxy.up(),
            _ => {}
        }
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            let status = client
                .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base))
                .header("content-type", "application/json")
                .body(completed(i))
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            answers.push((i, status, phase));
            i += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let count = |phase: &str, status: u16| {
        answers
            .iter()
            .filter(|(_, s, p)| *p == phase && *s == status)
            .count()
    };
    assert!(count("before", 200) > 0);
    assert!(
        count("down", 503) > 0,
        "503 while the database is unreachable"
    );
    assert!(
        answers.iter().all(|(_, s, _)| matches!(s, 200 | 503)),
        "only 200 or 503: {answers:?}"
    );
    let recovered_at = answers
        .iter()
        .position(|(_, s, p)| *p == "after" && *s == 200);
    assert!(recovered_at.is_some(), "the service recovers by itself");
    let last_after: Vec<u16> = answers
        .iter()
        .filter(|(_, _, p)| *p == "after")
        .map(|(_, s, _)| *s)
        .rev()
        .take(5)
        .collect();
    assert!(
        last_after.iter().all(|s| *s == 200),
        "steady after recovery: {last_after:?}"
    );

    let direct = sqlx::AnyPool::connect(&db.url).await.expect("db");
    let stored: Vec<String> = sqlx::query_scalar("SELECT order_no FROM order_events")
        .fetch_all(&direct)
        .await
        .expect("rows");
    let stored: HashSet<String> = stored.into_iter().collect();
    for (i, status, _) in &answers {
        if *status == 200 {
            assert!(
                stored.contains(&format!("F-{i}")),
                "acknowledged F-{i} is not stored"
            );
        }
    }
    direct.close().await;
    drop(server);
}
