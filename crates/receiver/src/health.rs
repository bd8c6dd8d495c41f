use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::{ApiError, AppState};

/// Liveness: the process answers.
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the store answers.
pub(crate) async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.store.ping().await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check: store unreachable");
            Err(ApiError::unavailable())
        }
    }
}
