//! The operators' console as an operator meets it: a user added with the CLI logs in to the
//! console of a running `serve`, finds a traveller's order by their address, resends the
//! activation email (a second one arrives over SMTP, on record), and removing the user ends
//! the session.

use esim_courier_tests::console::{form_token, log_in};
use esim_courier_tests::{on_both_backends, test_db, Backend};
use reqwest::redirect::Policy;

use esim_courier_tests::smtp::{open_activation_email, read_qr, SmtpServer};

use crate::email::{order_json, register, to_customers, write_email_config};
use crate::harness::{edit_config, run_cli, run_cli_with_stdin, wait_until, Server};

on_both_backends!(an_operator_added_with_the_cli_logs_in_to_the_console_of_serve,);

async fn an_operator_added_with_the_cli_logs_in_to_the_console_of_serve(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let add = [
        "users",
        "add",
        "ana",
        "--role",
        "operator",
        "--password-stdin",
    ];
    let (code, _, err) = run_cli_with_stdin(&config, dir.path(), &add, "short\n").await;
    assert_ne!(code, 0);
    assert!(err.contains("at least 12 characters"), "{err}");
    let passphrase = "tea at the airport, gate 12";
    let (code, out, err) =
        run_cli_with_stdin(&config, dir.path(), &add, &format!("{passphrase}\n")).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("added console user ana (operator)"), "{out}");
    let (code, _, err) =
        run_cli_with_stdin(&config, dir.path(), &add, &format!("{passphrase}\n")).await;
    assert_ne!(code, 0);
    assert!(err.contains("exists already"), "{err}");
    let (code, out, _) = run_cli(&config, dir.path(), &["users", "list"], &[]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("ana\toperator\tadded "), "{out}");
    assert!(!out.contains(passphrase) && !err.contains(passphrase));

    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client_builder()
        .redirect(Policy::none())
        .build()
        .expect("a client");
    let overview = |cookie: Option<String>| {
        let mut req = client.get(format!("{}/admin/", server.base));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    assert_eq!(
        overview(None).await.expect("answers").status().as_u16(),
        303
    );

    let session = log_in(&client, &server.base, "ana", passphrase)
        .await
        .expect("logged in");
    let answer = overview(Some(session.clone())).await.expect("answers");
    assert_eq!(answer.status().as_u16(), 200);
    let body = answer.text().await.expect("HTML");
    assert!(
        body.contains("Logged in as <strong>ana</strong>") && body.contains("The last 24 hours"),
        "{body}"
    );
    assert!(server.log_text().contains("console login"), "logged");
    assert!(
        !server.log_text().contains(passphrase),
        "the password is never logged"
    );

    // A traveller writes that the email never came: find the order by their address, open it,
    // resend.
    let lpa = "LPA:1$smdp.example.com$K2-4KJ2T-1B6Q9X";
    register(&client, &server, "CONSOLE-1", "zoe@traveller.example", "en").await;
    let body = serde_json::json!({"orderNo": "CONSOLE-1", "result": "COMPLETED",
        "iccid": "8944500102198304826", "lpa": lpa, "packageName": "Japan", "price": "4.20", "currency": "2"});
    assert_eq!(server.post(&client, body.to_string()).await, 200);
    wait_until(30, "the activation email", || {
        to_customers(&smtp).len() == 1
    })
    .await;
    let found = client
        .get(format!(
            "{}/admin/orders?q=Zoe%40Traveller.example",
            server.base
        ))
        .header("cookie", session.clone())
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("HTML");
    assert!(
        found.contains(r#"href="/admin/orders/CONSOLE%2D1">CONSOLE-1<"#),
        "{found}"
    );
    let order_page = client
        .get(format!("{}/admin/orders/CONSOLE-1", server.base))
        .header("cookie", session.clone())
        .send()
        .await
        .expect("answers")
        .text()
        .await
        .expect("HTML");
    assert!(
        !order_page.contains("K2-4KJ2T-1B6Q9X"),
        "the code is masked"
    );
    let csrf = form_token(&order_page).expect("the session's token");
    let resent = client
        .post(format!("{}/admin/orders/CONSOLE-1/resend", server.base))
        .header("cookie", session.clone())
        .form(&[("csrf_token", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .expect("answers");
    assert_eq!(resent.status().as_u16(), 200);
    wait_until(30, "the second activation email", || {
        to_customers(&smtp).len() == 2
    })
    .await;
    let mails = to_customers(&smtp);
    assert_eq!(mails[1].to, ["zoe@traveller.example".to_owned()]);
    let (_, _, png, _) = open_activation_email(&mails[1].data);
    assert_eq!(read_qr(&png), lpa);
    let (out, order) = order_json(&config, dir.path(), "CONSOLE-1").await;
    let actions = order["operatorActions"].as_array().expect("actions");
    assert!(
        actions
            .iter()
            .any(|a| a["action"] == "resend" && a["actor"] == "ana"),
        "{out}"
    );

    let (code, out, _) = run_cli(&config, dir.path(), &["users", "remove", "ana"], &[]).await;
    assert_eq!(code, 0);
    assert!(out.contains("their sessions are ended"), "{out}");
    assert_eq!(
        overview(Some(session))
            .await
            .expect("answers")
            .status()
            .as_u16(),
        303
    );
    drop(server);
}

/// Behind a proxy that terminates TLS, esim-courier is reached over plain HTTP: its cookies
/// are `Secure` when `[console] secure_cookies` says so, and only then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_tls_proxy_the_consoles_cookies_are_secure_when_configured() {
    let smtp = SmtpServer::start();
    for secure in [None, Some(true)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let db_url = format!("sqlite://{}/data/esim-courier.db", dir.path().display());
        let config = write_email_config(dir.path(), &db_url, &smtp.url(), "");
        if let Some(secure) = secure {
            edit_config(&config, |doc| {
                let mut console = toml::Table::new();
                console.insert("secure_cookies".into(), secure.into());
                doc.insert("console".into(), console.into());
            });
        }
        let server = Server::start(&config, dir.path()).await;
        let res = esim_courier_tests::http_client()
            .get(format!("{}/admin/login", server.base))
            .send()
            .await
            .expect("answers");
        assert_eq!(res.status().as_u16(), 200);
        let cookie = res
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("the login form's cookie")
            .to_owned();
        assert_eq!(
            cookie.split(';').any(|a| a.trim() == "Secure"),
            secure == Some(true),
            "{secure:?}: {cookie}"
        );
        drop(server);
    }
}
