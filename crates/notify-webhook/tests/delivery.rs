//! The webhook notifier against a local HTTP peer, its signature checked by an independent
//! Standard Webhooks verifier written here from the specification.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use esim_courier_core::{
    Alert, AlertKind, Audience, Content, Currency, FailedOrder, Money, Notification, Notifier,
    OrderNo,
};
use esim_courier_notify_webhook::{WebhookConfig, WebhookNotifier};
use esim_courier_test_support::http_peer::{unreachable_base, Peer, Reply};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The specification's verification, from its text: base64-decode the part after `whsec_`,
/// HMAC-SHA256 over `{id}.{timestamp}.{body}`, base64, compare with each `v1,` signature.
fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

#[test]
fn the_independent_verifier_accepts_the_specifications_test_vector() {
    assert!(verify(
        SECRET,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        br#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
    assert!(!verify(
        SECRET,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265331",
        br#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    ));
}

fn notifier(url: String, secret: Option<&str>) -> WebhookNotifier {
    let config = WebhookConfig {
        url,
        secret: secret.map(|s| s.to_owned().into()),
        timeout: Duration::from_secs(2),
        audience: Audience::Operator,
    };
    WebhookNotifier::new("ops-hook", config).expect("valid config")
}

fn failed_order() -> Notification {
    Notification {
        key: "event:7:order_failed:ops-hook".into(),
        content: Content::OrderFailed(FailedOrder {
            order_no: OrderNo::parse("2026032517000000000042").expect("valid"),
            package_code: Some("YN2602130000777".into()),
            package_name: Some("Japan, 7 Days, 5GB".into()),
            contract_price: Some(
                Money::parse("12.50", Currency::Iso("USD".into())).expect("valid"),
            ),
            received_at_ms: 1_795_826_369_252,
        }),
    }
}

#[tokio::test]
async fn a_failed_order_is_posted_signed_and_the_signature_verifies_independently() {
    let peer = Peer::start(Reply::new(200, ""));
    let n = notifier(format!("{}/hook", peer.base), Some(SECRET));
    let receipt = n.notify(&failed_order()).await.expect("delivered");
    assert_eq!(receipt.id.as_deref(), Some("HTTP 200"));
    let got = peer.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(
        r.header("webhook-id"),
        Some("event:7:order_failed:ops-hook")
    );
    let timestamp = r.header("webhook-timestamp").expect("a timestamp");
    let signature = r.header("webhook-signature").expect("a signature");
    assert!(
        verify(
            SECRET,
            "event:7:order_failed:ops-hook",
            timestamp,
            &r.raw,
            signature
        ),
        "{signature}"
    );
    assert!(!verify(
        "whsec_c2VjcmV0",
        "event:7:order_failed:ops-hook",
        timestamp,
        &r.raw,
        signature
    ));
    assert_eq!(r.body["type"], "order.failed");
    assert_eq!(r.body["data"]["orderNo"], "2026032517000000000042");
    assert_eq!(r.body["data"]["price"], "12.50");
}

/// A key a header cannot carry as it is (an order number in another script, a control
/// character the provider sent in an ICCID) goes out percent-encoded, signed as sent, rather
/// than failing the request at every retry.
#[tokio::test]
async fn a_key_a_header_cannot_carry_is_sent_percent_encoded_and_signed_as_sent() {
    let peer = Peer::start(Reply::new(200, ""));
    let n = notifier(format!("{}/hook", peer.base), Some(SECRET));
    let mut notification = failed_order();
    notification.key = "completed:Ñandú-7:8910\u{1}12:100%:ops-hook".into();
    n.notify(&notification).await.expect("delivered");
    let got = peer.received();
    assert_eq!(got.len(), 1);
    let id = "completed:%C3%91and%C3%BA-7:8910%0112:100%25:ops-hook";
    assert_eq!(got[0].header("webhook-id"), Some(id));
    let timestamp = got[0].header("webhook-timestamp").expect("a timestamp");
    let signature = got[0].header("webhook-signature").expect("a signature");
    assert!(verify(SECRET, id, timestamp, &got[0].raw, signature));

    // A key of printable ASCII goes out as it is, `%` and all.
    notification.key = "completed:A-100%:8910:ops-hook".into();
    n.notify(&notification).await.expect("delivered");
    let got = peer.received();
    assert_eq!(
        got.last().and_then(|r| r.header("webhook-id")),
        Some("completed:A-100%:8910:ops-hook")
    );
}

#[tokio::test]
async fn answers_map_to_transient_or_permanent() {
    let peer = Peer::start(Reply::new(200, ""));
    peer.then(Reply::new(429, "").header("retry-after", "9"));
    peer.then(Reply::new(503, ""));
    peer.then(Reply::new(404, ""));
    let n = notifier(format!("{}/hook", peer.base), None);
    let e = n.notify(&failed_order()).await.expect_err("429");
    assert!(e.is_transient());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(9)));
    assert!(n
        .notify(&failed_order())
        .await
        .expect_err("503")
        .is_transient());
    assert!(!n
        .notify(&failed_order())
        .await
        .expect_err("404")
        .is_transient());
    assert!(
        peer.received()
            .iter()
            .all(|r| r.header("webhook-signature").is_none()),
        "unsigned without a secret"
    );
    let gone = notifier(format!("{}/hook", unreachable_base()), None);
    assert!(gone
        .notify(&failed_order())
        .await
        .expect_err("refused")
        .is_transient());
}

#[tokio::test]
async fn a_digest_is_one_post_listing_every_item() {
    let peer = Peer::start(Reply::new(200, ""));
    let n = notifier(format!("{}/hook", peer.base), Some(SECRET));
    let alert = Notification {
        key: "dead:1".into(),
        content: Content::Alert(Alert {
            kind: AlertKind::DeadLetter,
            order_no: Some("B-2".into()),
            reason: "550 no such user".into(),
            package_name: None,
            price: None,
            occurred_at_ms: 0,
            command: Some("esim-courier dead-letters retry 1".into()),
        }),
    };
    let digest = Notification {
        key: "digest:ops-hook:1".into(),
        content: Content::Digest(vec![failed_order(), alert]),
    };
    n.notify(&digest).await.expect("delivered");
    let got = peer.received();
    assert_eq!(got.len(), 1);
    let items = got[0].body["data"]["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["data"]["orderNo"], "2026032517000000000042");
    assert_eq!(items[1]["type"], "alert.dead_letter");
    assert_eq!(
        items[1]["data"]["command"],
        "esim-courier dead-letters retry 1"
    );
}
