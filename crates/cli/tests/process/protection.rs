//! Data protection as operators meet it: what the database's bytes hold after real traffic,
//! key rotation beside a running server (killed half-way once), a missing key, the key file.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use esim_courier_tests::smtp::{open_activation_email, read_qr, Response, SmtpServer, Stage};
use esim_courier_tests::{on_both_backends, test_db, Backend};
use serde_json::json;
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::email::write_email_config;
use crate::harness::{edit_config, failed, run_cli, wait_until, Server, API_TOKEN, WEBHOOK_TOKEN};

on_both_backends!(
    after_real_traffic_the_database_bytes_hold_no_code_address_or_name,
    rotation_beside_a_running_server_killed_half_way_leaves_nothing_on_the_old_key,
    a_database_from_before_encryption_is_encrypted_by_the_first_start,
    retention_erases_codes_and_bodies_on_time_and_forget_leaves_no_trace,
    an_email_under_way_when_its_customer_is_forgotten_leaves_no_address_and_is_not_retried,
    a_reindex_stopped_half_way_is_accepted_with_neither_key_until_run_again,
    forgetting_an_address_a_resend_went_to_erases_it_and_cancels_what_was_not_sent,
);

/// The matching IDs of the codes this file sends: none may appear in the database's bytes.
const MATCHING_ID: &str = "K2-4KJ2T-1B6Q9X";
const QUARANTINED_ID: &str = "QZ-77QRT-SECRET";
/// Sent alone as a webhook's `lpa`, with no `$`: a code that cannot be used, whose text is
/// nonetheless a matching ID.
const BARE_ID: &str = "BR-93KXW-SECRET";
const NAME: &str = "Anastasia Quillfeather";

fn lpa(matching_id: &str) -> String {
    format!("LPA:1$smdp.example.com${matching_id}")
}

fn completed(order_no: &str, iccid: &str) -> String {
    json!({
        "orderNo": order_no, "result": "COMPLETED", "iccid": iccid, "lpa": lpa(MATCHING_ID),
        "packageCode": "YN26", "packageName": "Malaysia, 1 Day, 1GB, 256kbps", "price": "9.99", "currency": "4"
    })
    .to_string()
}

async fn register(client: &reqwest::Client, server: &Server, order_no: &str, email: &str) {
    let res = client
        .put(format!("{}/api/v1/orders/{order_no}", server.base))
        .bearer_auth(API_TOKEN)
        .json(&json!({"email": email, "name": NAME, "locale": "en"}))
        .send()
        .await
        .expect("answers");
    assert!(res.status().is_success(), "{}", res.status());
}

fn customer_mails(smtp: &SmtpServer) -> Vec<esim_courier_tests::smtp::Received> {
    smtp.peek()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t.ends_with("@traveller.example")))
        .collect()
}

/// Every byte the database keeps: on SQLite the main file and its WAL read raw, on
/// PostgreSQL a `pg_dump` of the database.
async fn database_bytes(db_url: &str) -> Vec<u8> {
    if let Some(file) = esim_courier_store::sqlite_file(db_url) {
        let mut bytes = std::fs::read(&file).expect("the database file");
        let wal = file.with_extension("db-wal");
        if let Ok(more) = std::fs::read(&wal) {
            bytes.extend(more);
        }
        bytes
    } else {
        let out = tokio::process::Command::new("pg_dump")
            .arg("--dbname")
            .arg(db_url)
            .output()
            .await
            .expect("pg_dump runs");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

/// One connection to the database at `url`, to read and write rows as a test needs.
async fn pool_on(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .expect("connects")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

async fn after_real_traffic_the_database_bytes_hold_no_code_address_or_name(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();

    register(&client, &server, "SEAL-A", "ana.quill@traveller.example").await;
    assert_eq!(
        server
            .post(&client, completed("SEAL-A", "8944500102198304826"))
            .await,
        200
    );
    assert_eq!(server.post(&client, failed("SEAL-F")).await, 200);
    // Authenticated but unusable (no result): quarantined with its body.
    let res = client
        .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base))
        .header("content-type", "application/json")
        .body(json!({"orderNo": "SEAL-Q", "lpa": lpa(QUARANTINED_ID)}).to_string())
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 422);
    // A COMPLETED order whose code is a bare matching ID: recorded, and operators alerted
    // that the code cannot be used, without its text anywhere.
    let bare = json!({
        "orderNo": "SEAL-B", "result": "COMPLETED", "iccid": "8944500102198304827", "lpa": BARE_ID
    });
    assert_eq!(server.post(&client, bare.to_string()).await, 200);
    wait_until(30, "the activation email and the code's alert", || {
        let mails = smtp.peek();
        customer_mails(&smtp).len() == 1
            && mails
                .iter()
                .any(|m| String::from_utf8_lossy(&m.data).contains("missing_activation_code"))
    })
    .await;
    for mail in smtp.peek() {
        let text = String::from_utf8_lossy(&mail.data);
        assert!(
            !text.contains(BARE_ID),
            "a mail holds the bare code: {text}"
        );
    }
    let (code, out, err) = run_cli(&config, dir.path(), &["orders", "show", "SEAL-B"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("activation code is unusable"), "{out}");
    assert!(!out.contains(BARE_ID), "{out}");
    // An operator's re-send to another address: a job and an attempt addressed elsewhere.
    let (code, _, err) = run_cli(
        &config,
        dir.path(),
        &["resend", "SEAL-A", "--to", "second.copy@traveller.example"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    wait_until(30, "the re-sent email", || customer_mails(&smtp).len() == 2).await;
    let mails = customer_mails(&smtp);
    let (html, _, png, _) = open_activation_email(&mails[0].data);
    assert_eq!(read_qr(&png), lpa(MATCHING_ID), "the email is unchanged");
    assert!(html.contains(MATCHING_ID) && html.contains(NAME));

    // What operators see is whole: the order shows its customer and code masked.
    let (code, out, err) = run_cli(&config, dir.path(), &["orders", "show", "SEAL-A"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("a***@traveller.example"), "{out}");
    let log = server.log_text();
    assert!(log.contains("SEAL-B"), "the log was read");
    for secret in [MATCHING_ID, QUARANTINED_ID, BARE_ID] {
        assert!(!log.contains(secret), "the log holds {secret:?}");
    }
    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let bytes = database_bytes(&db.url).await;
    assert!(bytes.len() > 1000, "the database was read");
    for secret in [
        MATCHING_ID,
        QUARANTINED_ID,
        BARE_ID,
        "ana.quill@traveller.example",
        "second.copy@traveller.example",
        NAME,
    ] {
        assert!(
            !contains(&bytes, secret),
            "{secret:?} is in the database's bytes"
        );
    }
    // The sealed values are there (the check above read the right bytes).
    assert!(contains(&bytes, "enc:AQJrM"), "sealed values with key k1");
    for public in ["SEAL-A", "SEAL-F", "SEAL-Q", "8944500102198304826"] {
        assert!(contains(&bytes, public), "{public} is stored in the clear");
    }
}

/// Sets `[encryption]` to `keys` (id, base64) with `active` and the index key `index`.
fn set_keys(config: &Path, active: &str, keys: &[(&str, &str)], index: &str) {
    edit_config(config, |doc| {
        let mut section = toml::Table::new();
        section.insert("active_key".into(), active.into());
        section.insert("index_key".into(), index.into());
        let mut ids = toml::Table::new();
        for (id, key) in keys {
            ids.insert((*id).into(), (*key).into());
        }
        section.insert("keys".into(), ids.into());
        doc.insert("encryption".into(), section.into());
    });
}

async fn key_status(config: &Path, cwd: &Path) -> String {
    let (code, out, err) = run_cli(config, cwd, &["keys", "status"], &[]).await;
    assert_eq!(code, 0, "{err}");
    out
}

async fn rotation_beside_a_running_server_killed_half_way_leaves_nothing_on_the_old_key(
    backend: Backend,
) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let (k1, k2, index) = (
        esim_courier_store::generate_key(),
        esim_courier_store::generate_key(),
        esim_courier_store::generate_key(),
    );
    set_keys(&config, "k1", &[("k1", &k1)], &index);
    let client = esim_courier_tests::http_client();

    // Written under k1.
    let server = Server::start(&config, dir.path()).await;
    for i in 0..40 {
        register(
            &client,
            &server,
            &format!("ROT-{i}"),
            &format!("c{i}@traveller.example"),
        )
        .await;
        assert_eq!(
            server
                .post(
                    &client,
                    completed(&format!("ROT-{i}"), "8944500102198304826")
                )
                .await,
            200
        );
    }
    wait_until(60, "40 activation emails", || {
        customer_mails(&smtp).len() == 40
    })
    .await;
    drop(server);
    assert!(key_status(&config, dir.path()).await.contains("k1: "));

    // k2 becomes the active key; k1 stays configured until nothing needs it.
    set_keys(&config, "k2", &[("k1", &k1), ("k2", &k2)], &index);
    let server = Server::start(&config, dir.path()).await;

    // A rotation killed after its first batch.
    let mut rotate = tokio::process::Command::new(env!("CARGO_BIN_EXE_esim-courier"))
        .arg("--config")
        .arg(&config)
        .args(["keys", "rotate", "--batch", "2"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("rotate starts");
    let mut lines = BufReader::new(rotate.stderr.take().expect("piped")).lines();
    loop {
        let line = lines
            .next_line()
            .await
            .expect("reads")
            .expect("a progress line");
        if line.contains("/") && line.contains('.') {
            break;
        }
    }
    rotate.kill().await.expect("killed");
    let status = key_status(&config, dir.path()).await;
    assert!(
        status.contains("k1: ") && status.contains("k2: "),
        "half-way, both keys hold values: {status}"
    );

    // Run again while webhooks arrive: it goes on where it stopped and loses nothing.
    let posting = {
        let client = client.clone();
        let base = server.base.clone();
        tokio::spawn(async move {
            for i in 0..20 {
                let order = format!("LIVE-{i}");
                let res = client
                    .put(format!("{base}/api/v1/orders/{order}"))
                    .bearer_auth(API_TOKEN)
                    .json(&json!({"email": format!("l{i}@traveller.example"), "name": NAME}))
                    .send()
                    .await
                    .expect("answers");
                assert!(res.status().is_success());
                let res = client
                    .post(format!("{base}/webhooks/order/{WEBHOOK_TOKEN}"))
                    .header("content-type", "application/json")
                    .body(completed(&order, "8944500102198304826"))
                    .send()
                    .await
                    .expect("answers");
                assert_eq!(res.status().as_u16(), 200);
            }
        })
    };
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["keys", "rotate", "--batch", "5"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    posting.await.expect("the webhooks were answered");
    wait_until(60, "60 activation emails", || {
        customer_mails(&smtp).len() == 60
    })
    .await;
    assert!(out.contains("re-encrypted"), "{out}");
    drop(server);
    // Anything written under k1 meanwhile is rotated by one more run; then none is left.
    let (code, _, err) = run_cli(&config, dir.path(), &["keys", "rotate"], &[]).await;
    assert_eq!(code, 0, "{err}");
    let status = key_status(&config, dir.path()).await;
    assert!(!status.contains("k1: "), "{status}");
    assert!(status.contains("every value uses \"k2\""), "{status}");

    // k1 removed from the configuration: the server starts, every order shows and resends.
    set_keys(&config, "k2", &[("k2", &k2)], &index);
    let server = Server::start(&config, dir.path()).await;
    for order in ["ROT-0", "ROT-39", "LIVE-0", "LIVE-19"] {
        let (code, out, err) = run_cli(&config, dir.path(), &["orders", "show", order], &[]).await;
        assert_eq!(code, 0, "{order}: {err}");
        assert!(out.contains("@traveller.example"), "{out}");
    }
    let (code, _, err) = run_cli(&config, dir.path(), &["resend", "ROT-7"], &[]).await;
    assert_eq!(code, 0, "{err}");
    wait_until(30, "the re-sent email", || {
        customer_mails(&smtp).len() == 61
    })
    .await;
    let mails = customer_mails(&smtp);
    let last = mails.last().expect("a mail");
    assert_eq!(last.to, ["c7@traveller.example".to_owned()]);
    let (html, _, png, _) = open_activation_email(&last.data);
    assert_eq!(read_qr(&png), lpa(MATCHING_ID));
    assert!(html.contains(NAME));
    drop(server);

    // Without a key that stored values need, the server does not start, and says why.
    set_keys(
        &config,
        "k3",
        &[("k3", &esim_courier_store::generate_key())],
        &index,
    );
    let (code, _, err) = run_cli(&config, dir.path(), &["migrate"], &[]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("sealed with key \"k2\", which is not configured"),
        "{err}"
    );
    // k2's id with other key material: refused, not a start that cannot read anything.
    set_keys(
        &config,
        "k2",
        &[("k2", &esim_courier_store::generate_key())],
        &index,
    );
    let (code, _, err) = run_cli(&config, dir.path(), &["migrate"], &[]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("encryption key \"k2\" is not the key that encrypted"),
        "{err}"
    );
    // Another index key would match no stored hash: refused too...
    let new_index = esim_courier_store::generate_key();
    set_keys(&config, "k2", &[("k2", &k2)], &new_index);
    let (code, _, err) = run_cli(&config, dir.path(), &["migrate"], &[]).await;
    assert_ne!(code, 0);
    assert!(err.contains("index_key is not the key"), "{err}");
    // ...until `keys reindex` has made every entry again under it.
    let (code, out, err) = run_cli(&config, dir.path(), &["keys", "reindex"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("60 event fingerprint(s), 60 address(es)"),
        "{out}"
    );
    let server = Server::start(&config, dir.path()).await;
    // A provider retry of an event from before is still recognised...
    let res = client
        .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base))
        .header("content-type", "application/json")
        .body(completed("ROT-3", "8944500102198304826"))
        .send()
        .await
        .expect("answers");
    let answer: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(answer["status"], "duplicate", "{answer}");
    drop(server);
    // ...and a customer is found by their address.
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["customers", "forget", "c5@traveller.example"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("erased 1 customer(s)") && out.contains("ROT-5"),
        "{out}"
    );
}

/// `keys reindex` stops half way: the addresses are made again under the new index key, then
/// an event's code does not open (here: another event's sealed code in its place). A start
/// with the old key would not find those customers (erasure would miss them): it is refused,
/// as with the new one, until a run has finished.
async fn a_reindex_stopped_half_way_is_accepted_with_neither_key_until_run_again(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let (k1, old_index, new_index) = (
        esim_courier_store::generate_key(),
        esim_courier_store::generate_key(),
        esim_courier_store::generate_key(),
    );
    set_keys(&config, "k1", &[("k1", &k1)], &old_index);
    let client = esim_courier_tests::http_client();
    let server = Server::start(&config, dir.path()).await;
    for i in 0..3 {
        let order_no = format!("REIX-{i}");
        register(
            &client,
            &server,
            &order_no,
            &format!("r{i}@traveller.example"),
        )
        .await;
        assert_eq!(
            server
                .post(&client, completed(&order_no, "8944500102198304826"))
                .await,
            200
        );
    }
    drop(server);

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("db");
    let codes: Vec<(i64, String)> = sqlx::query("SELECT id, lpa FROM order_events ORDER BY id")
        .fetch_all(&pool)
        .await
        .expect("events")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(codes.len(), 3);
    let swap = |lpa: String, id: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query("UPDATE order_events SET lpa = $1 WHERE id = $2")
                .bind(lpa)
                .bind(id)
                .execute(&pool)
                .await
                .expect("written");
        }
    };
    swap(codes[0].1.clone(), codes[2].0).await;

    set_keys(&config, "k1", &[("k1", &k1)], &new_index);
    let (code, _, err) = run_cli(&config, dir.path(), &["keys", "reindex"], &[]).await;
    assert_ne!(code, 0, "the last event's code does not open");
    assert!(err.contains("run `keys reindex` again"), "{err}");
    for index in [&old_index, &new_index] {
        set_keys(&config, "k1", &[("k1", &k1)], index);
        let (code, _, err) = run_cli(&config, dir.path(), &["migrate"], &[]).await;
        assert_ne!(code, 0);
        assert!(err.contains("`keys reindex` was interrupted"), "{err}");
    }

    swap(codes[2].1.clone(), codes[2].0).await;
    pool.close().await;
    let (code, out, err) = run_cli(&config, dir.path(), &["keys", "reindex"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("3 event fingerprint(s), 3 address(es)"),
        "{out}"
    );
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["customers", "forget", "r1@traveller.example"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("erased 1 customer(s)") && out.contains("REIX-1"),
        "{out}"
    );
}

/// What the store wrote before encryption, for one registered order with a COMPLETED event:
/// plaintext address, name, code and body, and the event's unkeyed fingerprint.
async fn write_as_before_encryption(db_url: &str, order_no: &str, email: &str) {
    let body = completed(order_no, "8944500102198304826");
    let digest = esim_courier_core::WebhookPayload::from_slice(body.as_bytes())
        .and_then(|p| p.into_event(&esim_courier_core::domain::CurrencyTable::default()))
        .expect("the payload parses")
        .fingerprint()
        .to_owned();
    let pool = pool_on(db_url).await;
    sqlx::query(
        // One recorded event, as migration 0009 counts an order's events.
        "INSERT INTO orders (order_no, created_at, updated_at, state, customer_email, customer_name, registered_at, recorded_events)
         VALUES ($1, 1, 1, 'COMPLETED', $2, $3, 1, 1)",
    )
    .bind(order_no.to_owned())
    .bind(email.to_owned())
    .bind(NAME)
    .execute(&pool)
    .await
    .expect("the order, as before");
    let receipt: i64 = sqlx::query(
        "INSERT INTO webhook_receipts (received_at, order_no, outcome, http_status, body, source)
         VALUES (2, $1, 'accepted', 200, $2, 'webhook') RETURNING id",
    )
    .bind(order_no.to_owned())
    .bind(body.into_bytes())
    .fetch_one(&pool)
    .await
    .expect("the receipt, as before")
    .try_get("id")
    .expect("its id");
    sqlx::query(
        "INSERT INTO order_events (order_no, receipt_id, received_at, result, disposition, fingerprint, iccid, lpa, warnings, source)
         VALUES ($1, $2, 2, 'COMPLETED', 'accepted', $3, '8944500102198304826', $4, '[]', 'webhook')",
    )
    .bind(order_no.to_owned())
    .bind(receipt)
    .bind(digest)
    .bind(lpa(MATCHING_ID))
    .execute(&pool)
    .await
    .expect("the event, as before");
    // As a database migrated from before: not yet encrypted, no key recorded.
    sqlx::query("UPDATE encryption_state SET upgraded = 0, index_check = NULL")
        .execute(&pool)
        .await
        .expect("reset");
    sqlx::query("DELETE FROM encryption_keys")
        .execute(&pool)
        .await
        .expect("reset");
    pool.close().await;
}

async fn a_database_from_before_encryption_is_encrypted_by_the_first_start(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let (code, _, err) = run_cli(&config, dir.path(), &["migrate"], &[]).await;
    assert_eq!(code, 0, "{err}");
    write_as_before_encryption(&db.url, "OLD-1", "old.customer@traveller.example").await;
    assert!(
        contains(&database_bytes(&db.url).await, MATCHING_ID),
        "plaintext before"
    );
    // `check` says what the first start will do and does none of it: it is run while the
    // older version may still be serving (and writing plaintext).
    let (code, out, err) = run_cli(&config, dir.path(), &["check"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(
            "PASS encryption: the database is from before encryption: the next start encrypts \
             its 4 stored value(s)"
        ),
        "the address, the name, the body and the code: {out}"
    );
    assert!(
        contains(&database_bytes(&db.url).await, MATCHING_ID),
        "still plaintext after `check`"
    );

    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    // The event recorded before encryption is still recognised: the provider's retry of it
    // is a duplicate, not a new event.
    let res = client
        .post(format!("{}/webhooks/order/{WEBHOOK_TOKEN}", server.base))
        .header("content-type", "application/json")
        .body(completed("OLD-1", "8944500102198304826"))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    let answer: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(answer["status"], "duplicate", "{answer}");
    // Its customer's address and code are read back: a re-send reaches them.
    let (code, _, err) = run_cli(&config, dir.path(), &["resend", "OLD-1"], &[]).await;
    assert_eq!(code, 0, "{err}");
    wait_until(30, "the re-sent email", || customer_mails(&smtp).len() == 1).await;
    let mails = customer_mails(&smtp);
    assert_eq!(mails[0].to, ["old.customer@traveller.example".to_owned()]);
    let (html, _, png, _) = open_activation_email(&mails[0].data);
    assert_eq!(read_qr(&png), lpa(MATCHING_ID));
    assert!(html.contains(NAME));
    assert!(
        server
            .log_text()
            .contains("encrypted the values stored before encryption"),
        "the log says so"
    );
    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bytes = database_bytes(&db.url).await;
    for secret in [MATCHING_ID, "old.customer@traveller.example", NAME] {
        assert!(
            !contains(&bytes, secret),
            "{secret:?} is left in the database's bytes"
        );
    }
    let (code, out, err) = run_cli(&config, dir.path(), &["check"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PASS encryption: the configured keys are the ones this database was"),
        "{out}"
    );
    // Keys a start would refuse, `check` refuses the same way.
    let other = esim_courier_store::generate_key();
    set_keys(&config, "k9", &[("k9", &other)], &other);
    let (code, out, _) = run_cli(&config, dir.path(), &["check"], &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL encryption: cannot start with the configured encryption keys")
            && out.contains("encryption.index_key is not the key"),
        "{out}"
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_makes_its_key_file_once_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = SmtpServer::start();
    let db_url = format!("sqlite://{}/data/esim-courier.db", dir.path().display());
    let config = write_email_config(dir.path(), &db_url, &smtp.url(), "");
    let (code, _, first) =
        run_cli(&config, dir.path(), &["migrate"], &[("RUST_LOG", "info")]).await;
    assert_eq!(code, 0, "{first}");
    let file = dir.path().join("data/esim-courier.key");
    let mode = std::fs::metadata(&file)
        .expect("the key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert!(
        first.contains("generated the encryption key file"),
        "{first}"
    );
    let key = std::fs::read_to_string(&file).expect("readable");
    let (code, _, second) =
        run_cli(&config, dir.path(), &["migrate"], &[("RUST_LOG", "info")]).await;
    assert_eq!(code, 0, "{second}");
    assert!(
        !second.contains("generated the encryption key file"),
        "once: {second}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("readable"),
        key,
        "kept"
    );
    // Without it the data cannot be read: the start says the key file is missing, and does
    // not make a new one that could not read what is stored.
    std::fs::remove_file(&file).expect("removed");
    let (code, _, err) = run_cli(&config, dir.path(), &["migrate"], &[]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("the key file")
            && err.contains("is missing")
            && err.contains("esim-courier.key"),
        "{err}"
    );
    assert!(!file.exists(), "no new key file");
    // Put back, it starts as before.
    std::fs::write(&file, &key).expect("put back");
    let (code, _, err) = run_cli(&config, dir.path(), &["migrate"], &[]).await;
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_without_keys_refuses_to_start_and_says_how() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("esim-courier.toml");
    std::fs::write(
        &config,
        "[database]\nurl = \"postgres://postgres@127.0.0.1:1/none\"\n[webhook]\ntokens = [\"t\"]\n",
    )
    .expect("written");
    let (code, _, err) = run_cli(&config, dir.path(), &["migrate"], &[]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("on PostgreSQL the encryption keys must be configured")
            && err.contains("keys generate"),
        "{err}"
    );
}

async fn retention_erases_codes_and_bodies_on_time_and_forget_leaves_no_trace(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    edit_config(&config, |doc| {
        let mut section = toml::Table::new();
        section.insert("activation_codes".into(), "2s".into());
        section.insert("receipt_bodies".into(), "3s".into());
        section.insert("purge_interval".into(), "1s".into());
        doc.insert("retention".into(), section.into());
    });
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let forgotten = "forget.me@traveller.example";
    register(&client, &server, "RET-1", "kept@traveller.example").await;
    register(&client, &server, "RET-2", forgotten).await;
    for order in ["RET-1", "RET-2"] {
        assert_eq!(
            server
                .post(&client, completed(order, "8944500102198304826"))
                .await,
            200
        );
    }
    assert_eq!(server.post(&client, failed("RET-F")).await, 200);
    // Nobody registered for this one: its email has not gone out, so its code stays.
    assert_eq!(
        server
            .post(&client, completed("RET-3", "8944500102198304826"))
            .await,
        200
    );
    wait_until(30, "two activation emails", || {
        customer_mails(&smtp).len() == 2
    })
    .await;

    // Two seconds after delivery the codes are erased, kept masked for support.
    let mut erased = serde_json::Value::Null;
    for _ in 0..100 {
        let (code, out, err) = run_cli(
            &config,
            dir.path(),
            &["orders", "show", "RET-1", "--json"],
            &[],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        let order: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        if order["events"][0]["activationCodeErased"].is_string() {
            erased = order;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let event = &erased["events"][0];
    assert!(event["activationCode"].is_null(), "{erased}");
    // Two purges later, the undelivered order's code is still whole.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["orders", "show", "RET-3", "--json"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let waiting: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(
        waiting["events"][0]["activationCode"].is_string()
            && waiting["events"][0]["activationCodeErased"].is_null(),
        "{waiting}"
    );
    assert_eq!(
        event["activationCodeErased"], "LPA:1$smdp.example.com$***********6Q9X",
        "{erased}"
    );
    // The FAILED order's body (no code) is redacted once three seconds old.
    let pool = pool_on(&db.url).await;
    let mut redacted = 0i64;
    for _ in 0..100 {
        redacted = sqlx::query(
            "SELECT COUNT(*) AS n FROM webhook_receipts WHERE order_no = 'RET-F' AND redacted_at IS NOT NULL",
        )
        .fetch_one(&pool)
        .await
        .expect("counted")
        .try_get("n")
        .expect("n");
        if redacted == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(redacted, 1, "the FAILED order's body is redacted on time");
    assert!(server.log_text().contains("retention purge done"));

    // Erasure on request, by an address in another case.
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &[
            "customers",
            "forget",
            "Forget.Me@Traveller.example",
            "--by",
            "dpo-kim",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("erased 1 customer(s)") && out.contains("RET-2"),
        "{out}"
    );
    let (code, out, _) = run_cli(
        &config,
        dir.path(),
        &["customers", "forget", forgotten],
        &[],
    )
    .await;
    assert_eq!(code, 0);
    assert!(
        out.contains("nothing erased"),
        "nothing is left to find: {out}"
    );
    let audit = sqlx::query("SELECT actor, detail FROM audit_log WHERE action = 'customer_forget'")
        .fetch_all(&pool)
        .await
        .expect("audited");
    assert_eq!(audit.len(), 1);
    let detail: String = audit[0].try_get("detail").expect("detail");
    assert_eq!(
        audit[0].try_get::<String, _>("actor").expect("actor"),
        "dpo-kim"
    );
    assert!(!detail.to_lowercase().contains("forget.me"), "{detail}");
    let left: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM orders WHERE order_no = 'RET-2'
            AND (customer_email IS NOT NULL OR customer_name IS NOT NULL OR customer_email_index IS NOT NULL)",
    )
    .fetch_one(&pool)
    .await
    .expect("counted")
    .try_get("n")
    .expect("n");
    assert_eq!(left, 0, "the rows and the index entry are gone");
    pool.close().await;
    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;

    use sha2::Digest;
    let bytes = database_bytes(&db.url).await;
    let unkeyed = hex::encode(sha2::Sha256::digest(forgotten.as_bytes()));
    for secret in [forgotten, NAME, MATCHING_ID, unkeyed.as_str()] {
        assert!(
            !contains(&bytes, secret),
            "{secret:?} is in the database's bytes"
        );
    }
}

/// An operator re-sent an order's activation email to another address (`resend --to`), twice:
/// once delivered, once queued while the server was stopped. `customers forget` of that
/// address (not the order's customer) finds both: the delivered one keeps no address, the
/// queued one is cancelled, so it goes neither to the forgotten address nor to the order's
/// customer, whose data stays.
async fn forgetting_an_address_a_resend_went_to_erases_it_and_cancels_what_was_not_sent(
    backend: Backend,
) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let (customer, other) = ("ana.kept@traveller.example", "bob.sent@traveller.example");
    register(&client, &server, "TO-1", customer).await;
    assert_eq!(
        server
            .post(&client, completed("TO-1", "8944500102198304826"))
            .await,
        200
    );
    wait_until(30, "the customer's email", || {
        customer_mails(&smtp).len() == 1
    })
    .await;
    let resend = ["resend", "TO-1", "--to", other, "--by", "ops-lee"];
    let (code, _, err) = run_cli(&config, dir.path(), &resend, &[]).await;
    assert_eq!(code, 0, "{err}");
    wait_until(30, "the re-sent email", || customer_mails(&smtp).len() == 2).await;
    let pool = pool_on(&db.url).await;
    let latest_state = || async {
        sqlx::query(
            "SELECT state FROM outbox_jobs WHERE id = (SELECT MAX(id) FROM outbox_jobs WHERE order_no = 'TO-1')",
        )
        .fetch_one(&pool)
        .await
        .expect("the job")
        .try_get::<String, _>("state")
        .expect("state")
    };
    // Its outcome recorded before the server stops.
    for _ in 0..150 {
        if latest_state().await == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(latest_state().await, "done");
    drop(server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, _, err) = run_cli(&config, dir.path(), &resend, &[]).await;
    assert_eq!(code, 0, "{err}");
    let show = |config: std::path::PathBuf, dir: std::path::PathBuf| async move {
        let (code, out, err) = run_cli(&config, &dir, &["orders", "show", "TO-1"], &[]).await;
        assert_eq!(code, 0, "{err}");
        out
    };
    let before = show(config.clone(), dir.path().to_owned()).await;
    assert!(before.contains("to b***@traveller.example"), "{before}");

    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["customers", "forget", "Bob.Sent@traveller.example"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("erased 0 customer(s)")
            && out.contains("3 recipient address(es)")
            && out.contains("1 undelivered job(s) cancelled")
            && out.contains("orders: TO-1"),
        "the delivered re-send's job and attempt, the queued one's job: {out}"
    );
    let after = show(config.clone(), dir.path().to_owned()).await;
    // The audit trail keeps what the operator did, with the address masked as it was written.
    let (deliveries, _) = after
        .split_once("operator actions:")
        .expect("the audit trail");
    assert!(!deliveries.contains("b***@"), "{after}");
    assert!(
        deliveries.contains("customer ana.kept@traveller.example")
            && deliveries.contains("job 3 order_completed -> customer-email: cancelled"),
        "the customer stays, the queued re-send is cancelled: {after}"
    );

    // The queued re-send goes to nobody once the server is back.
    let server = Server::start(&config, dir.path()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(customer_mails(&smtp).len(), 2, "nothing more was sent");

    // A re-send being handed to the mail server (held at DATA) when its address is
    // forgotten: that send cannot be called back. Accepted, its record keeps no address;
    // refused for now, it is never sent again, to the address or to the order's customer.
    for accepted in [true, false] {
        let held = smtp.hold_next_to(other);
        let (code, _, err) = run_cli(&config, dir.path(), &resend, &[]).await;
        assert_eq!(code, 0, "{err}");
        held.arrived().await;
        let (code, out, err) =
            run_cli(&config, dir.path(), &["customers", "forget", other], &[]).await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("orders: TO-1"), "{out}");
        if !accepted {
            smtp.reply_next(
                Stage::Data,
                Response::custom(451, "4.3.0 Try again later".into()),
            );
        }
        held.release();
        let want = if accepted { "done" } else { "cancelled" };
        let mut state = String::new();
        for _ in 0..150 {
            state = latest_state().await;
            if state == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(state, want, "accepted: {accepted}");
        let held_recipients: i64 = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM outbox_jobs WHERE order_no = 'TO-1' AND recipient IS NOT NULL)
                  + (SELECT COUNT(*) FROM delivery_attempts a JOIN outbox_jobs j ON j.id = a.job_id
                      WHERE j.order_no = 'TO-1' AND j.dedup_key LIKE 'resend:%' AND a.recipient IS NOT NULL) AS n",
        )
        .fetch_one(&pool)
        .await
        .expect("counted")
        .try_get("n")
        .expect("n");
        assert_eq!(
            held_recipients, 0,
            "accepted: {accepted}: no re-send keeps the address"
        );
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        customer_mails(&smtp).len(),
        3,
        "the accepted one arrived; the refused one was not sent again"
    );
    pool.close().await;
    drop(server);
}

/// `customers forget` while the customer's activation email is being sent: the SMTP server
/// holds it at DATA. The send under way cannot be called back, but what is written after the
/// erasure keeps no address: the delivered attempt's recipient is empty, and an attempt that
/// failed is cancelled when it comes round again rather than waiting for a registration
/// (and alerting operators that the customer never came).
async fn an_email_under_way_when_its_customer_is_forgotten_leaves_no_address_and_is_not_retried(
    backend: Backend,
) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let pool = pool_on(&db.url).await;

    // (order, customer, whether the held email is then accepted)
    for (order_no, customer, accepted) in [
        ("ERA-1", "ada.erased@traveller.example", true),
        ("ERA-2", "bo.erased@traveller.example", false),
    ] {
        register(&client, &server, order_no, customer).await;
        let held = smtp.hold_next_to(customer);
        assert_eq!(
            server
                .post(&client, completed(order_no, "8944500102198304826"))
                .await,
            200
        );
        held.arrived().await;
        let (code, out, err) = run_cli(
            &config,
            dir.path(),
            &["customers", "forget", customer, "--by", "dpo-kim"],
            &[],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("erased 1 customer(s)"), "{out}");
        if !accepted {
            smtp.reply_next(
                Stage::Data,
                Response::custom(451, "4.3.0 Try again later".into()),
            );
        }
        held.release();

        let job = format!(
            "SELECT j.state, j.last_error, (SELECT COUNT(*) FROM delivery_attempts a WHERE a.job_id = j.id) AS attempts
               FROM outbox_jobs j WHERE j.order_no = '{order_no}' AND j.kind = 'order_completed'"
        );
        let want = if accepted { "done" } else { "cancelled" };
        let mut state = (String::new(), None::<String>, 0i64);
        for _ in 0..150 {
            let row = sqlx::query(sqlx::AssertSqlSafe(job.clone()))
                .fetch_one(&pool)
                .await
                .expect("the job");
            state = (
                row.try_get("state").expect("state"),
                row.try_get("last_error").expect("last_error"),
                row.try_get("attempts").expect("attempts"),
            );
            if state.0 == want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(state.0, want, "{order_no}: {state:?}");
        if accepted {
            assert_eq!(state.2, 1, "{order_no}: one attempt, delivered: {state:?}");
        } else {
            assert_eq!(
                state.1.as_deref(),
                Some("the customer was erased"),
                "{order_no}: {state:?}"
            );
            assert_eq!(
                state.2, 1,
                "{order_no}: the failed attempt only, no other: {state:?}"
            );
        }
        let kept: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM delivery_attempts a JOIN outbox_jobs j ON j.id = a.job_id
              WHERE j.order_no = '{order_no}' AND a.recipient IS NOT NULL"
        )))
        .fetch_one(&pool)
        .await
        .expect("counted")
        .try_get("n")
        .expect("n");
        assert_eq!(kept, 0, "{order_no}: an attempt kept its recipient");
        let sent = customer_mails(&smtp)
            .iter()
            .filter(|m| m.to.iter().any(|t| t == customer))
            .count();
        assert_eq!(
            sent,
            usize::from(accepted),
            "{order_no}: only the send under way went out"
        );
    }
    // Nothing was raised about a customer who never registered.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !server.log_text().contains("customer never registered")
            && !server
                .log_text()
                .contains("waiting for the customer's registration"),
        "{}",
        server.log_text()
    );
    pool.close().await;
}
