//! The reseller's binary end to end: a FAILED order's webhook in, a ticket at the CRM out
//! (a local HTTP peer standing in for the CRM), and `check` validating the `crm` section
//! like a built-in one.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use esim_courier_test_support::http_peer::{Peer, Reply};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const WEBHOOK_TOKEN: &str = "webhook-token-for-the-example";
const BIN: &str = env!("CARGO_BIN_EXE_courier-with-crm");

fn write_config(dir: &Path, crm_section: &str) -> PathBuf {
    let path = dir.join("esim-courier.toml");
    let db = dir.join("courier.db");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
bind = "127.0.0.1:0"
workers = 1
[database]
url = "sqlite://{db}"
[webhook]
tokens = ["{WEBHOOK_TOKEN}"]
[dispatcher]
poll_interval = "200ms"

[notifiers.crm]
type = "crm"
{crm_section}

[[routes]]
when = "FAILED"
notify = ["crm"]
[[routes]]
when = "alert"
notify = ["crm"]
"#,
            db = db.display()
        ),
    )
    .expect("config written");
    path
}

async fn run(config: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .await
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Starts `serve` and returns it with its base URL, read from its log.
async fn serve(config: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let base = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(rest) = line.split("webhook URL: http://").nth(1) {
                return rest.split('/').next().map(|a| format!("http://{a}"));
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the server announces its address");
    // Keep draining the log so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_order_opens_a_crm_ticket_through_the_resellers_own_notifier() {
    let crm = Peer::start(Reply::new(201, r#"{"id": 7}"#));
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!("url = \"{}/api\"\ntoken = \"crm-secret-token\"", crm.base),
    );

    // `check` knows the type, validates the section and never prints the token.
    let (code, out) = run(&config, &["check"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("PASS") && out.contains("tickets go to"),
        "{out}"
    );
    assert!(!out.contains("crm-secret-token"), "{out}");

    let (mut server, base) = serve(&config).await;
    let client = esim_courier_test_support::http_client();
    let webhook = r#"{"orderNo": "2026113000000000042", "result": "FAILED", "packageCode": "JP-7D-5GB", "packageName": "Japan, 7 Days, 5GB", "price": "4.20", "currency": "2"}"#;
    let status = client
        .post(format!("{base}/webhooks/order/{WEBHOOK_TOKEN}"))
        .header("content-type", "application/json")
        .body(webhook)
        .send()
        .await
        .expect("answers")
        .status();
    assert_eq!(status.as_u16(), 200);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while crm.received().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no ticket reached the CRM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tickets = crm.received();
    let ticket = &tickets[0];
    assert_eq!(ticket.path, "/api/tickets");
    assert_eq!(
        ticket.header("authorization"),
        Some("Bearer crm-secret-token")
    );
    assert!(ticket
        .header("idempotency-key")
        .is_some_and(|k| !k.is_empty()));
    assert_eq!(
        ticket.body["orders"],
        serde_json::json!(["2026113000000000042"])
    );
    assert!(
        ticket.body["subject"]
            .as_str()
            .is_some_and(|s| s.contains("2026113000000000042")),
        "{}",
        ticket.body
    );
    server.kill().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_the_crm_section_is_named_by_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        "url = \"http://127.0.0.1:9/api\"\ntokn = \"crm-secret-token\"",
    );
    let (code, out) = run(&config, &["check"]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("notifiers.crm") && out.contains("tokn"),
        "{out}"
    );
    assert!(!out.contains("crm-secret-token"), "{out}");
}
