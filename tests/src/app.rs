use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use esim_courier_core::testing::RecordingNotifier;
use esim_courier_core::{Audience, RouteTrigger, Routes};
use esim_courier_dispatch::{Dispatcher, DispatcherConfig, Hook, Registered, RetryPolicy};
use esim_courier_receiver::ReceiverConfig;
use esim_courier_store::{Store, StoreOptions};
use serde_json::Value;
use sqlx::AnyPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{test_db, Backend, TestDb};

/// The webhook token of test apps.
pub const WEBHOOK_TOKEN: &str = "test-webhook-token";
/// The API token of test apps.
pub const API_TOKEN: &str = "test-api-token";

/// How to build a test app.
#[derive(Clone)]
pub struct AppOptions {
    /// Webhook body limit.
    pub max_body_bytes: usize,
    /// The retry policy of both notifiers.
    pub policy: RetryPolicy,
    /// How long customer jobs wait for a registration.
    pub customer_wait: Duration,
    /// Whether to run the dispatcher.
    pub dispatcher: bool,
    /// Webhook hardening.
    pub hardening: esim_courier_receiver::Hardening,
    /// Accepted webhook tokens (default: [`WEBHOOK_TOKEN`]).
    pub webhook_tokens: Vec<&'static str>,
    /// Called at each point of a job's life the dispatcher offers (see [`HookPoint`]).
    pub hook: Option<Hook>,
    /// The operators' console, mounted under `/admin`.
    pub console: esim_courier_console::ConsoleConfig,
}

impl std::fmt::Debug for AppOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppOptions")
            .field("customer_wait", &self.customer_wait)
            .field("dispatcher", &self.dispatcher)
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            policy: RetryPolicy {
                max_attempts: 5,
                max_age: Duration::from_secs(3600),
                initial_delay: Duration::from_millis(100),
                max_delay: Duration::from_secs(2),
                timeout: Duration::from_secs(5),
            },
            customer_wait: Duration::from_secs(3600),
            dispatcher: true,
            hardening: esim_courier_receiver::Hardening::default(),
            webhook_tokens: vec![WEBHOOK_TOKEN],
            hook: None,
            console: esim_courier_console::ConsoleConfig::default(),
        }
    }
}

/// A running app: HTTP on a port, store, dispatcher, and the notifiers' recordings.
/// Routes: COMPLETED -> `customer`, FAILED -> `ops`, every alert -> `ops`.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The app's store.
    pub store: Store,
    /// A separate pool on the same database, to look at rows.
    pub db: AnyPool,
    /// The customer notifier's recording.
    pub customer: RecordingNotifier,
    /// The operator notifier's recording.
    pub ops: RecordingNotifier,
    /// The app's dispatcher, running in the background when [`AppOptions::dispatcher`]; see
    /// [`TestApp::drain`].
    pub dispatcher: Arc<Dispatcher>,
    shutdown: CancellationToken,
    server: ServerHandle,
    running: Option<JoinHandle<()>>,
    _db: Arc<TestDb>,
}

/// Starts the app on `backend`; `None` when that backend is not available (see [`test_db`]).
pub async fn spawn_app(backend: Backend, options: AppOptions) -> Option<TestApp> {
    let test_db = test_db(backend).await?;
    let customer = RecordingNotifier::new("customer", Audience::Customer);
    let ops = RecordingNotifier::new("ops", Audience::Operator);
    Some(start(Arc::new(test_db), options, customer, ops).await)
}

/// An app on `test_db` whose notifiers record into `customer` and `ops`.
async fn start(
    test_db: Arc<TestDb>,
    options: AppOptions,
    customer: RecordingNotifier,
    ops: RecordingNotifier,
) -> TestApp {
    let store = Store::connect(&StoreOptions::new(&test_db.url, crate::test_keys()))
        .await
        .expect("store connects");
    store.migrate().await.expect("migrations run");
    store
        .prepare_encryption(&|_| {})
        .await
        .expect("the encryption keys are usable");
    let db = sqlx::any::AnyPoolOptions::new()
        .max_connections(2)
        .connect(&test_db.url)
        .await
        .expect("inspection pool connects");

    let routes = Routes::new(vec![
        (RouteTrigger::Completed, vec!["customer".into()]),
        (RouteTrigger::Failed, vec!["ops".into()]),
        (RouteTrigger::Alert(None), vec!["ops".into()]),
    ]);
    let mut config = ReceiverConfig::new(
        options
            .webhook_tokens
            .iter()
            .map(|t| (*t).to_owned().into())
            .collect(),
        vec![API_TOKEN.to_owned().into()],
    );
    config.hardening = options.hardening.clone();
    config.max_body_bytes = options.max_body_bytes;
    config.routes = routes.clone();
    config.workers = 2;

    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = listener.local_addr().expect("bound").port();
    let console = esim_courier_console::configure(store.clone(), options.console.clone());
    let server = esim_courier_receiver::serve(listener, store.clone(), config, None, console)
        .expect("server starts");
    let handle = server.handle();
    tokio::spawn(server);

    let shutdown = CancellationToken::new();
    let mut notifiers = HashMap::new();
    for n in [&customer, &ops] {
        notifiers.insert(
            esim_courier_core::Notifier::name(n).to_owned(),
            Registered {
                notifier: Arc::new(n.clone()),
                policy: options.policy.clone(),
                group_window: None,
            },
        );
    }
    let config = DispatcherConfig {
        poll_interval: Duration::from_millis(500),
        lease: Duration::from_secs(30),
        customer_wait: options.customer_wait,
        ..DispatcherConfig::default()
    };
    let mut dispatcher = Dispatcher::new(store.clone(), notifiers, routes, config);
    if let Some(hook) = options.hook.clone() {
        dispatcher = dispatcher.with_hook(hook);
    }
    let dispatcher = Arc::new(dispatcher);
    let running = options
        .dispatcher
        .then(|| tokio::spawn(Arc::clone(&dispatcher).run(shutdown.clone())));

    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        client: crate::http_client(),
        store,
        db,
        customer,
        ops,
        dispatcher,
        shutdown,
        server: handle,
        running,
        _db: test_db,
    }
}

impl TestApp {
    /// Another replica on the same database, as a second process of a deployment would be:
    /// its own HTTP server, store and dispatcher, delivering through notifiers that record
    /// into the same lists as this app's (so "exactly one email" counts across replicas).
    pub async fn replica(&self, options: AppOptions) -> TestApp {
        start(
            Arc::clone(&self._db),
            options,
            self.customer.clone(),
            self.ops.clone(),
        )
        .await
    }

    /// Delivers every job that is due until nothing is due or under way
    /// ([`Dispatcher::drain`]): what has not arrived by then is not coming now.
    pub async fn drain(&self) -> usize {
        tokio::time::timeout(Duration::from_secs(60), self.dispatcher.drain())
            .await
            .expect("the outbox drains within 60 s")
    }

    /// POSTs a JSON webhook body with the right token.
    pub async fn post_webhook(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.post_raw(WEBHOOK_TOKEN, Some("application/json"), body)
            .await
    }

    /// POSTs anything to the webhook endpoint.
    pub async fn post_raw(
        &self,
        token: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/webhooks/order/{token}", self.base))
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().await.expect("the app answers")
    }

    /// POSTs and returns (status, JSON body).
    pub async fn webhook_json(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let res = self.post_webhook(body).await;
        let status = res.status().as_u16();
        (status, res.json().await.expect("a JSON answer"))
    }

    /// `PUT /api/v1/orders/{order_no}` with the API token.
    pub async fn register(&self, order_no: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .put(format!("{}/api/v1/orders/{order_no}", self.base))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("the app answers");
        let status = res.status().as_u16();
        (status, res.json().await.expect("a JSON answer"))
    }

    /// `GET /api/v1/orders/{order_no}` with the API token.
    pub async fn order(&self, order_no: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{}/api/v1/orders/{order_no}", self.base))
            .bearer_auth(API_TOKEN)
            .send()
            .await
            .expect("the app answers");
        let status = res.status().as_u16();
        (status, res.json().await.expect("a JSON answer"))
    }

    /// The database's URL, to open another store on it (as an operator command does).
    pub fn database_url(&self) -> &str {
        &self._db.url
    }

    /// A single integer from `sql` (e.g. a `COUNT(*)`), on the app's database. The SQL is the
    /// test's own text.
    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Row;
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.db)
            .await
            .expect("query runs")
            .try_get(0)
            .expect("an integer")
    }

    /// The alerts the `ops` notifier delivered so far, in order.
    pub fn alerts(&self) -> Vec<esim_courier_core::Alert> {
        self.ops
            .delivered()
            .into_iter()
            .filter_map(|n| match n.content {
                esim_courier_core::Content::Alert(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// The first alert the `ops` notifier delivered, waiting up to `secs` for it.
    pub async fn first_alert(&self, secs: u64, what: &str) -> esim_courier_core::Alert {
        crate::eventually(secs, what, || async { self.alerts().into_iter().next() }).await
    }

    /// Stops the dispatcher (gracefully) and the HTTP server.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(d) = self.running.take() {
            d.await.expect("dispatcher ends cleanly");
        }
        self.server.stop(true).await;
        self.store.close().await;
        self.db.close().await;
    }
}
