//! The order API: `PUT /api/v1/orders/{orderNo}` registers the customer,
//! `GET /api/v1/orders/{orderNo}` shows the order, its events and its notifications.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use esim_courier_core::{
    ActivationCode, Currency, CurrencyTable, Customer, EmailAddress, JsonScalar, Locale, Money,
    OrderNo,
};
use esim_courier_store::Registration;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth_failures::{self, Endpoint};
use crate::{ApiError, AppState};

/// A registration is a handful of short fields.
const REGISTRATION_LIMIT: usize = 16 * 1024;

pub(crate) fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)
        .unwrap_or("");
    if state.config.api_tokens.accepts(token.trim()) {
        Ok(())
    } else {
        auth_failures::refused(state, Endpoint::Api, state.guard.source(req));
        Err(ApiError::unauthorized())
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme's name is
/// case-insensitive (RFC 9110, 11.1): a shop whose client sends `bearer` is not a stranger
/// guessing tokens.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("Bearer").then_some(token)
}

fn order_no(raw: &str) -> Result<OrderNo, ApiError> {
    OrderNo::parse(raw).map_err(|m| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payload", m).field("orderNo")
    })
}

/// The registration body. Numbers are accepted for `price` and `currency`, read as their
/// exact text (never through a float).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegistrationBody {
    pub(crate) email: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) locale: Option<String>,
    pub(crate) price: Option<Box<RawValue>>,
    pub(crate) currency: Option<Box<RawValue>>,
}

fn text(v: Option<&RawValue>) -> Option<String> {
    JsonScalar::of(v?)
        .into_text()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_payload", message).field(field)
}

fn parse_registration(body: &[u8], currencies: &CurrencyTable) -> Result<Customer, ApiError> {
    let body: RegistrationBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not a registration object: {e}"),
        )
    })?;
    customer(body, currencies)
}

/// The customer a registration (or a placement) names: the one place its fields' rules
/// are written.
pub(crate) fn customer(
    body: RegistrationBody,
    currencies: &CurrencyTable,
) -> Result<Customer, ApiError> {
    let email = body
        .email
        .as_deref()
        .ok_or_else(|| invalid("email", "email is missing"))?;
    let email = EmailAddress::parse(email).map_err(|e| invalid("email", e.to_string()))?;
    let locale = match body
        .locale
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
    {
        Some(l) => Some(Locale::parse(l).map_err(|e| invalid("locale", e.to_string()))?),
        None => None,
    };
    let price = text(body.price.as_deref());
    // The retail price is printed in the customer's email: its currency must be one we know
    // how to name, not any text (on PostgreSQL a NUL in it would even fail the write).
    let currency =
        match text(body.currency.as_deref()).map(|c| currencies.parse(&c)) {
            Some(Currency::Unknown(_)) => return Err(invalid(
                "currency",
                "currency is neither a three-letter ISO 4217 code nor a configured currency number",
            )),
            other => other,
        };
    let retail = match (price, currency) {
        (Some(p), Some(c)) => Some(Money::parse(&p, c).map_err(|e| invalid("price", e))?),
        (Some(_), None) => return Err(invalid("currency", "a price needs its currency")),
        (None, Some(_)) => return Err(invalid("price", "a currency needs its price")),
        (None, None) => None,
    };
    let name = body
        .name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(invalid("name", "name is longer than 200 characters"));
    }
    if name
        .as_ref()
        .is_some_and(|n| n.chars().any(char::is_control))
    {
        return Err(invalid("name", "name contains control characters"));
    }
    Ok(Customer {
        email,
        name,
        locale,
        retail_price: retail,
    })
}

/// The body of an order API request (a registration, a placement): a handful of short
/// fields, at most [`REGISTRATION_LIMIT`] bytes; `what` names it in the 413 answer.
pub(crate) async fn small_body(
    req: &HttpRequest,
    payload: &mut web::Payload,
    what: &str,
) -> Result<web::BytesMut, ApiError> {
    let body = crate::body::read(req, payload, REGISTRATION_LIMIT).await?;
    if body.too_large {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("{what} is at most {REGISTRATION_LIMIT} bytes"),
        ));
    }
    Ok(body.bytes)
}

/// `PUT /api/v1/orders/{orderNo}`: 201 for a new registration, 200 for a replaced one.
pub(crate) async fn register(
    req: HttpRequest,
    path: web::Path<String>,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let body = small_body(&req, &mut payload, "a registration").await?;
    let order_no = order_no(&path)?;
    let customer = parse_registration(&body, &state.config.currencies)?;
    let registration = state
        .store
        .register_customer(&order_no, &customer)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let email = customer.email.masked();
    let status = match registration {
        Registration::Created => StatusCode::CREATED,
        Registration::Updated => StatusCode::OK,
        Registration::AlreadyDelivered { to } => {
            let to = to.masked();
            tracing::warn!(order_no = %order_no, email = %email, delivered_to = %to, "registration refused: the activation email was already delivered to another address");
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_delivered",
                format!("the activation email of order {order_no} was already delivered to {to}; nothing was changed (an operator can send it elsewhere with `esim-courier resend --to`)"),
            )
            .field("email")
            .delivered_to(to));
        }
    };
    tracing::info!(order_no = %order_no, email = %email, created = status == StatusCode::CREATED, "customer registered");
    if let Some(after) = state.config.lookup_after {
        // Not in the registration's transaction: should this fail, the sweep still finds the
        // order, so the registration stands and the failure is logged.
        let at = esim_courier_store::now_ms()
            .saturating_add(i64::try_from(after.as_millis()).unwrap_or(i64::MAX));
        if let Err(e) = state.store.schedule_lookup(order_no.as_str(), at).await {
            tracing::error!(order_no = %order_no, error = %e, "scheduling the order's lookup failed");
        }
    }
    Ok(HttpResponse::build(status)
        .json(json!({"status": "registered", "orderNo": order_no.as_str()})))
}

/// `GET /api/v1/orders/{orderNo}`: the order, its events (activation code masked), its
/// notifications with every attempt.
pub(crate) async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let order_no = order_no(&path)?;
    let details = state
        .store
        .order_details(order_no.as_str())
        .await
        .map_err(|e| ApiError::from_store(&e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("order {order_no} is not known"),
            )
        })?;
    let events: Vec<Value> = details
        .events
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "receivedAt": e.received_at,
                "result": e.result.as_str(),
                "disposition": e.disposition,
                "iccid": e.iccid,
                "activationCode": e.activation_code.as_ref().map(ActivationCode::masked),
                "packageCode": e.package_code,
                "packageName": e.package_name,
                "price": e.contract_price.as_ref().map(|m| m.amount().to_string()),
                "currency": e.currency.as_ref().map(Currency::code),
                "warnings": e.warnings,
                "source": e.source.as_str(),
            })
        })
        .collect();
    let customer = details.order.customer.as_ref().map(|c| {
        json!({
            "email": c.email.as_str(),
            "name": c.name,
            "locale": c.locale.as_ref().map(Locale::as_str),
            "price": c.retail_price.as_ref().map(|m| m.amount().to_string()),
            "currency": c.retail_price.as_ref().map(|m| m.currency().code()),
        })
    });
    Ok(HttpResponse::Ok().json(json!({
        "orderNo": details.order.order_no,
        "state": details.order.state,
        "createdAt": details.order.created_at,
        "updatedAt": details.order.updated_at,
        "customer": customer,
        "placement": details.placement,
        "events": events,
        "notifications": details.jobs,
        "receipts": details.receipts.iter().map(|(id, at, outcome)| json!({"id": id, "receivedAt": at, "outcome": outcome})).collect::<Vec<_>>(),
    })))
}
