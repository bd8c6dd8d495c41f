//! `POST /webhooks/order/{token}`: the provider's order webhook.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth_failures::{self, Endpoint};
use crate::body;
use crate::guard::Refusal;
use crate::intake::{self, Accepted, Rejection};
use crate::{ApiError, AppState};

/// Checks run in an order that tells an unauthenticated caller nothing (401 first), and
/// that bounds memory before parsing (the size limit applies while reading).
pub(crate) async fn receive(
    req: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let answer = receive_inner(&req, &token, payload, &state).await;
    let outcome = match &answer {
        Ok(accepted) => accepted.status,
        Err(e) => e.code(),
    };
    metrics::counter!("esim_courier_webhooks_received_total", "outcome" => outcome).increment(1);
    metrics::histogram!("esim_courier_intake_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    answer.map(|a| HttpResponse::Ok().json(json!({"status": a.status, "orderNo": a.order_no})))
}

async fn receive_inner(
    req: &HttpRequest,
    token: &str,
    mut payload: web::Payload,
    state: &AppState,
) -> Result<Accepted, ApiError> {
    let source = state.guard.source(req);
    match state.guard.admit(source) {
        Ok(()) => {}
        Err(Refusal::Forbidden(ip)) => {
            tracing::warn!(source = %ip, "webhook from a source outside the allowlist refused");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this source address may not post webhooks",
            ));
        }
        Err(Refusal::RateLimited(ip)) => {
            tracing::warn!(source = %ip, "webhook rate limit exceeded");
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this address; retry shortly",
            ));
        }
    }
    if !state.config.webhook_tokens.accepts(token) {
        auth_failures::refused(state, Endpoint::Webhook, source);
        return Err(ApiError::unauthorized());
    }
    let remote = source.map(|ip| ip.to_string());
    let limit = state.config.max_body_bytes;

    let body::Limited {
        bytes: body,
        too_large,
    } = body::read(req, &mut payload, limit).await?;
    let rejection = if too_large {
        Some(Rejection::TooLarge { limit })
    } else if !is_json(req) {
        Some(Rejection::MediaType(content_type(req)))
    } else if state
        .guard
        .signature()
        .is_some_and(|s| !s.verify(req, &body))
    {
        Some(Rejection::Signature)
    } else {
        None
    };
    // Boxed apart from this handler's future, which actix-web allocates per request: each
    // stays under 1 KiB, which glibc's malloc serves from its per-thread cache. One future of
    // over 1 KiB per request made it merge its free chunks each time, 1–2 % of the process's
    // CPU under load (BENCHMARKS.md, "An intake's future").
    Box::pin(intake::receive(state, remote.as_deref(), &body, rejection)).await
}

fn content_type(req: &HttpRequest) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// `application/json` or any `+json` type, with or without parameters.
fn is_json(req: &HttpRequest) -> bool {
    let ct = content_type(req);
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::{test::TestRequest, web, FromRequest};
    use esim_courier_store::{Keyring, Store, StoreOptions};

    use crate::ReceiverConfig;

    /// glibc's malloc serves requests below this from its per-thread cache; one at or above
    /// it first merges the free chunks of the fast bins, on every such request.
    const SMALL: usize = 1024;

    /// actix-web allocates the handler's future once per request, and the handler allocates
    /// the intake's. Each must stay under [`SMALL`] with room to spare for actix-web's own
    /// wrapper: with the store's futures inline, the first was 5 KiB, and merging free
    /// chunks for it cost 1–2 % of the process's CPU under load.
    #[actix_web::test]
    async fn the_webhook_futures_stay_small_enough_for_the_thread_cache() {
        let dir = tempfile::tempdir().expect("a directory");
        let store = Store::connect(&StoreOptions::new(
            format!("sqlite://{}", dir.path().join("sizes.db").display()),
            Arc::new(Keyring::random()),
        ))
        .await
        .expect("connects");
        let state = crate::state(store, ReceiverConfig::new(Vec::new(), Vec::new()));
        let intake = super::intake::receive(&state, None, b"{}", None);
        let intake_size = std::mem::size_of_val(&intake);
        drop(intake);
        let (req, mut payload) = TestRequest::default().to_http_parts();
        let payload = web::Payload::from_request(&req, &mut payload)
            .await
            .expect("a payload");
        let handler = super::receive(req, web::Path::from(String::new()), payload, state.clone());
        let handler_size = std::mem::size_of_val(&handler);
        drop(handler);
        assert!(
            handler_size <= SMALL / 2,
            "the handler's future takes {handler_size} bytes"
        );
        assert!(
            intake_size <= SMALL * 3 / 4,
            "the intake's future takes {intake_size} bytes"
        );
    }
}
