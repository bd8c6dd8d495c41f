//! The Telegram notifier against a local HTTP peer standing in for the Bot API.

use std::time::Duration;

use esim_courier_core::{Alert, AlertKind, Content, Notification, Notifier, NotifyError};
use esim_courier_notify_telegram::{ChatId, TelegramConfig, TelegramNotifier};
use esim_courier_test_support::http_peer::{unreachable_base, Peer, Reply};
use secrecy::SecretString;

const TOKEN: &str = "987654321:AAsecretTOKENsecretTOKENsecretTOKEN12";
const TOKEN_SECRET_PART: &str = "AAsecretTOKENsecretTOKENsecretTOKEN12";
const SEND: &str = "/bot987654321:AAsecretTOKENsecretTOKENsecretTOKEN12/sendMessage";

fn config(base: &str) -> TelegramConfig {
    TelegramConfig {
        bot_token: SecretString::from(TOKEN),
        chat_id: ChatId::Id(-1_001_234_567_890),
        api_base: base.to_owned(),
        timeout: Duration::from_secs(5),
    }
}

fn notifier(base: &str) -> TelegramNotifier {
    TelegramNotifier::new("ops-telegram", config(base)).expect("a valid config")
}

fn ok(message_id: u32) -> Reply {
    Reply::new(
        200,
        &format!(
            r#"{{"ok":true,"result":{{"message_id":{message_id},"chat":{{"id":-1001234567890}}}}}}"#
        ),
    )
}

fn telegram() -> Peer {
    Peer::start(ok(1))
}

fn refused(code: u16, description: &str) -> Reply {
    Reply::new(
        code,
        &format!(r#"{{"ok":false,"error_code":{code},"description":"{description}"}}"#),
    )
}

fn failed(order_no: &str) -> Notification {
    esim_courier_core::testing::failed_order(order_no)
}

fn text_of(body: &serde_json::Value) -> String {
    body["text"].as_str().expect("a text").to_owned()
}

fn assert_token_absent(text: &str) {
    assert!(!text.contains(TOKEN_SECRET_PART), "{text}");
}

fn assert_secret_absent(e: &NotifyError) {
    assert_token_absent(e.message());
    assert_token_absent(&e.to_string());
    assert_token_absent(&format!("{e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_order_is_sent_as_one_html_message_with_its_facts_and_command() {
    let telegram = Peer::start(ok(42));
    let receipt = notifier(&telegram.base)
        .notify(&failed("B2405011234"))
        .await
        .expect("sent");
    assert_eq!(receipt.id.as_deref(), Some("message 42"));

    let received = telegram.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, SEND);
    let body = &received[0].body;
    assert_eq!(body["chat_id"], -1_001_234_567_890_i64);
    assert_eq!(body["parse_mode"], "HTML");
    assert_eq!(body["disable_web_page_preview"], true);
    let text = text_of(body);
    assert!(
        text.contains("<b>Order B2405011234 failed at the provider</b>"),
        "{text}"
    );
    assert!(
        text.contains("<b>Order:</b> <code>B2405011234</code>"),
        "{text}"
    );
    assert!(
        text.contains("<b>Package:</b> Japan 5GB 30 days (JP-5GB-30D)"),
        "{text}"
    );
    assert!(text.contains("<b>Contract price:</b> 4.20 USD"), "{text}");
    assert!(text.contains("<b>Time:</b> 2024-05-01T09:30:00Z"), "{text}");
    assert!(
        text.contains("<pre>esim-courier orders show -- B2405011234</pre>"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_html_escaped_and_shows_its_reason_price_and_command() {
    let telegram = telegram();
    let alert = Notification {
        key: "alert-1".into(),
        content: Content::Alert(Alert {
            kind: AlertKind::WebhookRejected,
            order_no: Some("B<7>&1".into()),
            reason: "invalid JSON: expected `}` near <script>alert(1)</script> & more".into(),
            package_name: Some("Thailand <10GB>".into()),
            price: Some("7.50 SGD".into()),
            occurred_at_ms: 1_714_555_800_000,
            command: Some("esim-courier orders show 'B<7>&1'".into()),
        }),
    };
    notifier(&telegram.base).notify(&alert).await.expect("sent");
    let text = text_of(&telegram.received()[0].body);
    assert!(!text.contains("<script>"), "{text}");
    assert!(
        text.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"),
        "{text}"
    );
    assert!(text.contains("<code>B&lt;7&gt;&amp;1</code>"), "{text}");
    assert!(text.contains("Thailand &lt;10GB&gt;"), "{text}");
    assert!(text.contains("<b>Contract price:</b> 7.50 SGD"), "{text}");
    assert!(
        text.contains("<pre>esim-courier orders show 'B&lt;7&gt;&amp;1'</pre>"),
        "{text}"
    );
    assert!(text.contains("Webhook rejected"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_of_300_failed_orders_is_split_into_messages_that_together_name_all() {
    let telegram = telegram();
    let orders: Vec<String> = (0..300).map(|i| format!("B24050112{i:04}")).collect();
    let digest = Notification {
        key: "digest:ops-telegram:1".into(),
        content: Content::Digest(orders.iter().map(|o| failed(o)).collect()),
    };
    let receipt = notifier(&telegram.base)
        .notify(&digest)
        .await
        .expect("sent");

    let received = telegram.received();
    assert!(received.len() > 1, "{} messages", received.len());
    assert!(receipt.id.expect("ids").starts_with("messages "));
    let texts: Vec<String> = received.iter().map(|r| text_of(&r.body)).collect();
    for (i, t) in texts.iter().enumerate() {
        assert_eq!(received[i].path, SEND);
        assert!(
            t.chars().count() <= 4096,
            "message {i}: {} chars",
            t.chars().count()
        );
        assert!(t.encode_utf16().count() <= 4096);
        assert!(
            t.contains(&format!("(part {} of {})", i + 1, texts.len())),
            "{t}"
        );
    }
    assert!(texts[0].contains("300 orders failed"));
    assert!(
        texts[0]
            .contains("❌ <code>B240501120000</code> · Japan 5GB 30 days (JP-5GB-30D) · 4.20 USD"),
        "{}",
        texts[0]
    );
    // Every order, in order, across the messages.
    let all = texts.join("\n");
    let mut at = 0;
    for o in &orders {
        at += all[at..]
            .find(o.as_str())
            .unwrap_or_else(|| panic!("{o} is missing"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_whose_second_part_fails_stops_there_and_returns_the_error() {
    let telegram = telegram();
    telegram.then(ok(1));
    telegram.then(Reply::new(502, "Bad Gateway"));
    let digest = Notification {
        key: "d".into(),
        content: Content::Digest((0..300).map(|i| failed(&format!("B{i:05}"))).collect()),
    };
    let e = notifier(&telegram.base)
        .notify(&digest)
        .await
        .expect_err("part 2 failed");
    assert!(e.is_transient(), "{e}");
    assert_eq!(
        telegram.received().len(),
        2,
        "nothing after the failed part"
    );
    assert_secret_absent(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_is_transient_with_telegrams_retry_after() {
    let telegram = telegram();
    telegram.then(Reply::new(
        429,
        r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 17","parameters":{"retry_after":17}}"#,
    ));
    let e = notifier(&telegram.base)
        .notify(&failed("B1"))
        .await
        .expect_err("rate limited");
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(17)));
    assert!(e.message().contains("429"), "{e}");
    assert_secret_absent(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_from_a_proxy_is_transient_with_its_retry_after_header() {
    let telegram = telegram();
    telegram.then(Reply::new(429, "slow down").header("retry-after", "9"));
    let e = notifier(&telegram.base)
        .notify(&failed("B1"))
        .await
        .expect_err("rate limited");
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_is_transient() {
    let telegram = telegram();
    telegram.then(refused(500, "Internal Server Error"));
    let e = notifier(&telegram.base)
        .notify(&failed("B1"))
        .await
        .expect_err("server error");
    assert!(e.is_transient(), "{e}");
    assert_secret_absent(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_400_401_403_404_are_permanent_and_say_telegrams_reason() {
    let telegram = telegram();
    let notifier = notifier(&telegram.base);
    for (code, description) in [
        (400, "Bad Request: chat not found"),
        (401, "Unauthorized"),
        (403, "Forbidden: bot was kicked from the supergroup chat"),
        (404, "Not Found"),
    ] {
        telegram.then(refused(code, description));
        let e = notifier.notify(&failed("B1")).await.expect_err("refused");
        assert!(!e.is_transient(), "{e}");
        assert!(e.message().contains(&code.to_string()), "{e}");
        assert!(e.message().contains(description), "{e}");
        assert_secret_absent(&e);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgraded_group_says_which_chat_id_to_configure() {
    let telegram = telegram();
    telegram.then(Reply::new(
        400,
        r#"{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1009876543210}}"#,
    ));
    let e = notifier(&telegram.base)
        .notify(&failed("B1"))
        .await
        .expect_err("moved");
    assert!(!e.is_transient());
    assert!(e.message().contains("chat_id = -1009876543210"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_is_transient_and_the_token_stays_secret() {
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
async fn debug_output_never_shows_the_token() {
    let notifier = notifier("https://api.telegram.org");
    let debug = format!("{notifier:?}");
    assert_token_absent(&debug);
    assert!(debug.contains("-1001234567890"), "{debug}");
    assert_token_absent(&format!("{:?}", config("https://api.telegram.org")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_check_calls_get_me_and_get_chat_and_sends_nothing() {
    let telegram = Peer::start(Reply::new(
        200,
        r#"{"ok":true,"result":{"id":987654321,"is_bot":true}}"#,
    ));
    let notifier = notifier(&telegram.base);
    notifier.healthcheck().await.expect("healthy");
    let paths: Vec<String> = telegram.received().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [format!("/bot{TOKEN}/getMe"), format!("/bot{TOKEN}/getChat")]
    );
    assert_eq!(
        telegram.received()[1].body["chat_id"],
        -1_001_234_567_890_i64
    );

    telegram.then(refused(401, "Unauthorized"));
    let e = notifier.healthcheck().await.expect_err("bad token");
    assert!(!e.is_transient());
    assert!(e.message().contains("getMe"), "{e}");
    assert_secret_absent(&e);
}

#[test]
fn the_config_section_takes_a_chat_id_as_number_or_string_and_names_bad_keys() {
    let parse = |chat_id: &str| {
        toml::from_str::<TelegramConfig>(&format!("bot_token = \"{TOKEN}\"\nchat_id = {chat_id}"))
    };
    let c = parse("-1001234567890").expect("a number");
    assert_eq!(c.chat_id, ChatId::Id(-1_001_234_567_890));
    assert_eq!(c.api_base, "https://api.telegram.org");
    assert_eq!(c.timeout, Duration::from_secs(10));
    assert_eq!(
        parse("\"-1001234567890\"").expect("a string").chat_id,
        ChatId::Id(-1_001_234_567_890)
    );
    assert_eq!(
        parse("\"@esim_ops\"").expect("a username").chat_id,
        ChatId::Username("@esim_ops".into())
    );
    let e = parse("\"ops channel\"").expect_err("neither");
    assert!(e.to_string().contains("chat_id"), "{e}");

    let e = toml::from_str::<TelegramConfig>(&format!(
        "bot_token = \"{TOKEN}\"\nchat_id = 1\naudience = \"customer\""
    ))
    .expect_err("no audience key");
    assert!(e.to_string().contains("audience"), "{e}");

    for (token, base) in [
        (
            "not-a-token-AAsecretTOKENsecretTOKENsecretTOKEN12",
            "https://api.telegram.org",
        ),
        (
            "123:AAsecretTOKENsecretTOKENsecretTOKEN12/../x",
            "https://api.telegram.org",
        ),
        (TOKEN, "ftp://api.telegram.org"),
        (TOKEN, "not a url"),
    ] {
        let e = TelegramNotifier::new(
            "ops",
            TelegramConfig {
                bot_token: SecretString::from(token),
                ..config(base)
            },
        )
        .expect_err("refused");
        assert_token_absent(&e.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_api_that_does_not_answer_in_time_is_transient() {
    let telegram = telegram();
    telegram.then(ok(1).after(Duration::from_secs(5)));
    let notifier = TelegramNotifier::new(
        "ops-telegram",
        TelegramConfig {
            timeout: Duration::from_millis(300),
            ..config(&telegram.base)
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
        std::sync::Arc::new(notifier("https://api.telegram.org"));
    assert_eq!(notifier.name(), "ops-telegram");
    assert_eq!(notifier.audience(), esim_courier_core::Audience::Operator);
}
