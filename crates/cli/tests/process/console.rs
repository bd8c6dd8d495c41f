//! The operators' console as an operator meets it: a user added with the CLI logs in to the
//! console of a running `serve`, and removing the user ends the session.

use esim_courier_tests::{on_both_backends, test_db, Backend};
use reqwest::redirect::Policy;

use crate::harness::{run_cli, run_cli_with_stdin, write_config, Server};

on_both_backends!(an_operator_added_with_the_cli_logs_in_to_the_console_of_serve,);

async fn an_operator_added_with_the_cli_logs_in_to_the_console_of_serve(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(dir.path(), &db.url, "http://127.0.0.1:9/unused", "");
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

    let page = client
        .get(format!("{}/admin/login", server.base))
        .send()
        .await
        .expect("answers");
    let csrf_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|c| c.starts_with("esim_courier_login_csrf="))
        })
        .expect("the login form's cookie")
        .to_owned();
    let html = page.text().await.expect("HTML");
    let token = html
        .split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the form's token")
        .to_owned();
    let login = client
        .post(format!("{}/admin/login", server.base))
        .header("cookie", csrf_cookie)
        .form(&[
            ("username", "ana"),
            ("password", passphrase),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .expect("answers");
    assert_eq!(login.status().as_u16(), 303);
    let session = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|c| c.starts_with("esim_courier_session="))
        })
        .expect("a session")
        .to_owned();
    let answer = overview(Some(session.clone())).await.expect("answers");
    assert_eq!(answer.status().as_u16(), 200);
    let body = answer.text().await.expect("HTML");
    assert!(body.contains("ana") && body.contains("Outbox"), "{body}");
    assert!(server.log_text().contains("console login"), "logged");
    assert!(
        !server.log_text().contains(passphrase),
        "the password is never logged"
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
