//! Runs `esim-courier` as a child process and hosts a local HTTP endpoint for its webhook
//! notifier.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const WEBHOOK_TOKEN: &str = "proc-token";
pub const API_TOKEN: &str = "proc-api-token";

/// The `[encryption]` section a server on `db_url` needs: none on SQLite (the key file beside
/// the database is made on first start), keys of this test process on PostgreSQL, where they
/// must be configured.
pub fn encryption_for(db_url: &str) -> String {
    static KEYS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    if db_url.starts_with("sqlite:") {
        return String::new();
    }
    let (key, index) = KEYS.get_or_init(|| {
        (
            esim_courier_store::generate_key(),
            esim_courier_store::generate_key(),
        )
    });
    format!("\n[encryption]\nactive_key = \"k1\"\nindex_key = \"{index}\"\nkeys = {{ k1 = \"{key}\" }}\n")
}

/// A config file for a server on `db_url` whose FAILED orders and alerts go to a webhook
/// notifier posting to `hook_url`.
pub fn write_config(dir: &Path, db_url: &str, hook_url: &str, extra_dispatcher: &str) -> PathBuf {
    let path = dir.join("esim-courier.toml");
    let text = format!(
        r#"
[server]
bind = "127.0.0.1:0"
workers = 1

[database]
url = "{db_url}"

[webhook]
tokens = ["{WEBHOOK_TOKEN}"]

[api]
tokens = ["{API_TOKEN}"]

[dispatcher]
lease = "2s"
shutdown_grace = "500ms"
{extra_dispatcher}

[notifiers.hook]
type = "webhook"
url = "{hook_url}"
timeout = "60s"
retry = {{ initial_delay = "100ms", max_delay = "1s", timeout = "60s" }}
# One POST per notification, unless a test turns grouping on.
group_window = "0s"

[[routes]]
when = "FAILED"
notify = ["hook"]

[[routes]]
when = "alert"
notify = ["hook"]
{encryption}"#,
        encryption = encryption_for(db_url)
    );
    std::fs::write(&path, text).expect("config written");
    path
}

/// Edits the config file at `path` as TOML values: `change` gets the parsed document. A
/// key that is not where a test expects it fails here, instead of a text replacement
/// silently matching nothing.
pub fn edit_config(path: &Path, change: impl FnOnce(&mut toml::Table)) {
    let text = std::fs::read_to_string(path).expect("the config is readable");
    let mut doc: toml::Table = text.parse().expect("the config is TOML");
    change(&mut doc);
    std::fs::write(path, toml::to_string(&doc).expect("TOML serialises")).expect("written");
}

/// Sets `[provider]` to the yoni client of the fake provider at `base`, app `reseller-7`
/// signing with `app_secret`.
pub fn set_provider(doc: &mut toml::Table, base: &str, app_secret: &str) {
    let mut section = toml::Table::new();
    section.insert("type".into(), "yoni".into());
    section.insert("base_url".into(), base.into());
    section.insert("app_id".into(), "reseller-7".into());
    section.insert("app_secret".into(), app_secret.into());
    doc.insert("provider".into(), section.into());
}

/// The table at `key` of `doc` (e.g. `server`), which must exist.
pub fn table<'a>(doc: &'a mut toml::Table, key: &str) -> &'a mut toml::Table {
    doc.get_mut(key)
        .and_then(toml::Value::as_table_mut)
        .unwrap_or_else(|| panic!("the config has a [{key}] table"))
}

/// A running `esim-courier serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `serve` and waits until it listens.
    pub async fn start(config: &Path, cwd: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_esim-courier"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .current_dir(cwd)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("esim-courier starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let lines = Arc::clone(&log);
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                // Keep the line before announcing the address, so the log has it by then.
                lines.lock().expect("log lock").push(line.clone());
                if let Some(rest) = line
                    .split("webhook URL: http://")
                    .nth(1)
                    .or_else(|| line.split("webhook URL: https://").nth(1))
                {
                    if let (Some(tx), Some(addr)) = (tx.take(), rest.split('/').next()) {
                        let _ = tx.send(addr.to_owned());
                    }
                }
            }
        });
        let addr = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the server did not start: {:?}",
                    log.lock().expect("log lock")
                )
            })
            .expect("address line");
        Server {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// The `/metrics` text.
    pub async fn metrics(&self, client: &reqwest::Client) -> String {
        client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("answers")
            .text()
            .await
            .expect("text")
    }

    /// POSTs a webhook body.
    pub async fn post(&self, client: &reqwest::Client, body: String) -> u16 {
        client
            .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("answers")
            .status()
            .as_u16()
    }

    /// The captured log.
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }
}

/// What the local endpoint saw.
#[derive(Debug, Default)]
pub struct HookState {
    /// `webhook-id` of every request that started.
    pub started: Vec<String>,
    /// `webhook-id` of every request answered 200.
    pub completed: Vec<String>,
    /// How many of the next requests to hold without answering.
    pub stall_next: usize,
    /// Bodies received.
    pub bodies: HashMap<String, String>,
    /// The status to answer with (200 when 0).
    pub respond_with: u16,
    /// Answer this many of the next requests with `fail_status`.
    pub fail_next: usize,
    pub fail_status: u16,
    /// When each request arrived.
    pub arrivals: Vec<std::time::Instant>,
}

/// A local endpoint for the webhook notifier.
pub struct Hook {
    pub url: String,
    pub state: Arc<Mutex<HookState>>,
}

impl Hook {
    pub fn start(stall_next: usize) -> Hook {
        let state = Arc::new(Mutex::new(HookState {
            stall_next,
            ..HookState::default()
        }));
        let shared = web::Data::from(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").expect("port");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/hook", web::post().to(receive))
        })
        .workers(2)
        .disable_signals()
        .listen(listener)
        .expect("listens")
        .run();
        tokio::spawn(server);
        Hook { url, state }
    }

    pub fn completed(&self) -> Vec<String> {
        self.state.lock().expect("lock").completed.clone()
    }

    pub fn fail_next(&self, n: usize, status: u16) {
        let mut s = self.state.lock().expect("lock");
        s.fail_next = n;
        s.fail_status = status;
    }

    pub fn arrival_times(&self) -> Vec<std::time::Instant> {
        self.state.lock().expect("lock").arrivals.clone()
    }

    pub fn respond_with(&self, status: u16) {
        self.state.lock().expect("lock").respond_with = status;
    }

    pub fn started(&self) -> Vec<String> {
        self.state.lock().expect("lock").started.clone()
    }
}

async fn receive(
    req: HttpRequest,
    body: String,
    state: web::Data<Mutex<HookState>>,
) -> HttpResponse {
    let id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let stall = {
        let mut s = state.lock().expect("lock");
        s.arrivals.push(std::time::Instant::now());
        s.started.push(id.clone());
        s.bodies.insert(id.clone(), body);
        if s.stall_next > 0 {
            s.stall_next -= 1;
            true
        } else {
            false
        }
    };
    if stall {
        // Hold the request as a hung endpoint would.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut s = state.lock().expect("lock");
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return HttpResponse::build(
            actix_web::http::StatusCode::from_u16(s.fail_status).expect("a status"),
        )
        .finish();
    }
    match s.respond_with {
        0 | 200 => {
            s.completed.push(id);
            HttpResponse::Ok().finish()
        }
        code => HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("a status"))
            .finish(),
    }
}

/// Runs an `esim-courier` subcommand to completion: (exit code, stdout, stderr).
pub async fn run_cli(
    config: &Path,
    cwd: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_esim-courier"))
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs an `esim-courier` subcommand with `stdin` as its standard input: (exit code, stdout,
/// stderr).
pub async fn run_cli_with_stdin(
    config: &Path,
    cwd: &Path,
    args: &[&str],
    stdin: &str,
) -> (i32, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_esim-courier"))
        .arg("--config")
        .arg(config)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let mut input = child.stdin.take().expect("stdin piped");
    input.write_all(stdin.as_bytes()).await.expect("written");
    drop(input);
    let out = child.wait_with_output().await.expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A FAILED webhook for `order_no`.
pub fn failed(order_no: &str) -> String {
    format!(
        r#"{{"orderNo":"{order_no}","result":"FAILED","iccid":"","lpa":"","packageName":"Japan, 7 Days, 5GB","price":"12.50","currency":"2"}}"#
    )
}

/// Polls until `check` holds, or panics naming `what`.
pub async fn wait_until(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
