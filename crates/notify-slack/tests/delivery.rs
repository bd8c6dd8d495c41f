//! The Slack notifier against a local HTTP peer standing in for Slack's incoming webhook.

use std::time::Duration;

use esim_courier_core::{
    ActivationCode, Alert, AlertKind, CompletedOrder, Content, Notification, Notifier, NotifyError,
    OrderNo,
};
use esim_courier_notify_slack::{SlackConfig, SlackNotifier};
use esim_courier_test_support::http_peer::{unreachable_base, Peer, Reply};
use secrecy::SecretString;
use serde_json::Value;

const SECRET_PATH: &str = "/services/T0SECRET/B0SECRET/xoxSECRETxyz123";

fn notifier(base: &str) -> SlackNotifier {
    SlackNotifier::new(
        "ops-slack",
        SlackConfig {
            webhook_url: SecretString::from(format!("{base}{SECRET_PATH}")),
            timeout: Duration::from_secs(5),
        },
    )
    .expect("a valid config")
}

fn slack() -> Peer {
    Peer::start(Reply::new(200, "ok"))
}

fn failed(order_no: &str) -> Notification {
    esim_courier_core::testing::failed_order(order_no)
}

fn dead_letter() -> Notification {
    Notification {
        key: "alert-1".into(),
        content: Content::Alert(Alert {
            kind: AlertKind::DeadLetter,
            order_no: Some("B2405019999".into()),
            reason: "customer-email gave up after 8 attempts: SMTP 550 mailbox unavailable".into(),
            package_name: Some("Thailand 10GB".into()),
            price: Some("7.50 SGD".into()),
            occurred_at_ms: 1_714_555_800_000,
            command: Some("esim-courier dead-letters retry 42".into()),
        }),
    }
}

/// Every mrkdwn and plain text of a message, one per line.
fn texts(message: &Value) -> String {
    let mut out = String::new();
    for block in message["blocks"].as_array().expect("blocks") {
        for t in [&block["text"]["text"]]
            .into_iter()
            .chain(
                block["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| &f["text"]),
            )
            .chain(
                block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| &e["text"]),
            )
        {
            if let Some(t) = t.as_str() {
                out.push_str(t);
                out.push('\n');
            }
        }
    }
    out
}

fn assert_secret_absent(e: &NotifyError) {
    for piece in ["T0SECRET", "B0SECRET", "xoxSECRETxyz123"] {
        assert!(!e.message().contains(piece), "{e}");
        assert!(!e.to_string().contains(piece), "{e}");
        assert!(!format!("{e:?}").contains(piece), "{e:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_order_arrives_as_one_block_kit_message_with_its_facts_and_command() {
    let slack = slack();
    let receipt = notifier(&slack.base)
        .notify(&failed("B2405011234"))
        .await
        .expect("delivered");
    assert_eq!(receipt.id.as_deref(), Some("HTTP 200"));

    let received = slack.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, SECRET_PATH);
    let message = &received[0].body;
    assert_eq!(
        message["text"],
        ":x: Order B2405011234 failed at the provider"
    );
    assert_eq!(message["blocks"][0]["type"], "header");
    let text = texts(message);
    assert!(text.contains("*Order*\n`B2405011234`"), "{text}");
    assert!(
        text.contains("*Package*\nJapan 5GB 30 days (JP-5GB-30D)"),
        "{text}"
    );
    assert!(text.contains("*Contract price*\n4.20 USD"), "{text}");
    assert!(text.contains("2024-05-01T09:30:00Z"), "{text}");
    assert!(
        text.contains("```esim-courier orders show -- B2405011234```"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_shows_its_reason_price_and_command() {
    let slack = slack();
    notifier(&slack.base)
        .notify(&dead_letter())
        .await
        .expect("delivered");
    let text = texts(&slack.received()[0].body);
    assert!(
        text.contains("Delivery gave up: order B2405019999"),
        "{text}"
    );
    assert!(text.contains("SMTP 550 mailbox unavailable"), "{text}");
    assert!(text.contains("*Contract price*\n7.50 SGD"), "{text}");
    assert!(text.contains("*Package*\nThailand 10GB"), "{text}");
    assert!(
        text.contains("```esim-courier dead-letters retry 42```"),
        "{text}"
    );
    assert!(text.contains("`dead_letter`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_order_shows_the_activation_code_masked_only() {
    let slack = slack();
    let n = Notification {
        key: "c1".into(),
        content: Content::OrderCompleted(CompletedOrder {
            order_no: OrderNo::parse("B1").expect("order"),
            iccid: "8965012345678901234".into(),
            activation_code: ActivationCode::parse("LPA:1$smdp.example.com$MATCHSECRET-77AB99")
                .expect("code"),
            package_code: None,
            package_name: Some("Japan 5GB".into()),
            contract_price: None,
            customer: None,
            received_at_ms: 1_714_555_800_000,
        }),
    };
    notifier(&slack.base).notify(&n).await.expect("delivered");
    let body = slack.received()[0].body.to_string();
    assert!(!body.contains("MATCHSECRET"), "{body}");
    assert!(body.contains("77AB99") || body.contains("****"), "{body}");
    assert!(body.contains("8965012345678901234"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_of_300_failed_orders_is_one_valid_message_naming_all_of_them() {
    let slack = slack();
    let orders: Vec<String> = (0..300).map(|i| format!("B24050112{i:04}")).collect();
    let digest = Notification {
        key: "digest:ops-slack:1".into(),
        content: Content::Digest(orders.iter().map(|o| failed(o)).collect()),
    };
    notifier(&slack.base)
        .notify(&digest)
        .await
        .expect("delivered");

    let received = slack.received();
    assert_eq!(received.len(), 1, "one message");
    let message = &received[0].body;
    let blocks = message["blocks"].as_array().expect("blocks");
    assert!(blocks.len() <= 50, "{} blocks", blocks.len());
    for block in blocks {
        for t in [&block["text"]["text"]]
            .into_iter()
            .chain(
                block["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|f| &f["text"]),
            )
            .chain(
                block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| &e["text"]),
            )
            .filter_map(Value::as_str)
        {
            assert!(t.chars().count() <= 3000, "{} chars", t.chars().count());
        }
    }
    assert!(
        blocks[0]["text"]["text"]
            .as_str()
            .expect("header")
            .chars()
            .count()
            <= 150
    );
    let text = texts(message);
    for o in &orders {
        assert!(text.contains(o.as_str()), "{o} is missing");
    }
    assert!(message["text"]
        .as_str()
        .expect("fallback")
        .contains("300 orders failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_is_transient_and_honours_retry_after() {
    let slack = slack();
    slack.then(Reply::new(429, "rate_limited").header("retry-after", "30"));
    let e = notifier(&slack.base)
        .notify(&failed("B1"))
        .await
        .expect_err("rate limited");
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    assert!(e.message().contains("429"), "{e}");
    assert_secret_absent(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_is_transient() {
    let slack = slack();
    slack.then(Reply::new(500, "rollup_error"));
    let e = notifier(&slack.base)
        .notify(&failed("B1"))
        .await
        .expect_err("server error");
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.retry_after(), None);
    assert_secret_absent(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_400_403_404_are_permanent_and_say_slacks_reason() {
    let slack = slack();
    let notifier = notifier(&slack.base);
    for (status, code) in [
        (400, "invalid_blocks"),
        (403, "invalid_token"),
        (404, "no_service"),
    ] {
        slack.then(Reply::new(status, code));
        let e = notifier.notify(&failed("B1")).await.expect_err("refused");
        assert!(!e.is_transient(), "{e}");
        assert!(e.message().contains(&status.to_string()), "{e}");
        assert!(e.message().contains(code), "{e}");
        assert_secret_absent(&e);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_slack_is_transient_and_the_url_stays_secret() {
    let notifier = notifier(&unreachable_base());
    let e = notifier.notify(&failed("B1")).await.expect_err("refused");
    assert!(e.is_transient(), "{e}");
    assert!(e.message().contains("could not connect"), "{e}");
    assert_secret_absent(&e);
    let e = notifier.healthcheck().await.expect_err("refused");
    assert!(e.is_transient(), "{e}");
    assert_secret_absent(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_output_never_shows_the_webhook_path() {
    let debug = format!("{:?}", notifier("https://hooks.slack.com"));
    assert!(debug.contains("hooks.slack.com"), "{debug}");
    for piece in ["T0SECRET", "B0SECRET", "xoxSECRETxyz123"] {
        assert!(!debug.contains(piece), "{debug}");
    }
    let config = SlackConfig {
        webhook_url: SecretString::from(format!("https://hooks.slack.com{SECRET_PATH}")),
        timeout: Duration::from_secs(1),
    };
    assert!(!format!("{config:?}").contains("xoxSECRETxyz123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_posts_nothing_and_tells_a_revoked_webhook() {
    let slack = Peer::start(Reply::new(400, "no_text"));
    let notifier = notifier(&slack.base);
    notifier
        .healthcheck()
        .await
        .expect("a live webhook refuses an empty message");
    assert_eq!(slack.received()[0].body, serde_json::json!({}));

    slack.then(Reply::new(404, "no_service"));
    let e = notifier.healthcheck().await.expect_err("revoked");
    assert!(!e.is_transient());
    assert!(e.message().contains("no_service"), "{e}");
    assert_secret_absent(&e);
}

#[test]
fn the_config_section_names_bad_keys_and_refuses_bad_urls() {
    let config: SlackConfig =
        toml::from_str(r#"webhook_url = "https://hooks.slack.com/services/T/B/X""#)
            .expect("minimal section");
    assert_eq!(config.timeout, Duration::from_secs(10));

    let e = toml::from_str::<SlackConfig>(
        "webhook_url = \"https://hooks.slack.com/services/T/B/X\"\naudience = \"customer\"",
    )
    .expect_err("no audience key");
    assert!(e.to_string().contains("audience"), "{e}");

    for bad in ["not a url/xoxSECRET", "ftp://hooks.slack.com/xoxSECRET"] {
        let e = SlackNotifier::new(
            "ops",
            SlackConfig {
                webhook_url: SecretString::from(bad),
                timeout: Duration::from_secs(1),
            },
        )
        .expect_err("refused");
        assert!(e.to_string().starts_with("webhook_url"), "{e}");
        assert!(!e.to_string().contains("xoxSECRET"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_that_does_not_answer_in_time_is_transient() {
    let slack = slack();
    slack.then(Reply::new(200, "ok").after(Duration::from_secs(5)));
    let notifier = SlackNotifier::new(
        "ops-slack",
        SlackConfig {
            webhook_url: SecretString::from(format!("{}{SECRET_PATH}", slack.base)),
            timeout: Duration::from_millis(300),
        },
    )
    .expect("a valid config");
    let e = notifier.notify(&failed("B1")).await.expect_err("timed out");
    assert!(e.is_transient(), "{e}");
    assert!(e.message().contains("timed out"), "{e}");
    assert_secret_absent(&e);
}

#[test]
fn the_notifier_can_be_registered_as_an_operator_notifier() {
    let notifier: std::sync::Arc<dyn Notifier> =
        std::sync::Arc::new(notifier("https://hooks.slack.com"));
    assert_eq!(notifier.name(), "ops-slack");
    assert_eq!(notifier.audience(), esim_courier_core::Audience::Operator);
}
