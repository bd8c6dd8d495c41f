//! Black-box delivery tests: emails sent over real SMTP to a real SMTP server (mailin-embedded)
//! on 127.0.0.1, or written by the file transport, then parsed as a mail client would.

use esim_courier_core::{
    ActivationCode, CompletedOrder, Content, Currency, Customer, EmailAddress, FailedOrder, Locale,
    Money, Notification, Notifier, OrderNo,
};
use esim_courier_notify_email::{EmailConfig, EmailNotifier};
use std::net::TcpListener;

use esim_courier_test_support::smtp::{
    open_activation_email, read_qr, Response, SmtpServer, Stage,
};
use mail_parser::{MessageParser, MimeHeaders};

const LPA: &str = "LPA:1$rsp.demo$69C32E7Dxxxxxxxx";
const IOS: &str = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA%3A1%24rsp.demo%2469C32E7Dxxxxxxxx";
const ANDROID: &str =
    "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=LPA%3A1%24rsp.demo%2469C32E7Dxxxxxxxx";

// ---------------------------------------------------------------------------------------------
// The notifiers under test; the SMTP server and the mail-client checks are the shared ones of
// `esim_courier_test_support::smtp`.

fn notifier(audience_and_recipients: &str, transport: &str) -> EmailNotifier {
    let config: EmailConfig = toml::from_str(&format!(
        r#"
        from = "Wander eSIM <esim@wander.example>"
        reply_to = "help@wander.example"
        transport = {transport}
        {audience_and_recipients}
        "#
    ))
    .expect("valid section");
    EmailNotifier::new("email", config).expect("valid notifier")
}

fn customer_over_smtp(server: &SmtpServer) -> EmailNotifier {
    notifier(
        "audience = \"customer\"\ntemplate = \"activation\"",
        &format!(
            r#"{{ type = "smtp", url = "smtp://127.0.0.1:{}", timeout = "5s" }}"#,
            server.port
        ),
    )
}

/// Order B23120118131234, failed at the provider: what the operator tests send.
fn failed_order() -> Notification {
    Notification {
        key: "B23120118131234:failed".into(),
        content: Content::OrderFailed(FailedOrder {
            order_no: OrderNo::parse("B23120118131234").expect("order"),
            package_code: Some("CKH491".into()),
            package_name: Some("Malaysia, 1 Day, 1GB, 256kbps".into()),
            contract_price: Some(money("4.87")),
            received_at_ms: 1_714_555_800_000,
        }),
    }
}

fn money(amount: &str) -> Money {
    Money::parse(amount, Currency::Iso("SGD".into())).expect("price")
}

fn completed_order(locale: &str) -> Notification {
    let order = CompletedOrder {
        order_no: OrderNo::parse("B23120118131234").expect("order"),
        iccid: "89852000263355500023".into(),
        activation_code: ActivationCode::parse(LPA).expect("code"),
        package_code: Some("CKH491".into()),
        package_name: Some("Malaysia, 1 Day, 1GB, 256kbps".into()),
        contract_price: Some(money("4.87")),
        customer: Some(Customer {
            email: EmailAddress::parse("ana@traveller.example").expect("email"),
            name: Some("Ana Lim".into()),
            locale: Some(Locale::parse(locale).expect("locale")),
            retail_price: Some(money("12.90")),
        }),
        received_at_ms: 1_714_555_800_000,
    };
    Notification {
        key: "B23120118131234:89852000263355500023:customer-email".into(),
        content: Content::OrderCompleted(order),
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_activation_email_arrives_over_smtp_with_a_qr_code_that_scans_to_the_lpa() {
    let server = SmtpServer::start();
    let notifier = customer_over_smtp(&server);
    notifier
        .healthcheck()
        .await
        .expect("the server answers NOOP");

    let receipt = notifier
        .notify(&completed_order("en"))
        .await
        .expect("delivered");
    let rendered = notifier.render(&completed_order("en")).expect("renders");
    assert!(
        receipt
            .id
            .as_deref()
            .is_some_and(|id| id.starts_with(&rendered.message_id)),
        "{receipt:?}"
    );

    let mut received = server.received();
    assert_eq!(received.len(), 1);
    let mail = received.remove(0);
    assert_eq!(mail.from, "esim@wander.example");
    assert_eq!(mail.to, ["ana@traveller.example"]);
    let (html, text, png, message_id) = open_activation_email(&mail.data);

    assert_eq!(read_qr(&png), LPA);
    assert!(png.len() < 8 * 1024, "the QR PNG is {} bytes", png.len());
    assert_eq!(format!("<{message_id}>"), rendered.message_id);
    for (part, body) in [("HTML", &html), ("text", &text)] {
        for needle in [
            IOS,
            ANDROID,
            "rsp.demo",
            "69C32E7Dxxxxxxxx",
            "B23120118131234",
            "89852000263355500023",
            "12.90 SGD",
        ] {
            assert!(body.contains(needle), "the {part} part lacks {needle}");
        }
        assert!(
            !body.contains("4.87"),
            "the {part} part shows the contract price"
        );
    }
    let parsed = MessageParser::default()
        .parse(&mail.data)
        .expect("parsable");
    assert_eq!(
        parsed.subject(),
        Some("Your eSIM is ready: Malaysia, 1 Day, 1GB, 256kbps")
    );
    assert_eq!(
        parsed
            .reply_to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some("help@wander.example")
    );
}

#[tokio::test]
async fn a_chinese_email_survives_the_trip_intact() {
    let server = SmtpServer::start();
    let notifier = customer_over_smtp(&server);
    notifier
        .notify(&completed_order("zh-Hans-CN"))
        .await
        .expect("delivered");
    let mail = server.received().pop().expect("one message");
    let (html, text, png, _) = open_activation_email(&mail.data);
    assert_eq!(read_qr(&png), LPA);
    assert!(html.contains("<html lang=\"zh-Hans\" dir=\"ltr\">"));
    assert!(
        text.contains("激活码: 69C32E7Dxxxxxxxx") || text.contains("激活码：69C32E7Dxxxxxxxx"),
        "{text}"
    );
    let parsed = MessageParser::default()
        .parse(&mail.data)
        .expect("parsable");
    assert_eq!(
        parsed.subject(),
        Some("您的 eSIM 已就绪：Malaysia, 1 Day, 1GB, 256kbps")
    );
}

#[tokio::test]
async fn a_4xx_reply_is_transient_and_the_retry_carries_the_same_message_id() {
    let server = SmtpServer::start();
    let notifier = customer_over_smtp(&server);
    let notification = completed_order("en");

    server.reply_next(
        Stage::Rcpt,
        Response::custom(450, "4.7.1 Greylisted, please try again later".into()),
    );
    let error = notifier.notify(&notification).await.expect_err("450");
    assert!(error.is_transient(), "{error}");
    assert!(error.message().contains("450"), "{error}");
    assert!(
        !error.message().contains("69C32E7Dxxxxxxxx"),
        "no secret in errors"
    );
    assert!(server.received().is_empty());

    server.reply_next(
        Stage::Data,
        Response::custom(451, "4.3.0 Local error in processing".into()),
    );
    let error = notifier.notify(&notification).await.expect_err("451");
    assert!(error.is_transient(), "{error}");

    notifier
        .notify(&notification)
        .await
        .expect("the retry is delivered");
    let mail = server.received().pop().expect("one message");
    let (_, _, _, message_id) = open_activation_email(&mail.data);
    assert_eq!(
        format!("<{message_id}>"),
        notifier.render(&notification).expect("renders").message_id
    );
}

#[tokio::test]
async fn a_5xx_reply_is_permanent() {
    let server = SmtpServer::start();
    let notifier = customer_over_smtp(&server);

    server.reply_next(
        Stage::Rcpt,
        Response::custom(550, "5.1.1 No such user here".into()),
    );
    let error = notifier
        .notify(&completed_order("en"))
        .await
        .expect_err("550");
    assert!(!error.is_transient(), "{error}");
    assert!(error.message().contains("550"), "{error}");

    server.reply_next(
        Stage::Data,
        Response::custom(554, "5.7.1 Message rejected".into()),
    );
    let error = notifier
        .notify(&completed_order("en"))
        .await
        .expect_err("554");
    assert!(!error.is_transient(), "{error}");
    assert!(error.message().contains("554"), "{error}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn an_unreachable_server_is_transient() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let notifier = notifier(
        "audience = \"customer\"\ntemplate = \"activation\"",
        &format!(r#"{{ type = "smtp", url = "smtp://127.0.0.1:{port}", timeout = "2s" }}"#),
    );
    let error = notifier
        .notify(&completed_order("en"))
        .await
        .expect_err("nothing listens");
    assert!(error.is_transient(), "{error}");
    assert!(notifier
        .healthcheck()
        .await
        .expect_err("nothing listens")
        .is_transient());
}

#[tokio::test]
async fn an_operator_email_reaches_every_operator_with_the_contract_price() {
    let server = SmtpServer::start();
    let notifier = notifier(
        "audience = \"operator\"\ntemplate = \"order-failed\"\nto = [\"ops@wander.example\", \"Night Shift <night@wander.example>\"]",
        &format!(r#"{{ type = "smtp", url = "smtp://127.0.0.1:{}" }}"#, server.port),
    );
    let failed = failed_order();
    notifier.notify(&failed).await.expect("delivered");
    let mail = server.received().pop().expect("one message");
    assert_eq!(mail.to, ["ops@wander.example", "night@wander.example"]);
    let parsed = MessageParser::default()
        .parse(&mail.data)
        .expect("parsable");
    assert_eq!(
        parsed.subject(),
        Some("[Wander eSIM] Order B23120118131234 failed at the provider")
    );
    let root = parsed.root_part();
    assert!(
        root.is_content_type("multipart", "alternative"),
        "no image, so no related part"
    );
    let text = parsed.body_text(0).expect("text body");
    for needle in [
        "4.87 SGD",
        "2024-05-01T09:30:00Z",
        "esim-courier orders show -- B23120118131234",
        "CKH491",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    assert!(parsed.body_html(0).is_some_and(|h| h.contains("4.87 SGD")));
}

/// One operator address the company's server no longer has (`550 5.1.1`) does not keep the
/// alert from the others: it goes to each of them, the refused one is named (masked) in the
/// delivery's reply. Refused for every operator, it fails, transient if any refusal was.
#[tokio::test]
async fn an_operator_address_the_server_refuses_does_not_keep_the_email_from_the_others() {
    let server = SmtpServer::start();
    let notifier = notifier(
        "audience = \"operator\"\ntemplate = \"order-failed\"\nto = [\"ops@wander.example\", \"left@wander.example\", \"night@wander.example\"]",
        &format!(r#"{{ type = "smtp", url = "smtp://127.0.0.1:{}" }}"#, server.port),
    );
    let failed = failed_order();
    server.refuse(
        "left@wander.example",
        Response::custom(550, "5.1.1 <left@wander.example>: user unknown".into()),
    );
    let receipt = notifier
        .notify(&failed)
        .await
        .expect("delivered to the others");
    let reply = receipt.id.expect("the server's reply");
    assert!(
        reply.contains("for 2 of 3 recipients") && reply.contains("l***@wander.example: "),
        "{reply}"
    );
    assert!(reply.contains("550"), "{reply}");
    assert!(!reply.contains("left@"), "the address is masked: {reply}");
    let mails = server.received();
    let to: Vec<Vec<String>> = mails.iter().map(|m| m.to.clone()).collect();
    assert_eq!(to, [["ops@wander.example"], ["night@wander.example"]]);
    let ids: Vec<Option<String>> = mails
        .iter()
        .map(|m| esim_courier_test_support::smtp::message_id(&m.data))
        .collect();
    assert!(ids[0].is_some() && ids[0] == ids[1], "one message: {ids:?}");

    // Every operator refused: failed, and transient since one refusal was.
    server.refuse(
        "ops@wander.example",
        Response::custom(550, "5.1.1 user unknown".into()),
    );
    server.refuse(
        "night@wander.example",
        Response::custom(452, "4.2.2 mailbox full".into()),
    );
    let error = notifier.notify(&failed).await.expect_err("nobody got it");
    assert!(error.is_transient(), "{error}");
    assert!(
        error.message().contains("452") && error.message().contains("550"),
        "{error}"
    );
    assert!(server.received().is_empty());
}

/// The sends to each recipient after a refusal share the attempt's deadline: a recipient the
/// server holds past it counts as not reached, and what was accepted before is reported
/// delivered, not failed (a failure would be retried whole and reach the others twice).
#[tokio::test]
async fn a_recipient_held_past_the_deadline_does_not_undo_the_others_delivery() {
    let server = SmtpServer::start();
    let notifier = notifier(
        "audience = \"operator\"\ntemplate = \"order-failed\"\nto = [\"ops@wander.example\", \"left@wander.example\", \"night@wander.example\"]",
        &format!(
            r#"{{ type = "smtp", url = "smtp://127.0.0.1:{}", timeout = "5s" }}"#,
            server.port
        ),
    );
    server.refuse(
        "left@wander.example",
        Response::custom(550, "5.1.1 user unknown".into()),
    );
    let held = server.hold_next_to("night@wander.example");
    let failed = failed_order();
    // Within the dispatcher's timeout, of the transport's length by default, whose clock
    // started before the message was rendered (here 200 ms before).
    let dispatchers = std::time::Duration::from_millis(4800);
    let receipt = tokio::time::timeout(dispatchers, notifier.notify(&failed))
        .await
        .expect("answered within the dispatcher's timeout")
        .expect("delivered to the one reached");
    let reply = receipt.id.expect("the reply");
    assert!(
        reply.contains("for 1 of 3 recipients") && reply.contains("did not finish"),
        "{reply}"
    );
    held.release();
    let to: Vec<Vec<String>> = server.received().iter().map(|m| m.to.clone()).collect();
    assert_eq!(to, [["ops@wander.example"]]);
}

#[tokio::test]
async fn the_file_transport_writes_one_eml_per_message_into_a_folder_it_creates() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("data/mail");
    let notifier = notifier(
        "audience = \"customer\"\ntemplate = \"activation\"",
        &format!(
            r#"{{ type = "file", dir = {:?} }}"#,
            dir.display().to_string()
        ),
    );
    notifier.healthcheck().await.expect("writable");
    let receipt = notifier
        .notify(&completed_order("ja"))
        .await
        .expect("written");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("folder exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1);
    let file = &files[0];
    assert_eq!(file.extension().and_then(|e| e.to_str()), Some("eml"));
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name");
    assert!(
        receipt.id.as_deref().is_some_and(|id| id.ends_with(name)),
        "{receipt:?}"
    );
    let (html, _, png, _) = open_activation_email(&std::fs::read(file).expect("readable"));
    assert_eq!(read_qr(&png), LPA);
    assert!(html.contains("アクティベーションコード"));
}
