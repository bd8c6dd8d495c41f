//! The Teams notifier against a local stand-in for a Teams Workflows webhook, which refuses
//! what Teams refuses (a body over 28 KB, anything but a message with one Adaptive Card).

use std::time::Duration;

use esim_courier_core::testing::failed_order;
use esim_courier_core::{Alert, Content, Notification, Notifier, NotifyError};
use esim_courier_notify_teams::{TeamsConfig, TeamsNotifier};
use esim_courier_test_support::http_peer::{unreachable_base, Reply};
use esim_courier_test_support::teams::{workflows_webhook, MAX_BODY};
use secrecy::SecretString;
use serde_json::Value;

const SECRET_PATH: &str = "/workflows/0SECRETFLOW/triggers/manual/paths/invoke";
const SECRET_QUERY: &str = "api-version=2016-06-01&sig=SECRETSIGxyz";

fn notifier(base: &str) -> TeamsNotifier {
    TeamsNotifier::new(
        "ops-teams",
        TeamsConfig {
            webhook_url: SecretString::from(format!("{base}{SECRET_PATH}?{SECRET_QUERY}")),
            timeout: Duration::from_secs(5),
        },
    )
    .expect("a valid config")
}

/// Every text of a card: text blocks and facts, one per line.
fn texts(message: &Value) -> String {
    let mut out = String::new();
    for block in message["attachments"][0]["content"]["body"]
        .as_array()
        .expect("a card body")
    {
        if let Some(t) = block["text"].as_str() {
            out.push_str(t);
            out.push('\n');
        }
        for fact in block["facts"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "{}: {}\n",
                fact["title"].as_str().unwrap_or_default(),
                fact["value"].as_str().unwrap_or_default()
            ));
        }
    }
    out
}

fn assert_secret_absent(e: &NotifyError) {
    for piece in ["0SECRETFLOW", "SECRETSIGxyz"] {
        assert!(!e.to_string().contains(piece), "{e}");
        assert!(!format!("{e:?}").contains(piece), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_order_arrives_as_one_adaptive_card_with_its_facts_and_command() {
    let teams = workflows_webhook();
    let receipt = notifier(&teams.base)
        .notify(&failed_order("B2405011234"))
        .await
        .expect("delivered");
    assert_eq!(receipt.id.as_deref(), Some("HTTP 202"));

    let received = teams.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, SECRET_PATH);
    let card = &received[0].body["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["body"][0]["color"], "Attention");
    let text = texts(&received[0].body);
    assert!(
        text.contains("Order B2405011234 failed at the provider"),
        "{text}"
    );
    assert!(text.contains("Order: B2405011234"), "{text}");
    assert!(
        text.contains("Package: Japan 5GB 30 days \\(JP-5GB-30D\\)"),
        "{text}"
    );
    assert!(text.contains("Contract price: 4.20 USD"), "{text}");
    assert!(
        text.contains("esim-courier orders show -- B2405011234"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_text_in_an_alert_cannot_make_links_or_formatting() {
    let teams = workflows_webhook();
    let alert = Notification {
        key: "alert-1".into(),
        content: Content::Alert(Alert::dead_letter(
            Some("B*7*"),
            "customer-email failed: see [here](https://evil.example) now".into(),
            42,
            1_714_555_800_000,
        )),
    };
    notifier(&teams.base).notify(&alert).await.expect("sent");
    let text = texts(&teams.received()[0].body);
    assert!(text.contains(r"\[here\]\(https://evil.example\)"), "{text}");
    assert!(!text.contains("[here](https"), "{text}");
    assert!(text.contains(r"Order: B\*7\*"), "{text}");
    assert!(
        text.contains("esim-courier dead-letters retry 42"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_of_300_failed_orders_is_one_card_within_the_limit_naming_all_of_them() {
    let teams = workflows_webhook();
    let orders: Vec<String> = (0..300).map(|i| format!("B24050112{i:04}")).collect();
    let digest = Notification {
        key: "digest-1".into(),
        content: Content::Digest(orders.iter().map(|o| failed_order(o)).collect()),
    };
    let receipt = notifier(&teams.base).notify(&digest).await.expect("sent");
    assert_eq!(receipt.id.as_deref(), Some("HTTP 202"));
    let received = teams.received();
    assert_eq!(received.len(), 1, "one message");
    assert!(
        received[0].raw.len() <= MAX_BODY,
        "{} bytes",
        received[0].raw.len()
    );
    let text = texts(&received[0].body);
    assert!(text.contains("300 orders failed"), "{text}");
    for order in &orders {
        assert!(text.contains(order.as_str()), "{order} is named");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_too_large_for_one_message_is_several_each_within_the_limit() {
    let teams = workflows_webhook();
    let orders: Vec<String> = (0..6000)
        .map(|i| format!("B2405011234567890{i:05}"))
        .collect();
    let digest = Notification {
        key: "digest-2".into(),
        content: Content::Digest(orders.iter().map(|o| failed_order(o)).collect()),
    };
    let receipt = notifier(&teams.base).notify(&digest).await.expect("sent");
    let received = teams.received();
    assert!(received.len() > 1, "several messages");
    assert_eq!(
        receipt.id,
        Some(format!("HTTP 202 ({} messages)", received.len()))
    );
    let all: String = received.iter().map(|r| texts(&r.body)).collect();
    for r in &received {
        assert!(r.raw.len() <= MAX_BODY, "{} bytes", r.raw.len());
    }
    for order in &orders {
        assert!(all.contains(order.as_str()), "{order} is named");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_whether_a_retry_can_help_and_never_show_the_url() {
    let teams = workflows_webhook();
    let teams_notifier = notifier(&teams.base);
    teams.then(Reply::new(429, "").header("retry-after", "7"));
    let e = teams_notifier
        .notify(&failed_order("B1"))
        .await
        .expect_err("429");
    assert!(e.is_transient());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_secret_absent(&e);

    teams.then(Reply::new(
        502,
        r#"{"error":{"code":"BadGateway","message":"x"}}"#,
    ));
    let e = teams_notifier
        .notify(&failed_order("B1"))
        .await
        .expect_err("502");
    assert!(
        e.is_transient() && e.message().contains("BadGateway"),
        "{e}"
    );

    for status in [400, 401, 404] {
        teams.then(Reply::new(
            status,
            r#"{"error":{"code":"WorkflowTriggerIsNotEnabled","message":"x"}}"#,
        ));
        let e = teams_notifier
            .notify(&failed_order("B1"))
            .await
            .expect_err("refused");
        assert!(!e.is_transient(), "{status} is permanent");
        assert!(e.message().contains(&status.to_string()), "{e}");
        assert_secret_absent(&e);
    }

    let gone = notifier(&unreachable_base());
    let e = gone.notify(&failed_order("B1")).await.expect_err("refused");
    assert!(e.is_transient());
    assert_secret_absent(&e);
    assert!(gone.healthcheck().await.is_err());
    assert!(teams_notifier.healthcheck().await.is_ok());
    assert!(
        !format!("{teams_notifier:?}").contains("SECRET"),
        "{teams_notifier:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_refuses_what_teams_refuses() {
    // The stand-in checks what the notifier's tests rely on: it is not a yes-machine.
    let teams = workflows_webhook();
    let client = esim_courier_test_support::http_client();
    let post = |body: String| {
        let (client, url) = (client.clone(), format!("{}/x", teams.base));
        async move {
            client
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("answers")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        post(r#"{"text":"a plain Slack-style message"}"#.into()).await,
        400
    );
    let big = format!(
        r#"{{"type":"message","attachments":[{{"contentType":"application/vnd.microsoft.card.adaptive","content":{{"type":"AdaptiveCard","version":"1.4","body":[{{"type":"TextBlock","text":"{}"}}]}}}}]}}"#,
        "x".repeat(MAX_BODY)
    );
    assert_eq!(post(big).await, 413);
    let small = r#"{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{"type":"AdaptiveCard","version":"1.4","body":[{"type":"TextBlock","text":"hi"}]}}]}"#;
    assert_eq!(post(small.into()).await, 202);
}
