//! The provider's order records, mapped into esim-courier's domain types in this one place.
//!
//! The reference gives no field list for `/v1/order/e-sim/page` records (**assumed**): the
//! webhook's fields plus `status` (`PROCESSING`, `COMPLETED`, `FAILED`) and `createTime`
//! (Unix milliseconds as a string). A finished record goes through the same intake rules as
//! a webhook (`WebhookPayload`, with `status` in place of `result`), so the same order's
//! webhook is its duplicate and the same `ActivationCode`, `Iccid`, `Money` come out.

use esim_courier_core::{
    CurrencyTable, JsonScalar, OrderNo, OrderStatus, ProviderError, ProviderOrder, WebhookPayload,
};
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "orderNo")]
    order_no: Option<Box<RawValue>>,
    status: Option<Box<RawValue>>,
    #[serde(rename = "createTime")]
    create_time: Option<Box<RawValue>>,
}

/// One record of `/v1/order/e-sim/page`.
pub(crate) fn order(
    record: &RawValue,
    currencies: &CurrencyTable,
) -> Result<ProviderOrder, ProviderError> {
    let unusable =
        |why: String| ProviderError::permanent(format!("an order record is unusable: {why}"));
    let head: Head = serde_json::from_str(record.get())
        .map_err(|e| unusable(crate::envelope::shape_error(&e)))?;
    let text =
        |raw: &Option<Box<RawValue>>| raw.as_deref().and_then(|r| JsonScalar::of(r).into_text());
    let order_no = text(&head.order_no)
        .ok_or_else(|| unusable("no orderNo".into()))
        .and_then(|n| OrderNo::parse(&n).map_err(unusable))?;
    let status = match text(&head.status).as_deref().map(str::trim) {
        Some(s) if s.eq_ignore_ascii_case("PROCESSING") => OrderStatus::Processing,
        Some(s) if s.eq_ignore_ascii_case("COMPLETED") => OrderStatus::Completed,
        Some(s) if s.eq_ignore_ascii_case("FAILED") => OrderStatus::Failed,
        Some(other) => OrderStatus::Other(other.to_owned()),
        None => return Err(unusable(format!("order {order_no} has no status"))),
    };
    let created_at_ms = text(&head.create_time).and_then(|t| t.trim().parse().ok());
    let event = match status {
        OrderStatus::Completed | OrderStatus::Failed => Some(
            WebhookPayload::from_slice(record.get().as_bytes())
                .and_then(|p| p.into_event_with_result_in("status", currencies))
                .map_err(|e| unusable(e.to_string()))?,
        ),
        OrderStatus::Processing | OrderStatus::Other(_) => None,
    };
    Ok(ProviderOrder {
        order_no,
        status,
        created_at_ms,
        event,
        record: record.get().as_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        serde_json::from_str(json).expect("JSON")
    }

    #[test]
    fn the_documented_sample_record_maps_to_the_same_event_as_its_webhook() {
        let record = raw(
            r#"{"orderNo": "2026032516000000001", "status": "COMPLETED", "createTime": "1774425600000",
            "currency": "2", "iccid": "8910010000000000017", "lpa": "LPA:1$rsp.demo$69C32E7D00000001",
            "packageCode": "MY-1D-1GB", "packageName": "Malaysia, 1 Day, 1GB, 256kbps", "price": "9.99"}"#,
        );
        let order = order(&record, &CurrencyTable::default()).expect("usable");
        assert_eq!(order.status, OrderStatus::Completed);
        assert_eq!(order.created_at_ms, Some(1_774_425_600_000));
        let event = order.event.expect("a finished order's event");
        let webhook = WebhookPayload::from_slice(
            br#"{"orderNo": "2026032516000000001", "result": "COMPLETED", "currency": "2",
                "iccid": "8910010000000000017", "lpa": "LPA:1$rsp.demo$69C32E7D00000001", "price": "9.99"}"#,
        )
        .and_then(|p| p.into_event(&CurrencyTable::default()))
        .expect("the webhook");
        assert_eq!(
            event.fingerprint(),
            webhook.fingerprint(),
            "a webhook of it is a duplicate"
        );
        assert!(event.usable_activation_code().is_some());
        assert_eq!(
            event.contract_price.map(|m| m.to_string()).as_deref(),
            Some("9.99 USD")
        );
    }

    #[test]
    fn processing_and_odd_records() {
        let processing = order(
            &raw(r#"{"orderNo": 202611300000000000001, "status": "PROCESSING"}"#),
            &CurrencyTable::default(),
        )
        .expect("usable");
        assert_eq!(processing.order_no.as_str(), "202611300000000000001");
        assert_eq!(processing.status, OrderStatus::Processing);
        assert!(processing.event.is_none());
        assert!(order(
            &raw(r#"{"status": "COMPLETED"}"#),
            &CurrencyTable::default()
        )
        .is_err());
        assert!(order(
            &raw(r#"{"orderNo": "A\u0000B", "status": "FAILED"}"#),
            &CurrencyTable::default()
        )
        .is_err());
        assert!(order(&raw("[1]"), &CurrencyTable::default()).is_err());
    }
}
