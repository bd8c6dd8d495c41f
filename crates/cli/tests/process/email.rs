//! The activation email end to end: webhook and registration in, over real SMTP out, parsed
//! as a mail client would.

use std::path::Path;
use std::time::Duration;

use esim_courier_tests::smtp::{
    open_activation_email, read_qr, readable_text, Response, SmtpServer, Stage,
};
use serde_json::json;

use esim_courier_tests::{on_both_backends, test_db, Backend};

use crate::harness::{run_cli, wait_until, Server, API_TOKEN, WEBHOOK_TOKEN};

on_both_backends!(
    each_order_gets_exactly_one_activation_email_whichever_comes_first,
    a_4xx_smtp_reply_is_retried_and_a_5xx_is_dead_lettered_with_an_operator_email,
    failed_orders_reach_operators_as_grouped_emails_over_smtp,
    check_fails_clearly_on_a_broken_template_and_an_unreachable_smtp_server,
    resend_sends_the_activation_email_again_on_record,
    the_email_speaks_the_customers_language_and_orders_show_says_which,
    preview_writes_every_locale_for_a_browser,
);

const LPA: &str = "LPA:1$smdp.example.com$K2-4KJ2T-1B6Q9X";

fn completed(order_no: &str, iccid: &str) -> String {
    json!({
        "orderNo": order_no, "result": "COMPLETED", "iccid": iccid, "lpa": LPA,
        "packageCode": "YN26", "packageName": "Malaysia, 1 Day, 1GB, 256kbps", "price": "9.99", "currency": "4"
    })
    .to_string()
}

/// A server whose customer and operator emails go over SMTP to `smtp_url`.
pub(crate) fn write_email_config(
    dir: &Path,
    db: &str,
    smtp_url: &str,
    extra_customer: &str,
) -> std::path::PathBuf {
    let path = dir.join("esim-courier.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
bind = "127.0.0.1:0"
workers = 1
[database]
url = "{db}"
{encryption}
[webhook]
tokens = ["{WEBHOOK_TOKEN}"]
[api]
tokens = ["{API_TOKEN}"]
[dispatcher]
poll_interval = "200ms"

[notifiers.customer-email]
type = "email"
audience = "customer"
template = "activation"
from = "eSIM Shop <esim@shop.example>"
transport = {{ type = "smtp", url = "{smtp_url}", timeout = "10s" }}
retry = {{ initial_delay = "200ms", max_delay = "1s" }}
{extra_customer}

[notifiers.ops-email]
type = "email"
audience = "operator"
template = "alert"
from = "esim-courier <courier@shop.example>"
to = ["ops@shop.example"]
transport = {{ type = "smtp", url = "{smtp_url}", timeout = "10s" }}
group_window = "1s"

[[routes]]
when = "COMPLETED"
notify = ["customer-email"]
[[routes]]
when = "FAILED"
notify = ["ops-email"]
[[routes]]
when = "alert"
notify = ["ops-email"]
"#,
            encryption = crate::harness::encryption_for(db)
        ),
    )
    .expect("config written");
    path
}

pub(crate) async fn register(
    client: &reqwest::Client,
    server: &Server,
    order_no: &str,
    email: &str,
    locale: &str,
) {
    let res = client
        .put(format!("{}/api/v1/orders/{order_no}", server.base))
        .bearer_auth(API_TOKEN)
        .json(&json!({"email": email, "name": "Ana", "locale": locale, "price": "14.90", "currency": "USD"}))
        .send()
        .await
        .expect("answers");
    assert!(res.status().is_success(), "{}", res.status());
}

/// `orders show ORDER_NO --json`: the text printed and the JSON it holds.
pub(crate) async fn order_json(
    config: &Path,
    dir: &Path,
    order_no: &str,
) -> (String, serde_json::Value) {
    let (code, out, err) = run_cli(config, dir, &["orders", "show", order_no, "--json"], &[]).await;
    assert_eq!(code, 0, "{err}");
    let order = serde_json::from_str(&out).expect("JSON");
    (out, order)
}

pub(crate) fn to_customers(smtp: &SmtpServer) -> Vec<esim_courier_tests::smtp::Received> {
    smtp.peek()
        .into_iter()
        .filter(|m| !m.to.iter().any(|t| t.contains("ops@")))
        .collect()
}

async fn each_order_gets_exactly_one_activation_email_whichever_comes_first(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();

    // A: the webhook first (the email waits), then the registration.
    assert_eq!(
        server
            .post(&client, completed("MAIL-A", "8944500102198304826"))
            .await,
        200
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        to_customers(&smtp).is_empty(),
        "nothing is sent before the customer is known"
    );
    register(&client, &server, "MAIL-A", "ana@traveller.example", "ja").await;
    // B: the registration first, then the provider's three attempts.
    register(&client, &server, "MAIL-B", "ben@traveller.example", "en").await;
    for _ in 0..3 {
        assert_eq!(
            server
                .post(&client, completed("MAIL-B", "89852000000000000001"))
                .await,
            200
        );
    }
    wait_until(30, "two activation emails", || {
        to_customers(&smtp).len() >= 2
    })
    .await;
    // A repeated registration and more retries send nothing more.
    register(&client, &server, "MAIL-A", "ana@traveller.example", "ja").await;
    assert_eq!(
        server
            .post(&client, completed("MAIL-A", "8944500102198304826"))
            .await,
        200
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut mails = to_customers(&smtp);
    assert_eq!(mails.len(), 2, "exactly one email per order");
    // The two are sent concurrently: either may arrive first.
    mails.sort_by(|a, b| a.to.cmp(&b.to));

    let mut ids = Vec::new();
    for (mail, (who, order, iccid)) in mails.iter().zip([
        ("ana@traveller.example", "MAIL-A", "8944500102198304826"),
        ("ben@traveller.example", "MAIL-B", "89852000000000000001"),
    ]) {
        assert_eq!(mail.to, [who.to_owned()]);
        let (html, text, png, message_id) = open_activation_email(&mail.data);
        assert_eq!(
            read_qr(&png),
            LPA,
            "the QR code scans to the exact activation code"
        );
        for part in [&html, &text] {
            assert!(
                part.contains("smdp.example.com") && part.contains("K2-4KJ2T-1B6Q9X"),
                "manual codes"
            );
            assert!(
                part.contains(order) && part.contains(iccid),
                "order details"
            );
            assert!(
                part.contains("https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA%3A1%24smdp.example.com%24K2-4KJ2T-1B6Q9X"),
                "iPhone link"
            );
            assert!(
                part.contains(
                    "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=LPA%3A1%24"
                ),
                "Android link"
            );
            assert!(
                part.contains("14.90"),
                "the retail price from the registration"
            );
            assert!(!part.contains("9.99"), "never the contract price");
        }
        assert!(html.len() < 100 * 1024);
        ids.push(message_id);
    }
    assert_ne!(ids[0], ids[1]);
    drop(server);
}

async fn a_4xx_smtp_reply_is_retried_and_a_5xx_is_dead_lettered_with_an_operator_email(
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

    smtp.reply_next(
        Stage::Rcpt,
        Response::custom(
            450,
            "4.2.1 <ana@traveller.example>: Mailbox busy, try later".into(),
        ),
    );
    register(&client, &server, "MAIL-4XX", "ana@traveller.example", "en").await;
    assert_eq!(
        server
            .post(&client, completed("MAIL-4XX", "8944500102198304826"))
            .await,
        200
    );
    wait_until(30, "the retried email", || !to_customers(&smtp).is_empty()).await;
    // The outcome is recorded just after the server takes the email: poll the record.
    let mut order = serde_json::Value::Null;
    for _ in 0..100 {
        let (code, out, err) = run_cli(
            &config,
            dir.path(),
            &["orders", "show", "MAIL-4XX", "--json"],
            &[],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        order = serde_json::from_str(&out).expect("JSON");
        if order["notifications"][0]["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let attempts = order["notifications"][0]["attempt_log"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let outcomes: Vec<&str> = attempts
        .iter()
        .filter_map(|a| a["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["transient", "delivered"]);
    assert!(
        attempts[0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("450") && e.contains("<a***@traveller.example>")),
        "the server's reply is kept with the address masked: {attempts:?}"
    );

    smtp.reply_next(
        Stage::Rcpt,
        Response::custom(550, "5.1.1 <nobody@traveller.example>: No such user".into()),
    );
    register(
        &client,
        &server,
        "MAIL-5XX",
        "nobody@traveller.example",
        "en",
    )
    .await;
    assert_eq!(
        server
            .post(&client, completed("MAIL-5XX", "89852000000000000001"))
            .await,
        200
    );
    wait_until(30, "the operators' dead-letter email", || {
        smtp.peek()
            .iter()
            .any(|m| m.to.iter().any(|t| t.contains("ops@")))
    })
    .await;
    let ops: Vec<_> = smtp
        .peek()
        .into_iter()
        .filter(|m| m.to.iter().any(|t| t.contains("ops@")))
        .collect();
    let body = readable_text(&ops[0].data);
    assert!(
        body.contains("MAIL-5XX") && body.contains("dead-letters retry"),
        "the alert names the order and the command"
    );
    let (code, out, _) = run_cli(&config, dir.path(), &["dead-letters", "list"], &[]).await;
    assert_eq!(code, 0);
    assert!(out.contains("MAIL-5XX") && out.contains("550"), "{out}");
    // The replies named the customers; what operators read shows them masked only.
    for (what, text) in [
        ("the dead-letter list", out.as_str()),
        ("the alert", body.as_str()),
        ("the log", &server.log_text()),
    ] {
        for address in ["ana@traveller.example", "nobody@traveller.example"] {
            assert!(!text.contains(address), "{what} holds {address}: {text}");
        }
    }
    assert!(body.contains("n***@traveller.example"), "{body}");
    assert_eq!(
        to_customers(&smtp).len(),
        1,
        "the refused address got nothing, and no retry was made"
    );
    drop(server);
}

async fn failed_orders_reach_operators_as_grouped_emails_over_smtp(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    let posts = (0..40).map(|i| server.post(&client, crate::harness::failed(&format!("DOWN-{i}"))));
    assert!(futures_util::future::join_all(posts)
        .await
        .iter()
        .all(|s| *s == 200));
    let named = || {
        let mut orders = std::collections::HashSet::new();
        for mail in smtp.peek() {
            let text = readable_text(&mail.data);
            for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
                if token.starts_with("DOWN-") {
                    orders.insert(token.to_owned());
                }
            }
        }
        orders.len()
    };
    wait_until(30, "all 40 orders in operator emails", || named() == 40).await;
    let emails = smtp.peek().len();
    assert!(emails <= 4, "{emails} emails for 40 failed orders");
    let subjects: Vec<String> = smtp
        .peek()
        .iter()
        .map(|m| {
            readable_text(&m.data)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        subjects.iter().any(|s| s.contains("orders failed")),
        "{subjects:?}"
    );
    drop(server);
}

async fn check_fails_clearly_on_a_broken_template_and_an_unreachable_smtp_server(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let good = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let (code, out, err) = run_cli(&good, dir.path(), &["check"], &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.lines().all(|l| l.starts_with("PASS")), "{out}");
    assert!(out.contains("PASS notifier customer-email"), "{out}");

    // An SMTP server that is not there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let unreachable =
        write_email_config(dir.path(), &db.url, &format!("smtp://127.0.0.1:{port}"), "");
    let (code, out, _) = run_cli(&unreachable, dir.path(), &["check"], &[]).await;
    assert_ne!(code, 0);
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL notifier customer-email")),
        "{out}"
    );

    // A folder in the layout before Fluent: check says what to move where.
    let old = dir.path().join("templates/activation/en");
    std::fs::create_dir_all(&old).expect("dir");
    std::fs::write(old.join("subject.hbs"), "Your eSIM").expect("write");
    let with_old = write_email_config(
        dir.path(),
        &db.url,
        &smtp.url(),
        &format!(
            "templates_dir = \"{}\"",
            dir.path().join("templates").display()
        ),
    );
    let (code, out, err) = run_cli(&with_old, dir.path(), &["check"], &[]).await;
    assert_ne!(code, 0);
    let said = format!("{out}{err}");
    assert!(
        said.contains("no longer have a folder of markup per locale")
            && said.contains("activation/en.ftl")
            && said.contains("activation/body.html.hbs"),
        "{said}"
    );
    std::fs::remove_dir_all(&old).expect("rm");

    // A template override with a typo: strict mode refuses the unknown variable.
    let templates = dir.path().join("templates/activation");
    std::fs::write(templates.join("subject.hbs"), "Your eSIM {{pakage_name}}").expect("write");
    let broken = write_email_config(
        dir.path(),
        &db.url,
        &smtp.url(),
        &format!(
            "templates_dir = \"{}\"",
            dir.path().join("templates").display()
        ),
    );
    let (code, out, err) = run_cli(&broken, dir.path(), &["check"], &[]).await;
    assert_ne!(code, 0);
    assert!(
        out.contains("FAIL") && out.contains("customer-email"),
        "{out}\n{err}"
    );
    assert!(
        out.contains("pakage_name") || out.contains("activation"),
        "the failure names what is wrong: {out}"
    );
}

async fn resend_sends_the_activation_email_again_on_record(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    register(&client, &server, "MAIL-R", "ana@traveller.example", "en").await;
    assert_eq!(
        server
            .post(&client, completed("MAIL-R", "8944500102198304826"))
            .await,
        200
    );
    wait_until(30, "the activation email", || {
        to_customers(&smtp).len() == 1
    })
    .await;

    let (code, out, err) = run_cli(&config, dir.path(), &["resend", "MAIL-R"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("re-send of order MAIL-R to a***@traveller.example queued"),
        "it says to whom, masked: {out}"
    );
    wait_until(30, "the re-sent email", || to_customers(&smtp).len() == 2).await;
    let mails = to_customers(&smtp);
    let (_, _, png, first_id) = open_activation_email(&mails[0].data);
    let (_, _, _, second_id) = open_activation_email(&mails[1].data);
    assert_eq!(read_qr(&png), LPA);
    assert_ne!(first_id, second_id, "a deliberate re-send is a new message");
    let (_, order) = order_json(&config, dir.path(), "MAIL-R").await;
    assert_eq!(
        order["notifications"].as_array().map(Vec::len),
        Some(2),
        "both sends are on record"
    );

    // The shop cannot move the delivered code to another address...
    let res = client
        .put(format!("{}/api/v1/orders/MAIL-R", server.base))
        .bearer_auth(API_TOKEN)
        .json(&json!({"email": "new@traveller.example"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 409);
    // ...an operator can, deliberately and on record.
    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &[
            "resend",
            "MAIL-R",
            "--to",
            "new@traveller.example",
            "--by",
            "support-jo",
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("to n***@traveller.example queued"), "{out}");
    wait_until(30, "the email to the new address", || {
        to_customers(&smtp).len() == 3
    })
    .await;
    let third = &to_customers(&smtp)[2];
    assert!(
        third.to.len() == 1 && third.to[0].contains("new@traveller.example"),
        "{:?}",
        third.to
    );
    let (out, order) = order_json(&config, dir.path(), "MAIL-R").await;
    let recipients: Vec<&str> = order["notifications"]
        .as_array()
        .expect("notifications")
        .iter()
        .filter_map(|j| j["attempt_log"][0]["recipient"].as_str())
        .collect();
    assert_eq!(
        recipients,
        [
            "a***@traveller.example",
            "a***@traveller.example",
            "n***@traveller.example"
        ],
        "every attempt records its recipient, masked"
    );
    assert_eq!(
        order["customer"]["email"], "ana@traveller.example",
        "the registration is unchanged"
    );
    let actions = order["operatorActions"].as_array().expect("audit log");
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert!(actions.iter().all(|a| a["action"] == "resend"));
    assert!(!actions[0]["actor"].as_str().unwrap_or_default().is_empty());
    assert_eq!(actions[1]["actor"], "support-jo");
    assert!(
        !out.contains("new@traveller.example"),
        "addresses are masked in the delivery log and the audit log: {out}"
    );
    let (code, _, _) = run_cli(&config, dir.path(), &["resend", "NO-SUCH-ORDER"], &[]).await;
    assert_eq!(code, 2);
    drop(server);
}

async fn the_email_speaks_the_customers_language_and_orders_show_says_which(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();

    // The shop passes on the browser's Accept-Language: Dutch is not offered, French is.
    register(
        &client,
        &server,
        "LANG-1",
        "ana@traveller.example",
        "nl-BE, fr-BE;q=0.8, en;q=0.5",
    )
    .await;
    assert_eq!(
        server
            .post(&client, completed("LANG-1", "8944500102198304826"))
            .await,
        200
    );
    wait_until(30, "the activation email", || {
        !to_customers(&smtp).is_empty()
    })
    .await;
    let mails = to_customers(&smtp);
    let (html, text, png, _) = open_activation_email(&mails[0].data);
    assert!(
        html.contains(r#"<html lang="fr" dir="ltr">"#),
        "{html:.400}"
    );
    assert!(html.contains("Votre eSIM est prête") && text.contains("Code d'activation"));
    assert_eq!(read_qr(&png), LPA);

    let (out, order) = order_json(&config, dir.path(), "LANG-1").await;
    let attempt = &order["notifications"][0]["attempt_log"][0];
    assert_eq!(attempt["outcome"], "delivered", "{out}");
    assert_eq!(attempt["locale"], "fr", "{out}");
    assert_eq!(
        order["customer"]["locale"], "nl-BE, fr-BE;q=0.8, en;q=0.5",
        "{out}"
    );
    let (code, shown, err) = run_cli(&config, dir.path(), &["orders", "show", "LANG-1"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        shown.contains("delivered to a***@traveller.example in fr"),
        "{shown}"
    );
    drop(server);
}

async fn preview_writes_every_locale_for_a_browser(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_email_config(dir.path(), &db.url, &smtp.url(), "");
    let payload = dir.path().join("completed.json");
    std::fs::write(&payload, completed("PREVIEW-1", "8944500102198304826")).expect("write");
    let out = dir.path().join("preview");
    let args = [
        "preview",
        "--payload",
        payload.to_str().expect("utf-8"),
        "--locale",
        "all",
        "--out",
        out.to_str().expect("utf-8"),
    ];
    let (code, printed, err) = run_cli(&config, dir.path(), &args, &[]).await;
    assert_eq!(code, 0, "{printed}{err}");
    let locales = [
        "en", "zh-Hans", "zh-Hant", "ja", "ko", "ms", "id", "th", "vi", "es", "fr", "de", "pt-BR",
        "tr", "ar",
    ];
    for locale in locales {
        let html = std::fs::read_to_string(out.join(format!("PREVIEW-1-{locale}.html")))
            .unwrap_or_else(|e| panic!("{locale}: {e}\n{printed}"));
        assert!(html.contains(&format!("lang=\"{locale}\"")), "{locale}");
        let qr = format!("PREVIEW-1-{locale}-qr-code.png");
        assert!(
            html.contains(&format!("src=\"{qr}\"")),
            "{locale}: the QR beside it"
        );
        assert!(
            !html.contains("cid:"),
            "{locale}: nothing a browser cannot show"
        );
        assert_eq!(read_qr(&std::fs::read(out.join(&qr)).expect("png")), LPA);
        let eml = std::fs::read(out.join(format!("PREVIEW-1-{locale}.eml"))).expect("eml");
        let (sent_html, _, png, _) = open_activation_email(&eml);
        assert!(sent_html.contains("cid:"), "{locale}: the .eml is as sent");
        assert_eq!(read_qr(&png), LPA);
    }
    assert_eq!(
        printed.matches("wrote ").count(),
        2 * locales.len(),
        "{printed}"
    );
}
