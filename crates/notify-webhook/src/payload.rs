use esim_courier_core::{Audience, Content, Notification};
use serde_json::{json, Value};

/// The JSON body: `{"type": "...", "key": "...", "data": {...}}`. Operators never get the
/// activation code; a customer-audience webhook does.
pub(crate) fn body(n: &Notification, audience: Audience) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&envelope(n, audience)?)
}

/// `{"type", "key", "data"}`; a digest's data is `{"items": [<envelope>, ...]}`.
fn envelope(n: &Notification, audience: Audience) -> serde_json::Result<Value> {
    let (kind, data): (String, Value) = match &n.content {
        Content::OrderCompleted(o) => {
            let code = match audience {
                Audience::Customer => json!({
                    "lpa": o.activation_code.qr_text(),
                    "smdpAddress": o.activation_code.smdp_address(),
                    "matchingId": o.activation_code.matching_id(),
                    "confirmationCodeRequired": o.activation_code.confirmation_code_required(),
                }),
                Audience::Operator => Value::Null,
            };
            (
                "order.completed".into(),
                json!({
                    "orderNo": o.order_no.as_str(),
                    "iccid": o.iccid,
                    "packageCode": o.package_code,
                    "packageName": o.package_name,
                    "activationCode": code,
                    "customerEmail": o.customer.as_ref().map(|c| match audience {
                        Audience::Customer => c.email.as_str().to_owned(),
                        Audience::Operator => c.email.masked(),
                    }),
                    "receivedAtMs": o.received_at_ms,
                }),
            )
        }
        Content::OrderFailed(o) => (
            "order.failed".into(),
            json!({
                "orderNo": o.order_no.as_str(),
                "packageCode": o.package_code,
                "packageName": o.package_name,
                "price": o.contract_price.as_ref().map(|m| m.amount().to_string()),
                "currency": o.contract_price.as_ref().map(|m| m.currency().code().to_owned()),
                "receivedAtMs": o.received_at_ms,
            }),
        ),
        Content::Alert(a) => (format!("alert.{}", a.kind), serde_json::to_value(a)?),
        Content::Digest(items) => {
            let items = items
                .iter()
                .map(|i| envelope(i, audience))
                .collect::<serde_json::Result<Vec<_>>>()?;
            ("digest".into(), json!({ "items": items }))
        }
    };
    Ok(json!({"type": kind, "key": n.key, "data": data}))
}
