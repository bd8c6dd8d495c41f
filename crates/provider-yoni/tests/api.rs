//! The provider client against the fake provider of `esim-courier-test-support`, which checks
//! signatures, keeps orders, honours `idempotentKey`, pages newest first and answers the
//! provider's error codes when scripted.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use esim_courier_core::{CurrencyTable, EmailAddress, OrderNo, OrderStatus, PlaceOrder, Provider};
use esim_courier_provider_yoni::{YoniConfig, YoniProvider};
use esim_courier_test_support::provider::{FakeProvider, Scripted};

const APP_ID: &str = "reseller-7";
const SECRET: &str = "s3cr3t-app-key";

fn client(fake: &FakeProvider, secret: &str, per_second: u32) -> YoniProvider {
    YoniProvider::new(
        YoniConfig {
            base_url: fake.base.clone(),
            app_id: APP_ID.into(),
            app_secret: secret.to_owned().into(),
            timeout: Duration::from_secs(2),
            requests_per_second: NonZeroU32::new(per_second).expect("above 0"),
        },
        CurrencyTable::default(),
    )
    .expect("a valid config")
}

fn order(reference: &str) -> PlaceOrder {
    PlaceOrder {
        reference: reference.into(),
        package_code: "JP-7D-5GB".into(),
        email: EmailAddress::parse("traveller@example.com").expect("an address"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_signature_is_accepted_and_one_made_with_another_secret_is_refused() {
    let fake = FakeProvider::start(APP_ID, SECRET);
    client(&fake, SECRET, 10)
        .healthcheck()
        .await
        .expect("accepted");
    let e = client(&fake, "another-secret", 10)
        .healthcheck()
        .await
        .expect_err("refused");
    assert!(!e.is_transient());
    assert_eq!(e.code(), Some(401));
    assert!(e.message().contains("signature"), "{e}");
    assert!(!e.to_string().contains("another-secret"), "{e}");
    let refused: Vec<bool> = fake.requests().iter().map(|r| r.refused).collect();
    assert_eq!(refused, [false, true]);
    assert!(!format!("{:?}", client(&fake, SECRET, 10)).contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_reference_never_places_a_second_order() {
    let fake = FakeProvider::start(APP_ID, SECRET);
    let provider = client(&fake, SECRET, 10);
    let same = order("ref-1");
    let (a, b) = tokio::join!(provider.place(&same), provider.place(&same));
    let first = provider.place(&order("ref-1")).await.expect("placed");
    assert_eq!(a.expect("placed"), first);
    assert_eq!(b.expect("placed"), first);
    assert_eq!(first.as_str().len(), 21, "{first}");
    let other = provider.place(&order("ref-2")).await.expect("placed");
    assert_ne!(other, first);
    assert_eq!(fake.orders().len(), 2, "one order per reference");
    assert!(fake.requests().iter().all(|r| r
        .idempotent_key
        .as_deref()
        .is_some_and(|k| k.starts_with("ref-"))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_finds_the_order_processing_then_completed_with_its_activation_code() {
    let fake = FakeProvider::start(APP_ID, SECRET);
    let provider = client(&fake, SECRET, 10);
    let order_no = provider.place(&order("ref-3")).await.expect("placed");
    let found = provider
        .lookup(&order_no)
        .await
        .expect("looked up")
        .expect("known");
    assert_eq!(found.status, OrderStatus::Processing);
    assert!(found.event.is_none());

    fake.finish(
        order_no.as_str(),
        "COMPLETED",
        "8944500102198304826",
        "LPA:1$smdp.example.com$K2-4KJ2T-1B6Q9X",
    );
    let found = provider
        .lookup(&order_no)
        .await
        .expect("looked up")
        .expect("known");
    assert_eq!(found.status, OrderStatus::Completed);
    let event = found.event.expect("the finished order's event");
    assert_eq!(event.order_no, order_no);
    assert_eq!(event.iccid_display(), "8944500102198304826");
    assert!(event.usable_activation_code().is_some());
    assert_eq!(
        event.contract_price.map(|m| m.to_string()).as_deref(),
        Some("4.20 USD")
    );
    assert!(
        String::from_utf8_lossy(&found.record).contains("K2-4KJ2T"),
        "the evidence"
    );

    let unknown = OrderNo::parse("202611300000000099999").expect("an order number");
    assert!(provider
        .lookup(&unknown)
        .await
        .expect("looked up")
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_come_newest_first() {
    let fake = FakeProvider::start(APP_ID, SECRET);
    let provider = client(&fake, SECRET, 50);
    let mut placed = Vec::new();
    for i in 0..5 {
        placed.push(
            provider
                .place(&order(&format!("p-{i}")))
                .await
                .expect("placed"),
        );
    }
    let first = provider.page(1, 3).await.expect("a page");
    let second = provider.page(2, 3).await.expect("a page");
    assert_eq!(first.total, 5);
    let numbers: Vec<OrderNo> = first
        .orders
        .into_iter()
        .chain(second.orders)
        .map(|o| o.expect("usable").order_no)
        .collect();
    placed.reverse();
    assert_eq!(numbers, placed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_codes_http_errors_and_garbage_say_whether_a_retry_helps() {
    let fake = FakeProvider::start(APP_ID, SECRET);
    let provider = client(&fake, SECRET, 50);
    fake.then(Scripted::Code(101));
    let e = provider.place(&order("e-1")).await.expect_err("101");
    assert!(e.is_transient() && e.code() == Some(101), "{e}");
    assert!(
        provider.place(&order("e-1")).await.is_ok(),
        "101 then success"
    );

    fake.then(Scripted::Code(506));
    let e = provider.place(&order("e-2")).await.expect_err("506");
    assert!(e.is_transient() && e.is_about_the_account(), "{e}");
    assert!(e.message().contains("balance"), "{e}");

    let mut missing = order("e-3");
    missing.package_code = "NO-SUCH-PACKAGE".into();
    let e = provider.place(&missing).await.expect_err("504");
    assert!(!e.is_transient() && e.code() == Some(504), "{e}");

    fake.then(Scripted::Code(502));
    let e = provider.page(1, 10).await.expect_err("502");
    assert!(!e.is_transient() && e.is_about_the_account(), "{e}");

    fake.then(Scripted::Malformed);
    assert!(provider
        .page(1, 10)
        .await
        .expect_err("garbage")
        .is_transient());
    fake.then(Scripted::Http(500));
    assert!(provider.page(1, 10).await.expect_err("500").is_transient());
    fake.then(Scripted::Slow(Duration::from_secs(5)));
    let e = provider.page(1, 10).await.expect_err("too slow");
    assert!(e.is_transient() && e.message().contains("timed out"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_8_mib_is_refused_and_one_below_is_read() {
    let fake = FakeProvider::start(APP_ID, SECRET);
    let provider = client(&fake, SECRET, 50);
    for scripted in [Scripted::Large(9 << 20), Scripted::LargeStreamed(9 << 20)] {
        fake.then(scripted.clone());
        let e = provider.page(1, 10).await.expect_err("too large");
        assert!(
            e.is_transient() && e.message().contains("larger than 8 MiB"),
            "{scripted:?}: {e}"
        );
    }
    // The same answers under the limit are read: only their size was refused.
    for scripted in [Scripted::Large(7 << 20), Scripted::LargeStreamed(7 << 20)] {
        fake.then(scripted.clone());
        let page = provider.page(1, 10).await.expect("under the limit");
        assert!(page.orders.is_empty(), "{scripted:?}");
    }
    // And the client goes on as usual.
    provider.page(1, 10).await.expect("a page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_never_exceed_the_rate_limit() {
    let fake = FakeProvider::start(APP_ID, SECRET);
    let provider = client(&fake, SECRET, 10);
    let calls = (0..25).map(|_| provider.page(1, 1));
    for result in futures_util::future::join_all(calls).await {
        result.expect("a page");
    }
    let times: Vec<Instant> = fake.requests().iter().map(|r| r.at).collect();
    assert_eq!(times.len(), 25);
    // In any window of one second the provider sees at most 10 calls (one every 100 ms).
    for (i, at) in times.iter().enumerate() {
        let within = times[i..]
            .iter()
            .take_while(|t| t.duration_since(*at) < Duration::from_millis(950))
            .count();
        assert!(within <= 10, "{within} calls within a second of call {i}");
    }
}

#[test]
fn a_base_url_with_a_path_is_refused_rather_than_dropped() {
    let config = |base_url: &str| YoniConfig {
        base_url: base_url.into(),
        app_id: APP_ID.into(),
        app_secret: SECRET.to_owned().into(),
        timeout: Duration::from_secs(2),
        requests_per_second: NonZeroU32::new(10).expect("above 0"),
    };
    for refused in [
        "https://gw.example.com/yoni",
        "https://gw.example.com/yoni/",
        "https://gw.example.com/?tenant=7",
    ] {
        let err = YoniProvider::new(config(refused), CurrencyTable::default())
            .expect_err(refused)
            .to_string();
        assert!(
            err.contains("base_url") && err.contains("https://gw.example.com"),
            "{refused}: {err}"
        );
    }
    for accepted in [
        "https://gw.example.com",
        "https://gw.example.com/",
        "http://127.0.0.1:9000",
    ] {
        YoniProvider::new(config(accepted), CurrencyTable::default()).expect(accepted);
    }
}
