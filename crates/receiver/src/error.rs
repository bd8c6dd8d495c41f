use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error answer: a status and a JSON body with a stable code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<&'static str>,
    delivered_to: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivered_to: Option<&'a str>,
}

impl ApiError {
    /// An error with a status, stable code and human sentence.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            delivered_to: None,
        }
    }

    /// Says where the activation email already went (a masked address), for
    /// `already_delivered`.
    #[must_use]
    pub fn delivered_to(mut self, masked_address: String) -> Self {
        self.delivered_to = Some(masked_address);
        self
    }

    /// Names the offending field.
    #[must_use]
    pub fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the token is missing or not valid",
        )
    }

    pub(crate) fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the order store is unreachable; nothing was recorded, please retry",
        )
    }

    /// Maps a store failure: unreachable is 503 (retry), anything else an opaque 500 logged
    /// with its cause chain.
    pub(crate) fn from_store(e: &esim_courier_store::StoreError) -> Self {
        metrics::counter!("esim_courier_store_errors_total", "component" => "receiver")
            .increment(1);
        if e.is_unavailable() {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(e), "store unavailable");
            Self::unavailable()
        } else {
            tracing::error!(error = %e, cause = ?std::error::Error::source(e), "store error");
            Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "an internal error occurred; it has been logged",
            )
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        // A hint that waiting helps: not for a 503 that only a configuration change clears
        // (`provider_not_configured`), which a client honouring it would retry forever.
        if self.status == StatusCode::TOO_MANY_REQUESTS
            || (self.status == StatusCode::SERVICE_UNAVAILABLE && self.code == "unavailable")
        {
            response.insert_header((actix_web::http::header::RETRY_AFTER, "1"));
        }
        response.json(Body {
            error: self.code,
            message: &self.message,
            field: self.field,
            delivered_to: self.delivered_to.as_deref(),
        })
    }
}

pub(crate) async fn not_found() -> HttpResponse {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint").error_response()
}

pub(crate) async fn method_not_allowed() -> HttpResponse {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
    .error_response()
}
