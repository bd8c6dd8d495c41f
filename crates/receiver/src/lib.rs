//! The HTTP side of esim-courier (actix-web): the provider's webhook, the order API and
//! health endpoints.
//!
//! Handlers are thin: extract, parse into domain types, call one service function, map the
//! error to a stable JSON code. Nothing here does network I/O to a notifier: the webhook
//! answers as soon as the event and its outbox jobs are committed.

mod auth;
mod auth_failures;
mod body;
mod error;
mod guard;
mod health;
mod intake;
mod metrics;
mod orders;
mod placements;
mod request_log;
mod webhook;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use esim_courier_core::{CurrencyTable, Routes};
use esim_courier_store::Store;
use secrecy::SecretString;

pub use auth::TokenSet;
pub use error::ApiError;
pub use guard::{
    client_address, Hardening, RateLimit, SignatureAlgorithm, SignatureCheck, SignatureEncoding,
};
pub use metrics::MetricsRender;

/// What the receiver needs to know.
#[derive(Debug, Clone)]
pub struct ReceiverConfig {
    /// Tokens accepted in `/webhooks/order/{token}` (several at once, for rotation).
    pub webhook_tokens: TokenSet,
    /// Bearer tokens of the order API.
    pub api_tokens: TokenSet,
    /// The largest webhook body read; larger ones get 413 before any parsing.
    pub max_body_bytes: usize,
    /// The provider's numeric currency codes.
    pub currencies: CurrencyTable,
    /// Routing of events and alerts to notifiers.
    pub routes: Routes,
    /// Worker threads of the HTTP server (0 = one per core).
    pub workers: usize,
    /// Allowlist, rate limit and signature checks of the webhook.
    pub hardening: Hardening,
    /// More requests with a wrong webhook or API token than this within a minute raise the
    /// `auth_failures` alert; 0 never does.
    pub auth_failure_alert_per_minute: u32,
    /// Renders `GET /metrics`; `None` disables the endpoint.
    pub metrics: Option<MetricsRender>,
    /// Serve `/metrics` on the main listener (false when an admin listener serves it).
    pub metrics_on_main: bool,
    /// With the provider's order API: a registered order is looked up this long after its
    /// registration unless its result came by then (`[reconcile] expect_within`). `None`
    /// without the provider: no lookups, and `POST /api/v1/placements` answers 503.
    pub lookup_after: Option<std::time::Duration>,
}

impl ReceiverConfig {
    /// A configuration with the given tokens and defaults elsewhere (64 KiB bodies, the
    /// provider's currency table, no routes).
    pub fn new(webhook_tokens: Vec<SecretString>, api_tokens: Vec<SecretString>) -> Self {
        Self {
            webhook_tokens: TokenSet::new(webhook_tokens),
            api_tokens: TokenSet::new(api_tokens),
            max_body_bytes: 64 * 1024,
            currencies: CurrencyTable::default(),
            routes: Routes::default(),
            workers: 0,
            hardening: Hardening::default(),
            auth_failure_alert_per_minute: 60,
            metrics: None,
            metrics_on_main: true,
            lookup_after: None,
        }
    }
}

/// Shared by every request.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) guard: Arc<guard::Guard>,
    pub(crate) auth_failures: auth_failures::AuthFailures,
    pub(crate) config: ReceiverConfig,
}

fn state(store: Store, config: ReceiverConfig) -> web::Data<AppState> {
    let guard = guard::Guard::new(config.hardening.clone());
    let auth_failures = auth_failures::AuthFailures::new(config.auth_failure_alert_per_minute);
    web::Data::from(Arc::new(AppState {
        store,
        guard,
        auth_failures,
        config,
    }))
}

/// Registers every route on an actix `App`; used by [`serve`] and by tests.
pub fn configure(
    store: Store,
    config: ReceiverConfig,
) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    let metrics_on_main = config.metrics_on_main;
    let state = state(store, config);
    move |cfg: &mut web::ServiceConfig| {
        if metrics_on_main {
            cfg.route("/metrics", web::get().to(metrics::scrape));
        }
        cfg.app_data(state)
            .service(
                web::resource("/webhooks/order/{token}")
                    .route(web::post().to(webhook::receive))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/api/v1/orders/{order_no}")
                    .route(web::put().to(orders::register))
                    .route(web::get().to(orders::show))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/api/v1/placements")
                    .route(web::post().to(placements::create))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .service(
                web::resource("/api/v1/placements/{reference}")
                    .route(web::get().to(placements::show))
                    .default_service(web::to(error::method_not_allowed)),
            )
            .route("/healthz", web::get().to(health::live))
            .route("/readyz", web::get().to(health::ready));
    }
}

/// Starts the admin server on `listener`: `/metrics`, `/healthz`, `/readyz` only, for an
/// address that only the monitoring network reaches.
pub fn serve_admin(
    listener: TcpListener,
    store: Store,
    config: ReceiverConfig,
) -> std::io::Result<Server> {
    let state = state(store, config);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(metrics::scrape))
            .route("/healthz", web::get().to(health::live))
            .route("/readyz", web::get().to(health::ready))
            .default_service(web::to(error::not_found))
    })
    .disable_signals()
    .workers(1)
    .listen(listener)?
    .run())
}

/// Starts the HTTP server on `listener`, over HTTPS when `tls` is given, with `more` routes
/// beside the receiver's (the operators' console). The returned server runs until stopped
/// through its handle; it finishes requests under way on a graceful stop.
pub fn serve<M>(
    listener: TcpListener,
    store: Store,
    config: ReceiverConfig,
    tls: Option<rustls::ServerConfig>,
    more: M,
) -> std::io::Result<Server>
where
    M: FnOnce(&mut web::ServiceConfig) + Clone + Send + 'static,
{
    let workers = config.workers;
    let routes = configure(store, config);
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(actix_web::middleware::from_fn(request_log::log_request))
            .configure(routes.clone())
            .configure(more.clone())
            .default_service(web::to(error::not_found))
    })
    // Signals are handled by the binary, which also stops the dispatcher.
    .disable_signals()
    .shutdown_timeout(30);
    if workers > 0 {
        server = server.workers(workers);
    }
    let server = match tls {
        Some(tls) => server.listen_rustls_0_23(listener, tls)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}
