//! The black-box test harness: the real actix app on a port, a fresh database per test
//! (SQLite, and PostgreSQL when `ESIM_COURIER_TEST_POSTGRES_URL` is set), the real
//! dispatcher with recording notifiers.
//!
//! PostgreSQL suites need a server: set `ESIM_COURIER_TEST_POSTGRES_URL` (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`). Without it they print that they were skipped;
//! with `ESIM_COURIER_REQUIRE_POSTGRES=1` (as CI sets) a missing URL fails them instead.

mod app;
mod db;
/// The test doubles live in `esim-courier-test-support`, which the notifier crates use too.
pub use esim_courier_test_support::{
    console, http_client, http_client_builder, http_peer, provider, proxy, smtp, teams,
};

pub use app::{spawn_app, AppOptions, TestApp, API_TOKEN, WEBHOOK_TOKEN};
pub use db::{skipped, test_db, Backend, TestDb};

/// The encryption keys of every store this test process opens: one set, so that two stores
/// on one database (replicas) read each other's values.
pub fn test_keys() -> std::sync::Arc<esim_courier_store::Keyring> {
    static KEYS: std::sync::OnceLock<std::sync::Arc<esim_courier_store::Keyring>> =
        std::sync::OnceLock::new();
    std::sync::Arc::clone(
        KEYS.get_or_init(|| std::sync::Arc::new(esim_courier_store::Keyring::random())),
    )
}

/// A store on `url` with the test keys, its migrations applied.
pub async fn migrated_store(url: &str) -> esim_courier_store::Store {
    migrated_store_on(url, esim_courier_store::Clock::system()).await
}

/// A customer known by `email` alone, for tests that register one through the store.
pub fn customer(email: &str) -> esim_courier_core::Customer {
    esim_courier_core::Customer {
        email: esim_courier_core::EmailAddress::parse(email).expect("an address"),
        name: None,
        locale: None,
        retail_price: None,
    }
}

/// The event and the receipt of webhook `body` as the store's intake takes them, received
/// now (for tests that call the store directly).
pub fn received(
    body: &str,
) -> (
    esim_courier_core::OrderEvent,
    esim_courier_store::NewReceipt<'_>,
) {
    let event = esim_courier_core::WebhookPayload::from_slice(body.as_bytes())
        .and_then(|p| p.into_event(&esim_courier_core::CurrencyTable::default()))
        .expect("the webhook parses");
    let receipt = esim_courier_store::NewReceipt {
        received_at_ms: esim_courier_store::now_ms(),
        remote_addr: None,
        body: body.as_bytes(),
        source: esim_courier_core::EventSource::Webhook,
    };
    (event, receipt)
}

/// [`migrated_store`] on `clock`: a manual clock moves leases and retries without sleeping.
pub async fn migrated_store_on(
    url: &str,
    clock: esim_courier_store::Clock,
) -> esim_courier_store::Store {
    let options = esim_courier_store::StoreOptions {
        clock,
        ..esim_courier_store::StoreOptions::new(url, test_keys())
    };
    let store = esim_courier_store::Store::connect(&options)
        .await
        .expect("connects");
    store.migrate().await.expect("migrates");
    store
}

/// The provider's own sample COMPLETED payload.
pub const SAMPLE_COMPLETED: &str = include_str!("../fixtures/webhook-completed.json");
/// A FAILED payload with empty `iccid` and `lpa`.
pub const SAMPLE_FAILED: &str = include_str!("../fixtures/webhook-failed.json");

/// Generates one `#[tokio::test]` per backend for each listed `async fn name(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what` after `secs`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
