//! What operators rely on: metrics, logs without secrets, `simulate`, HTTPS.

use std::time::{Duration, Instant};

use crate::harness::{
    edit_config, failed, run_cli, table, wait_until, write_config, Hook, Server, WEBHOOK_TOKEN,
};

/// The value of the first metric line starting with `prefix`, 0 when absent.
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

const COMPLETED: &str = r#"{"orderNo":"MET-1","result":"COMPLETED","iccid":"8944500102198304826","lpa":"LPA:1$smdp.example.com$MATCHING-ID-SECRET-42","packageName":"Malaysia, 1 Day, 1GB"}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_webhooks_and_deliveries_happen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/m.db", dir.path().display()),
        &hook.url,
        "",
    );
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let scrape = || server.metrics(&client);
    let before = scrape().await;
    assert_eq!(
        metric(
            &before,
            "esim_courier_webhooks_received_total{outcome=\"accepted\"}"
        ),
        0.0
    );

    assert_eq!(server.post(&client, failed("MET-2")).await, 200);
    assert_eq!(server.post(&client, failed("MET-2")).await, 200);
    let refused = client
        .post(format!("{}/webhooks/order/wrong", server.base))
        .body("{}")
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status().as_u16(), 401);
    wait_until(20, "the delivery", || !hook.completed().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let after = scrape().await;
    assert_eq!(
        metric(
            &after,
            "esim_courier_webhooks_received_total{outcome=\"accepted\"}"
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        metric(
            &after,
            "esim_courier_webhooks_received_total{outcome=\"duplicate\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &after,
            "esim_courier_webhooks_received_total{outcome=\"unauthorized\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&after, "esim_courier_intake_duration_seconds_count"),
        3.0
    );
    assert_eq!(
        metric(
            &after,
            "esim_courier_deliveries_total{notifier=\"hook\",outcome=\"delivered\"}"
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        metric(
            &after,
            "esim_courier_delivery_latency_seconds_count{notifier=\"hook\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&after, "esim_courier_outbox_jobs{state=\"done\"}"),
        1.0
    );
    assert_eq!(
        metric(&after, "esim_courier_outbox_jobs{state=\"dead\"}"),
        0.0
    );
    assert!(
        after.contains("# TYPE esim_courier_intake_duration_seconds histogram"),
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_live_on_a_separate_admin_address() {
    let dir = tempfile::tempdir().expect("temp dir");
    let admin = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let admin_addr = admin.local_addr().expect("addr");
    drop(admin);
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/a.db", dir.path().display()),
        "http://127.0.0.1:9/hook",
        "",
    );
    edit_config(&config, |doc| {
        table(doc, "server").insert("admin_bind".into(), admin_addr.to_string().into());
    });
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let main = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(main.status().as_u16(), 404, "not on the public listener");
    let admin = client
        .get(format!("http://{admin_addr}/metrics"))
        .send()
        .await
        .expect("answers");
    assert_eq!(admin.status().as_u16(), 200);
    assert!(admin
        .text()
        .await
        .expect("text")
        .contains("esim_courier_outbox_jobs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_run_logs_neither_matching_ids_nor_tokens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/l.db", dir.path().display()),
        &hook.url,
        "",
    );
    edit_config(&config, |doc| {
        let routes = doc
            .get_mut("routes")
            .and_then(toml::Value::as_array_mut)
            .expect("the config has routes");
        let mut completed = toml::Table::new();
        completed.insert("when".into(), "COMPLETED".into());
        completed.insert("notify".into(), toml::Value::Array(vec!["hook".into()]));
        routes.push(completed.into());
    });
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_esim-courier"))
        .args(["--config", config.to_str().expect("utf-8"), "serve"])
        .current_dir(dir.path())
        .env("RUST_LOG", "trace")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("piped");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = std::sync::Arc::clone(&log);
    tokio::spawn(async move {
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
        while let Ok(Some(line)) = lines.next_line().await {
            let mut s = sink.lock().expect("lock");
            s.push_str(&line);
            s.push('\n');
        }
    });
    wait_until(30, "start-up", || {
        log.lock().expect("lock").contains("webhook URL: http://")
    })
    .await;
    let addr = {
        let text = log.lock().expect("lock").clone();
        text.split("webhook URL: http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .expect("addr")
            .to_owned()
    };
    let client = esim_courier_tests::http_client();
    let post = |token: &str, body: &'static str| {
        client
            .post(format!("http://{addr}/webhooks/order/{token}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(
        post(WEBHOOK_TOKEN, COMPLETED)
            .await
            .expect("answers")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        post(WEBHOOK_TOKEN, COMPLETED)
            .await
            .expect("answers")
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        post("guessed-token-123", COMPLETED)
            .await
            .expect("answers")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        post(
            WEBHOOK_TOKEN,
            "{\"orderNo\":\"MET-9\",\"lpa\":\"LPA:1$x.example$MATCHING-ID-SECRET-42\"}"
        )
        .await
        .expect("answers")
        .status()
        .as_u16(),
        422
    );
    let api = client
        .get(format!("http://{addr}/api/v1/orders/MET-1"))
        .bearer_auth("proc-api-token")
        .send()
        .await
        .expect("answers");
    assert_eq!(api.status().as_u16(), 200);
    wait_until(20, "the delivery", || !hook.completed().is_empty()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    child.kill().await.expect("stopped");
    let text = log.lock().expect("lock").clone();
    assert!(text.lines().count() > 20, "trace logging ran: {text}");
    for secret in [
        "MATCHING-ID-SECRET-42",
        WEBHOOK_TOKEN,
        "guessed-token-123",
        "proc-api-token",
    ] {
        assert!(!text.contains(secret), "the log contains {secret:?}");
    }
    assert!(
        text.contains("[redacted]") || text.contains("MET-1"),
        "the log still tells what happened"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_retries_like_the_provider_3_then_6_seconds_apart() {
    let hook = Hook::start(0);
    hook.fail_next(2, 500);
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, out, err) = run_cli(
        &dir.path().join("unused.toml"),
        dir.path(),
        &["simulate", "--url", &hook.url, "--result", "FAILED"],
        &[],
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(code, 0, "{out}\n{err}");
    let attempts: Vec<&str> = out.lines().filter(|l| l.contains(" attempt ")).collect();
    assert_eq!(attempts.len(), 3, "{out}");
    assert!(
        attempts[0].contains("attempt 1: HTTP 500") && attempts[1].contains("attempt 2: HTTP 500"),
        "{out}"
    );
    assert!(attempts[2].contains("attempt 3: HTTP 200"), "{out}");
    assert!(
        out.contains("retrying in 3 s") && out.contains("retrying in 6 s"),
        "{out}"
    );
    let times = hook.arrival_times();
    assert_eq!(times.len(), 3);
    assert!(
        times[1] - times[0] >= Duration::from_secs(3),
        "{:?}",
        times[1] - times[0]
    );
    assert!(
        times[2] - times[1] >= Duration::from_secs(6),
        "{:?}",
        times[2] - times[1]
    );
    assert!(elapsed >= Duration::from_secs(9));
}

/// `simulate` sends the payload's text as written (a long numeric order number is not
/// rounded, members keep their order; `--result` changes that member only), and a failed
/// attempt's line does not show the webhook token in the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_sends_the_payload_as_written_and_keeps_the_token_out_of_its_lines() {
    let hook = Hook::start(0);
    let dir = tempfile::tempdir().expect("temp dir");
    let payload = dir.path().join("payload.json");
    std::fs::write(
        &payload,
        r#"{"orderNo": 202603251612345678901, "price": 9.990, "result": "COMPLETED",
            "iccid": "8910010000000000001"}"#,
    )
    .expect("written");
    let payload = payload.display().to_string();
    let unused = dir.path().join("unused.toml");
    let (code, out, err) = run_cli(
        &unused,
        dir.path(),
        &[
            "simulate",
            "--url",
            &hook.url,
            "--payload",
            &payload,
            "--result",
            "FAILED",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("order 202603251612345678901 attempt 1: HTTP 200"),
        "{out}"
    );
    let body = hook.state.lock().expect("lock").bodies.get("").cloned();
    assert_eq!(
        body.as_deref(),
        Some(
            r#"{"orderNo":202603251612345678901,"price":9.990,"result":"FAILED","iccid":"8910010000000000001"}"#
        )
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr");
    let token = "simulated-secret-token-77";
    let url = format!("http://{closed}/webhooks/order/{token}");
    let (code, out, err) = run_cli(&unused, dir.path(), &["simulate", "--url", &url], &[]).await;
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("attempt 3: failed") && out.contains("could not connect"),
        "{out}"
    );
    assert!(
        !out.contains(token) && !err.contains(token),
        "the token is shown: {out}\n{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_with_a_configured_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("write");
    std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).expect("write");
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/h.db", dir.path().display()),
        "http://127.0.0.1:9/hook",
        "",
    );
    edit_config(&config, |doc| {
        let mut tls = toml::Table::new();
        for (key, file) in [("cert", "cert.pem"), ("key", "key.pem")] {
            let path = dir.path().join(file).display().to_string();
            tls.insert(key.into(), path.into());
        }
        table(doc, "server").insert("tls".into(), tls.into());
    });
    let server = Server::start(&config, dir.path()).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let log = server.log_text();
    assert!(
        log.contains(&format!("https://{addr}/webhooks/order/")),
        "{log}"
    );
    let trusted = reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).expect("pem");
    let client = esim_courier_tests::http_client_builder()
        .add_root_certificate(trusted)
        .build()
        .expect("client");
    let res = client
        .post(format!("https://{addr}/webhooks/order/{WEBHOOK_TOKEN}"))
        .header("content-type", "application/json")
        .body(failed("TLS-1"))
        .send()
        .await
        .expect("TLS handshake and answer");
    assert_eq!(res.status().as_u16(), 200);
    // Plain HTTP is not served on the TLS port.
    let plain = esim_courier_tests::http_client()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(plain.map(|r| r.status().as_u16() != 200).unwrap_or(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_are_counted_logged_once_a_minute_per_source_and_alerted_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/auth.db", dir.path().display()),
        &hook.url,
        "poll_interval = \"200ms\"",
    );
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    for i in 0..200 {
        let status = client
            .post(format!("{}/webhooks/order/guess-{i}", server.base))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("answers")
            .status();
        assert_eq!(status.as_u16(), 401);
    }
    for _ in 0..20 {
        let status = client
            .put(format!("{}/api/v1/orders/AUTH-1", server.base))
            .bearer_auth("wrong-api-token")
            .json(&serde_json::json!({"email": "a@example.com"}))
            .send()
            .await
            .expect("answers")
            .status();
        assert_eq!(status.as_u16(), 401);
    }
    wait_until(20, "the auth_failures alert", || {
        hook.state
            .lock()
            .expect("lock")
            .bodies
            .values()
            .any(|b| b.contains("auth_failures"))
    })
    .await;
    let metrics = server.metrics(&client).await;
    assert_eq!(
        metric(
            &metrics,
            "esim_courier_auth_failures_total{endpoint=\"webhook\"}"
        ),
        200.0,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "esim_courier_auth_failures_total{endpoint=\"api\"}"
        ),
        20.0
    );
    let log = server.log_text();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("wrong token refused"))
        .collect();
    assert_eq!(lines.len(), 1, "one line for the one source: {lines:?}");
    assert!(lines[0].contains("127.0.0.1"), "{}", lines[0]);
    assert!(!log.contains("guess-"), "guessed tokens are not logged");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let alerts = hook
        .state
        .lock()
        .expect("lock")
        .bodies
        .values()
        .filter(|b| b.contains("auth_failures"))
        .count();
    assert_eq!(alerts, 1, "one alert for the whole burst");
    drop(server);
}
