//! The operators' console in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`), with JavaScript on and off. A traveller's order is found by their
//! address, opened, its activation email resent (the new attempt appears in the timeline),
//! and dead letters are retried in bulk.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`; without them the test says
//! SKIPPED (counted by `scripts/test`), unless `ESIM_COURIER_REQUIRE_BROWSER=1` (`.ci/run`
//! installs both and sets it). With `ESIM_COURIER_SCREENSHOTS=DIR` it also saves the
//! console's pages at desktop and phone width there (`scripts/screenshot-console`).

use std::time::Duration;

use esim_courier_console::{hash_password, ConsoleConfig};
use esim_courier_store::Role;
use esim_courier_tests::{skipped, spawn_app, AppOptions, Backend, TestApp};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const PASSWORD: &str = "a long enough passphrase";
const LPA: &str = "LPA:1$rsp.demo$69C32E7D00000051";

/// A running chromedriver, stopped when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Chromedriver on a free port, or `None` (the test skipped) when Chromium is not installed.
async fn driver() -> Option<Driver> {
    if !(installed("chromedriver") && installed("chromium")) {
        assert!(
            std::env::var("ESIM_COURIER_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "ESIM_COURIER_REQUIRE_BROWSER=1 but chromium or chromedriver is not installed"
        );
        skipped("browser test (apt-get install chromium chromium-driver to run it)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

/// A headless Chromium session, with JavaScript on or off.
async fn browser(driver: &Driver, javascript: bool) -> Client {
    let mut options = json!({
        "binary": "/usr/bin/chromium",
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900"],
    });
    if !javascript {
        options["prefs"] = json!({"profile.managed_default_content_settings.javascript": 2});
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util_connector())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

fn hyper_util_connector() -> hyper_util::client::legacy::connect::HttpConnector {
    hyper_util::client::legacy::connect::HttpConnector::new()
}

async fn app() -> TestApp {
    let console = ConsoleConfig {
        resend_to: vec!["customer".into()],
        ..ConsoleConfig::default()
    };
    let options = AppOptions {
        console,
        ..AppOptions::default()
    };
    let app = spawn_app(Backend::Sqlite, options)
        .await
        .expect("SQLite is always there");
    let hash = hash_password(PASSWORD).expect("hashes");
    app.store
        .add_console_user("ana", Role::Operator, &hash, "test")
        .await
        .expect("added");
    let (status, _) = app
        .register(
            "B-1",
            json!({"email": "zoe@traveller.example", "name": "Zoe"}),
        )
        .await;
    assert_eq!(status, 201);
    let completed = json!({"orderNo": "B-1", "result": "COMPLETED", "iccid": "89440000000000000051",
        "lpa": LPA, "packageName": "Japan, 7 Days", "price": "4.20", "currency": "2"});
    app.webhook_json(completed.to_string()).await;
    for order_no in ["B-D1", "B-D2", "B-D3"] {
        let failed = json!({"orderNo": order_no, "result": "FAILED", "iccid": "", "lpa": "",
            "packageName": "Japan", "price": "4.20", "currency": "2"});
        app.webhook_json(failed.to_string()).await;
    }
    eventually(|| async { app.customer.delivered().len() == 1 }).await;
    eventually(|| async {
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE order_no LIKE 'B-D%' AND state = 'done'")
            .await
            == 3
    })
    .await;
    sqlx::query("UPDATE outbox_jobs SET state = 'dead' WHERE order_no LIKE 'B-D%'")
        .execute(&app.db)
        .await
        .expect("dead letters made");
    app
}

async fn eventually<F, Fut>(mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out");
}

/// The page's text once it contains `needle`: a click that submits a form returns before
/// the next page has loaded, so each step waits for what it expects to see.
async fn shows(c: &Client, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(body) = c.find(Locator::Css("body")).await {
            if let Ok(text) = body.text().await {
                if text.contains(needle) {
                    return text;
                }
                last = text;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page never showed {needle:?}; it shows:\n{last}");
}

async fn click(c: &Client, button: &str) {
    c.find(Locator::XPath(&format!(
        "//button[normalize-space()='{button}'] | //a[normalize-space()='{button}']"
    )))
    .await
    .unwrap_or_else(|e| panic!("{button}: {e}"))
    .click()
    .await
    .expect("clicked");
}

async fn screenshot(c: &Client, name: &str) {
    let Some(dir) = std::env::var_os("ESIM_COURIER_SCREENSHOTS") else {
        return;
    };
    for (width, height, suffix) in [(1280, 900, "desktop"), (390, 844, "phone")] {
        c.set_window_size(width, height).await.expect("resized");
        let png = c.screenshot().await.expect("a screenshot");
        let path = std::path::Path::new(&dir).join(format!("console-{name}-{suffix}.png"));
        std::fs::write(&path, png).expect("written");
    }
    c.set_window_size(1280, 900).await.expect("resized");
}

/// Logs in, finds Zoe's order by her address, opens it, resends, and sees the new attempt.
async fn find_and_resend(c: &Client, app: &TestApp, resent_before: usize) {
    c.goto(&format!("{}/admin/", app.base))
        .await
        .expect("opens");
    shows(c, "User name").await;
    assert!(c
        .current_url()
        .await
        .expect("url")
        .path()
        .ends_with("/admin/login"));
    type_into(c, "username", "ana").await;
    type_into(c, "password", PASSWORD).await;
    click(c, "Log in").await;
    shows(c, "Logged in as ana").await;
    screenshot(c, "overview").await;
    click(c, "Orders").await;
    shows(c, "Order number, ICCID or customer email").await;
    type_into(c, "q", "zoe@traveller.example").await;
    click(c, "Show").await;
    shows(c, "Export these orders").await;
    screenshot(c, "orders").await;
    click(c, "B-1").await;
    let page = shows(c, "Order B-1").await;
    assert!(page.contains("zoe@traveller.example"), "{page}");
    assert!(!page.contains("69C32E7D00000051"), "the code is masked");
    screenshot(c, "order").await;
    click(c, "Resend the activation email").await;
    shows(c, "Yes, go ahead").await;
    click(c, "Yes, go ahead").await;
    shows(c, "Queued again for z***@traveller.example").await;
    eventually(|| async { app.customer.delivered().len() == resent_before + 1 }).await;
    click(c, "Back").await;
    let page = shows(c, "Notifications").await;
    assert_eq!(
        page.split("\nNotifications\n")
            .nth(1)
            .expect("the notifications")
            .matches("delivered to z***@traveller.example")
            .count(),
        resent_before + 1,
        "the new attempt in the timeline: {page}"
    );
}

async fn type_into(c: &Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("field {id}: {e}"))
        .send_keys(text)
        .await
        .expect("typed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_an_order_resends_and_retries_dead_letters_in_chromium() {
    let Some(driver) = driver().await else {
        return;
    };
    let app = app().await;

    let c = browser(&driver, true).await;
    find_and_resend(&c, &app, 1).await;
    click(&c, "Dead letters").await;
    shows(&c, "Retry all 3").await;
    click(&c, "Retry all 3").await;
    shows(&c, "Queue every dead letter again?").await;
    click(&c, "Yes, go ahead").await;
    shows(&c, "3 dead letter(s) queued again").await;
    c.close().await.expect("closed");

    // Once more with JavaScript off: every core flow is plain HTML forms.
    let c = browser(&driver, false).await;
    find_and_resend(&c, &app, 2).await;
    c.close().await.expect("closed");
    app.stop().await;
}
