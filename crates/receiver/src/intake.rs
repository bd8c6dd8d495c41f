//! The intake service: from a raw authenticated body to a committed event and its jobs.

use actix_web::http::StatusCode;
use esim_courier_core::{Alert, Disposition, OrderEvent, PayloadError, WebhookPayload};
use esim_courier_store::{now_ms, NewJob, NewReceipt, Planned};

use crate::{ApiError, AppState};

/// Why a body from an authenticated sender is refused before parsing.
#[derive(Debug)]
pub(crate) enum Rejection {
    TooLarge { limit: usize },
    MediaType(String),
    Signature,
}

/// What the webhook answers on success.
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) status: &'static str,
    pub(crate) order_no: String,
}

/// Parses, records and routes one delivery. Anything refused is still kept (quarantined)
/// with its reason and raises an alert; if even that cannot be stored the answer is 503 so
/// the provider retries.
pub(crate) async fn receive(
    state: &AppState,
    remote: Option<&str>,
    body: &[u8],
    rejection: Option<Rejection>,
) -> Result<Accepted, ApiError> {
    let receipt = NewReceipt {
        received_at_ms: now_ms(),
        remote_addr: remote,
        body,
        source: esim_courier_core::EventSource::Webhook,
    };
    // Parsed once: a refused body is still tied to its order when it names one.
    let parsed = WebhookPayload::from_slice(body);
    let order_no = parsed.as_ref().ok().and_then(WebhookPayload::order_no);
    // Decided before anything waits, and the event boxed: the parsed payload is not kept
    // in the future, and the event only as a pointer.
    let event = match (rejection, parsed) {
        (Some(rejection), _) => Err(refused(rejection)),
        (None, Err(e)) => Err(unusable(e)),
        (None, Ok(payload)) => payload
            .into_event(&state.config.currencies)
            .map(Box::new)
            .map_err(unusable),
    };
    let error = match event {
        Ok(event) => return record(state, receipt, &event).await,
        Err(error) => error,
    };
    // Boxed: the store's quarantine goes through sqlx, whose futures are large; inline, they
    // would make every webhook's future as large (BENCHMARKS.md, "An intake's future").
    let order_no = order_no.as_ref().map(|o| o.as_str());
    Err(Box::pin(quarantine(state, receipt, order_no, error)).await)
}

/// The answer to a body refused before parsing.
fn refused(rejection: Rejection) -> ApiError {
    match rejection {
        Rejection::TooLarge { limit } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than {limit} bytes"),
        ),
        Rejection::Signature => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "the signature header is missing or does not match the body",
        ),
        Rejection::MediaType(ct) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "Content-Type must be application/json, got {:?}",
                if ct.is_empty() {
                    "nothing"
                } else {
                    ct.as_str()
                }
            ),
        ),
    }
}

/// The answer to a body that is not a usable order webhook.
fn unusable(e: PayloadError) -> ApiError {
    match e {
        PayloadError::InvalidJson(m) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not a JSON object: {m}"),
        ),
        PayloadError::Invalid { field, message } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payload", message).field(field)
        }
    }
}

async fn record(
    state: &AppState,
    receipt: NewReceipt<'_>,
    event: &OrderEvent,
) -> Result<Accepted, ApiError> {
    for w in &event.warnings {
        tracing::warn!(order_no = %event.order_no, warning = %w, "webhook accepted with a warning");
    }
    let outcome = state
        .store
        .intake(receipt, event, Planned::routed(state.config.routes.clone()))
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let status = match outcome.disposition {
        Disposition::Accepted => "accepted",
        Disposition::Duplicate => "duplicate",
        Disposition::Conflict(_) => "conflict",
    };
    tracing::info!(order_no = %event.order_no, result = %event.result, status, jobs = outcome.jobs, "webhook recorded");
    Ok(Accepted {
        status,
        order_no: event.order_no.to_string(),
    })
}

async fn quarantine(
    state: &AppState,
    receipt: NewReceipt<'_>,
    order_no: Option<&str>,
    error: ApiError,
) -> ApiError {
    let reason = format!("{}: {error}", error.code());
    let status = actix_web::ResponseError::status_code(&error).as_u16();
    let alert = Alert::webhook_rejected(order_no, status, &reason, receipt.received_at_ms);
    let jobs = alert_jobs(state, &alert);
    match state
        .store
        .quarantine(receipt, order_no, status, &reason, |_| jobs)
        .await
    {
        Ok(id) => {
            tracing::warn!(receipt = id, status, reason = %reason, "webhook refused and quarantined");
            error
        }
        Err(e) => ApiError::from_store(&e),
    }
}

fn alert_jobs(state: &AppState, alert: &Alert) -> Vec<NewJob> {
    NewJob::alerts(&state.config.routes, alert)
}
