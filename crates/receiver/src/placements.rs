//! The placement API: `POST /api/v1/placements` places an order with the provider for a
//! customer, `GET /api/v1/placements/{reference}` says where it stands.
//!
//! The request is recorded with its customer and its outbox job in one transaction and
//! answered 202 at once; the dispatcher then calls the provider with
//! `idempotentKey = reference`. The same reference again answers the same placement (never a
//! second order); with another body it answers 409 `reference_conflict`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use esim_courier_store::{NewPlacement, Placement, PlacementRecord};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::orders::{authorize, customer, invalid, small_body, RegistrationBody};
use crate::{ApiError, AppState};

/// The longest reference and package code.
const MAX_KEY_LEN: usize = 64;

/// The placement body: the reference and package, then a registration's fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PlacementBody {
    reference: Option<String>,
    package_code: Option<String>,
    email: Option<String>,
    name: Option<String>,
    locale: Option<String>,
    price: Option<Box<RawValue>>,
    currency: Option<Box<RawValue>>,
}

/// A reference is sent to the provider as the `idempotentKey` header and names the
/// placement in URLs: 1 to 64 of `A-Z a-z 0-9 - _ . :` (a shop's order id, a UUID).
fn reference(raw: Option<&str>) -> Result<String, ApiError> {
    let r = raw.map(str::trim).unwrap_or_default();
    if r.is_empty() {
        return Err(invalid("reference", "reference is missing"));
    }
    if r.len() > MAX_KEY_LEN
        || !r
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    {
        return Err(invalid(
            "reference",
            format!("reference must be 1 to {MAX_KEY_LEN} characters of A-Z, a-z, 0-9, '-', '_', '.', ':'"),
        ));
    }
    Ok(r.to_owned())
}

fn package_code(raw: Option<&str>) -> Result<String, ApiError> {
    let p = raw.map(str::trim).unwrap_or_default();
    if p.is_empty() {
        return Err(invalid("packageCode", "packageCode is missing"));
    }
    if p.chars().count() > MAX_KEY_LEN || p.chars().any(char::is_control) {
        return Err(invalid(
            "packageCode",
            format!(
                "packageCode must be at most {MAX_KEY_LEN} characters, without control characters"
            ),
        ));
    }
    Ok(p.to_owned())
}

fn parse(body: &[u8], state: &AppState) -> Result<NewPlacement, ApiError> {
    let body: PlacementBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not a placement object: {e}"),
        )
    })?;
    let reference = reference(body.reference.as_deref())?;
    let package_code = package_code(body.package_code.as_deref())?;
    let registration = RegistrationBody {
        email: body.email,
        name: body.name,
        locale: body.locale,
        price: body.price,
        currency: body.currency,
    };
    Ok(NewPlacement {
        reference,
        package_code,
        customer: customer(registration, &state.config.currencies)?,
    })
}

/// The placement as the API shows it.
fn view(p: &PlacementRecord) -> Value {
    let mut v = json!({
        "reference": p.reference,
        "status": p.status.as_str(),
        "packageCode": p.package_code,
        "createdAt": p.created_at,
        "updatedAt": p.updated_at,
    });
    if let Some(order_no) = &p.order_no {
        v["orderNo"] = json!(order_no);
    }
    if let Some(error) = &p.error {
        v["error"] = json!(error);
    }
    v
}

/// `POST /api/v1/placements`: 202 for a new placement, 200 with the placement as it stands
/// for its reference again, 409 `reference_conflict` for its reference with another body.
pub(crate) async fn create(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    if state.config.lookup_after.is_none() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_not_configured",
            "placing orders needs the provider's order API: configure a [provider] section",
        ));
    }
    let body = small_body(&req, &mut payload, "a placement").await?;
    let asked = parse(&body, &state)?;
    let placement = state
        .store
        .place(&asked)
        .await
        .map_err(|e| ApiError::from_store(&e))?;
    let email = asked.customer.email.masked();
    match placement {
        Placement::Created(p) => {
            tracing::info!(reference = %p.reference, package_code = %p.package_code, email = %email, "placement accepted");
            Ok(HttpResponse::Accepted().json(view(&p)))
        }
        Placement::Existing(p) => {
            tracing::info!(reference = %p.reference, status = %p.status, "placement asked again; answered as it stands");
            Ok(HttpResponse::Ok().json(view(&p)))
        }
        Placement::Conflict(p) => {
            tracing::warn!(reference = %p.reference, "placement refused: its reference is taken by another request");
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "reference_conflict",
                format!("reference {:?} was already used for another placement (another package or customer); nothing was placed. Use a new reference for a new order", p.reference),
            )
            .field("reference"))
        }
    }
}

/// `GET /api/v1/placements/{reference}`: where the placement stands.
pub(crate) async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let reference = reference(Some(&path))?;
    let placement = state
        .store
        .placement(&reference)
        .await
        .map_err(|e| ApiError::from_store(&e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no placement has reference {reference:?}"),
            )
        })?;
    Ok(HttpResponse::Ok().json(view(&placement)))
}
