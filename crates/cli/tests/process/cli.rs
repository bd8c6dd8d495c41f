use std::time::Duration;

use crate::harness::{edit_config, failed, run_cli, table, wait_until, write_config, Hook, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/t.db", dir.path().display()),
        &hook.url,
        "",
    );
    let mut server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    assert_eq!(server.post(&client, failed("TERM-1")).await, 200);
    wait_until(20, "the delivery", || !hook.completed().is_empty()).await;
    let pid = server.child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), server.child.wait())
        .await
        .expect("stops within 20 s")
        .expect("exit status");
    assert!(exit.success(), "exit {exit:?}\n{}", server.log_text());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log_text();
    assert!(
        log.contains("SIGTERM") && log.contains("dispatcher stopped") && log.contains("stopped"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_config_key_fails_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/t.db", dir.path().display()),
        "http://127.0.0.1:9/hook",
        "",
    );
    edit_config(&config, |doc| {
        table(doc, "server").insert("bnd".into(), "x".into());
    });
    let (code, _, err) = run_cli(&config, dir.path(), &["serve"], &[]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("server.bnd") && err.contains("unknown field"),
        "{err}"
    );

    let (code, _, err) = run_cli(
        &config,
        dir.path(),
        &["migrate"],
        &[("ESIM_COURIER__DATABASE__COLOUR", "blue")],
    )
    .await;
    assert_ne!(code, 0);
    assert!(
        err.contains("colour"),
        "an unknown key from the environment is named too: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        "sqlite:///nonexistent/dir/never.db",
        "http://127.0.0.1:9/hook",
        "",
    );
    let elsewhere = format!("sqlite://{}/from-env.db", dir.path().display());
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["migrate"],
        &[("ESIM_COURIER__DATABASE__URL", &elsewhere)],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("up to date"), "{out}");
    assert!(dir.path().join("from-env.db").exists());
    // A token given by the environment replaces the file's.
    let hook = Hook::start(0);
    let config = write_config(dir.path(), &elsewhere, &hook.url, "");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_esim-courier"))
        .args(["--config", config.to_str().expect("utf-8"), "serve"])
        .env("ESIM_COURIER__WEBHOOK__TOKENS", "rotated-token")
        .env("ESIM_COURIER__SERVER__BIND", "127.0.0.1:0")
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let stderr = child.stderr.take().expect("piped");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("starts")
            .expect("reads")
            .expect("a line");
        if let Some(rest) = line.split("webhook URL: http://").nth(1) {
            break rest.split('/').next().expect("addr").to_owned();
        }
    };
    let client = esim_courier_tests::http_client();
    let post = |token: &'static str| {
        let client = client.clone();
        let url = format!("http://{addr}/webhooks/order/{token}");
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(failed("ENV-1"))
                .send()
                .await
                .expect("answers")
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(crate::harness::WEBHOOK_TOKEN).await, 401);
    assert_eq!(post("rotated-token").await, 200);
    child.kill().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_inspect_orders_and_retry_dead_letters_from_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    hook.respond_with(404);
    let db = format!("sqlite://{}/ops.db", dir.path().display());
    let config = write_config(dir.path(), &db, &hook.url, "poll_interval = \"200ms\"");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let completed = r#"{"orderNo":"CLI-1","result":"COMPLETED","iccid":"8944500102198304826","lpa":"LPA:1$smdp.example.com$SECRET-MATCHING-ID"}"#;
    assert_eq!(server.post(&client, completed.to_owned()).await, 200);
    assert_eq!(server.post(&client, failed("CLI-2")).await, 200);

    let (code, out, err) = run_cli(&config, dir.path(), &["orders", "show", "CLI-1"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CLI-1") && out.contains("COMPLETED"), "{out}");
    assert!(
        out.contains("LPA:1$smdp.example.com$**************G-ID"),
        "activation code masked: {out}"
    );
    assert!(!out.contains("SECRET-MATCHING-ID"));
    let (code, _, err) = run_cli(&config, dir.path(), &["orders", "show", "NOPE"], &[]).await;
    assert_eq!(code, 2);
    assert!(err.contains("not known"), "{err}");

    // 404 is permanent: the failed-order job and the alert about it are both dead letters.
    let mut listing = String::new();
    for _ in 0..200 {
        let (code, out, _) = run_cli(&config, dir.path(), &["dead-letters", "list"], &[]).await;
        assert_eq!(code, 0);
        listing = out;
        if listing.lines().filter(|l| l.contains("-> hook")).count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let failed_job = listing
        .lines()
        .find(|l| l.contains("order_failed"))
        .unwrap_or_else(|| panic!("the failed order is a dead letter: {listing}"));
    assert!(failed_job.contains("HTTP 404"), "{failed_job}");
    assert!(listing.lines().any(|l| l.contains("alert")), "{listing}");
    let id = failed_job.split('\t').next().expect("an id").to_owned();

    // The endpoint is fixed; an operator retries that one job while the server runs.
    hook.respond_with(200);
    let (code, out, err) = run_cli(&config, dir.path(), &["dead-letters", "retry", &id], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 dead letter(s) queued again"), "{out}");
    wait_until(30, "the retried delivery", || !hook.completed().is_empty()).await;
    assert_eq!(hook.completed().len(), 1);
    let (code, _, _) = run_cli(&config, dir.path(), &["dead-letters", "retry", &id], &[]).await;
    assert_eq!(code, 2, "no longer a dead letter");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_show_never_prints_control_or_bidi_characters_from_provider_data_raw() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let db = format!("sqlite://{}/escapes.db", dir.path().display());
    let config = write_config(dir.path(), &db, &hook.url, "");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    // Clear screen, set the window title, an OSC-8 link, a carriage return and a
    // right-to-left override, in the package name and the ICCID.
    let package = "Japan 5GB\u{1b}[2J\u{1b}]0;pwned\u{7}\r\u{1b}]8;;https://evil.example\u{1b}\\ok\u{202e}gpj.exe";
    let body = serde_json::json!({
        "orderNo": "ESC-1", "result": "FAILED", "packageName": package,
        "iccid": "8944\u{1b}[31m", "currency": "2", "price": "1.00",
    });
    assert_eq!(server.post(&client, body.to_string()).await, 200);

    let raw = |s: &str| {
        s.chars()
            .filter(|c| *c != '\n' && (c.is_control() || *c == '\u{202e}'))
            .collect::<Vec<_>>()
    };
    let (code, out, err) = run_cli(&config, dir.path(), &["orders", "show", "ESC-1"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(raw(&out), Vec::<char>::new(), "nothing raw: {out:?}");
    assert!(
        out.contains("Japan 5GB\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\\u{d}"),
        "escaped visibly: {out}"
    );
    assert!(out.contains("\\u{202e}gpj.exe"), "{out}");

    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["orders", "show", "ESC-1", "--json"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(raw(&out), Vec::<char>::new(), "nothing raw: {out:?}");
    let order: serde_json::Value = serde_json::from_str(&out).expect("still JSON");
    assert_eq!(
        order["events"][0]["packageName"], package,
        "the JSON still holds the exact stored text"
    );
    drop(server);
}

/// The `command` field anywhere in a JSON body.
fn command_in(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => map
            .get("command")
            .and_then(|c| c.as_str().map(str::to_owned))
            .or_else(|| map.values().find_map(command_in)),
        serde_json::Value::Array(items) => items.iter().find_map(command_in),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_an_alert_offers_shows_a_hostile_order_and_runs_nothing_else() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let db = format!("sqlite://{}/quote.db", dir.path().display());
    let config = write_config(dir.path(), &db, &hook.url, "");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    // A COMPLETED order without an activation code raises an alert naming the order.
    let order_no = "--config=x; touch pwned $(touch pwned2) 'q'";
    let body = serde_json::json!({"orderNo": order_no, "result": "COMPLETED"});
    assert_eq!(server.post(&client, body.to_string()).await, 200);
    wait_until(20, "the alert", || !hook.completed().is_empty()).await;
    let alert: serde_json::Value = {
        let state = hook.state.lock().expect("lock");
        serde_json::from_str(state.bodies.values().next().expect("a body")).expect("JSON")
    };
    let command = command_in(&alert).unwrap_or_else(|| panic!("a command: {alert}"));
    assert!(
        command.starts_with("esim-courier orders show -- "),
        "{command}"
    );

    // Pasted into a shell as it is (with this build's binary and config), it shows the order.
    let pasted = command.replacen(
        "esim-courier",
        &format!(
            "'{}' --config '{}'",
            env!("CARGO_BIN_EXE_esim-courier"),
            config.display()
        ),
        1,
    );
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&pasted)
        .current_dir(dir.path())
        .output()
        .await
        .expect("sh runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{pasted}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(&format!("order {order_no}")), "{stdout}");
    assert!(!dir.path().join("pwned").exists(), "nothing else ran");
    assert!(!dir.path().join("pwned2").exists(), "nothing else ran");

    // An order number that looks like an option, after `--`.
    let (code, _, err) = run_cli(&config, dir.path(), &["orders", "show", "--", "-x"], &[]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("order -x is not known"), "{err}");
    drop(server);
}

esim_courier_tests::on_both_backends!(
    check_changes_nothing_in_the_database_and_says_what_the_next_start_will_do,
);

/// `check` is run before an upgrade, beside replicas of the older version: it migrates
/// nothing (they would refuse to start again), and says what the next start will do. It
/// refuses a database a newer version migrated, as a start would.
async fn check_changes_nothing_in_the_database_and_says_what_the_next_start_will_do(
    backend: esim_courier_tests::Backend,
) {
    use sqlx::{Connection, Row};
    let Some(db) = esim_courier_tests::test_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let config = write_config(dir.path(), &db.url, &hook.url, "");
    let migrations_table = |url: String| async move {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connects");
        let sql = if url.starts_with("sqlite:") {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE name = '_sqlx_migrations'"
        } else {
            "SELECT COUNT(*) AS n FROM pg_tables WHERE tablename = '_sqlx_migrations'"
        };
        let n: i64 = sqlx::query(sql)
            .fetch_one(&mut conn)
            .await
            .expect("read")
            .try_get("n")
            .expect("n");
        n
    };

    let (code, out, err) = run_cli(&config, dir.path(), &["check"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PASS store schema: ") && out.contains("migration(s) to apply"),
        "{out}"
    );
    assert!(
        out.contains("PASS encryption: checked once the database is migrated"),
        "{out}"
    );
    assert_eq!(
        migrations_table(db.url.clone()).await,
        0,
        "nothing migrated"
    );

    let (code, _, err) = run_cli(&config, dir.path(), &["migrate"], &[]).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run_cli(&config, dir.path(), &["check"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PASS store schema: up to date")
            && out.contains("PASS encryption: the configured keys are"),
        "{out}"
    );

    // A newer version migrated it since.
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connects");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, 'newer', TRUE, $2, 0)",
    )
    .bind(99_990_101_000_000_i64)
    .bind(vec![0_u8])
    .execute(&mut conn)
    .await
    .expect("a newer migration");
    let _ = conn.close().await;
    let (code, out, _) = run_cli(&config, dir.path(), &["check"], &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL store schema: the database was migrated by a newer esim-courier")
            && out.contains("99990101000000"),
        "{out}"
    );

    // Before an upgrade that migrates (the newest migration not yet applied), keys the next
    // start would refuse are refused now: after the migration no version could start.
    let mut conn = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connects");
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version >= 20261203000003")
        .execute(&mut conn)
        .await
        .expect("as before the newest migration");
    let _ = conn.close().await;
    let other = esim_courier_store::generate_key();
    edit_config(&config, |doc| {
        let mut section = toml::Table::new();
        section.insert("active_key".into(), "k9".into());
        section.insert("index_key".into(), other.clone().into());
        let mut keys = toml::Table::new();
        keys.insert("k9".into(), other.clone().into());
        section.insert("keys".into(), keys.into());
        doc.insert("encryption".into(), section.into());
    });
    let (code, out, _) = run_cli(&config, dir.path(), &["check"], &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("PASS store schema: 1 migration(s) to apply")
            && out.contains("FAIL encryption: cannot start with the configured encryption keys")
            && out.contains("encryption.index_key is not the key"),
        "{out}"
    );
}

/// A retention section `serve` refuses is refused by `check` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_interval_of_zero_is_refused_by_check_as_by_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/r.db", dir.path().display()),
        &hook.url,
        "",
    );
    edit_config(&config, |doc| {
        let mut retention = toml::Table::new();
        retention.insert("customer_data".into(), "30d".into());
        retention.insert("purge_interval".into(), "0s".into());
        doc.insert("retention".into(), retention.into());
    });
    let (code, out, _) = run_cli(&config, dir.path(), &["check"], &[]).await;
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("FAIL retention settings: retention.purge_interval must be more than 0s"),
        "{out}"
    );
    let (code, out, err) = run_cli(&config, dir.path(), &["serve"], &[]).await;
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        err.contains("retention.purge_interval must be more than 0s"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_makes_one_signed_provider_call_and_fails_on_a_refused_signature() {
    use esim_courier_tests::provider::FakeProvider;
    let provider = FakeProvider::start("reseller-7", "the-real-secret");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}/provider.db", dir.path().display());
    let config = write_config(dir.path(), &db, "http://127.0.0.1:9/hook", "");
    edit_config(&config, |doc| {
        crate::harness::set_provider(doc, &provider.base, "the-real-secret")
    });
    let (_, out, err) = run_cli(&config, dir.path(), &["check"], &[]).await;
    assert!(
        out.contains("PASS provider yoni: a signed call was accepted"),
        "{out}{err}"
    );

    // The secret given by the environment, as in production, and wrong.
    let (code, out, _) = run_cli(
        &config,
        dir.path(),
        &["check"],
        &[("ESIM_COURIER__PROVIDER__APP_SECRET", "a-wrong-secret")],
    )
    .await;
    assert_ne!(code, 0);
    let line = out
        .lines()
        .find(|l| l.contains("provider yoni"))
        .unwrap_or_else(|| panic!("a provider line: {out}"));
    assert!(
        line.starts_with("FAIL") && line.contains("refused our signature"),
        "{line}"
    );
    assert!(!out.contains("a-wrong-secret") && !out.contains("the-real-secret"));
    let refused: Vec<bool> = provider.requests().iter().map(|r| r.refused).collect();
    assert_eq!(refused, [false, true]);
}

/// A command whose output is piped into a reader that has gone (`| head`, a pager quit
/// early) ends quietly, as Unix tools do, not with a panic on the broken pipe.
#[test]
fn output_into_a_closed_pipe_ends_the_command_quietly() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_esim-courier"))
        .args(["keys", "generate"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    // The reader goes before the command writes a byte.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}
