//! The webhook bodies the benchmark posts: the provider's own sample, with a distinct order
//! number, ICCID and activation code per request, so that every request is a real insert (never
//! a duplicate) and raises no intake warning (a warning would be logged at `warn` level and
//! measure the logger instead of the intake).

use bytes::Bytes;

/// Order numbers of one measurement: `<prefix><sequence>`, unique across the whole run.
#[derive(Debug, Clone)]
pub struct Orders {
    prefix: String,
}

impl Orders {
    /// Orders of the measurement `phase` in the run `run_id` (e.g. `B7f3a2c-sqlite-`).
    pub fn new(run_id: &str, phase: &str) -> Self {
        Self {
            prefix: format!("B{run_id}-{phase}-"),
        }
    }

    /// The text every order number of this measurement starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The order number of request `seq`.
    pub fn order_no(&self, seq: u64) -> String {
        format!("{}{seq:09}", self.prefix)
    }

    /// The sequence number of an order number of this measurement.
    pub fn seq_of(&self, order_no: &str) -> Option<u64> {
        order_no.strip_prefix(&self.prefix)?.parse().ok()
    }

    /// The webhook body of request `seq`: a COMPLETED order, as the provider sends it.
    pub fn webhook_body(&self, seq: u64) -> Bytes {
        let body = serde_json::json!({
            "orderNo": self.order_no(seq),
            "currency": "4",
            "iccid": iccid(seq),
            "lpa": format!("LPA:1$rsp.bench.example${}", matching_id(seq)),
            "packageCode": "YN2602130000001",
            "packageName": "Malaysia, 1 Day, 1GB, 256kbps",
            "price": "9.99",
            "result": "COMPLETED",
        });
        Bytes::from(body.to_string())
    }
}

/// A 19-digit ICCID with a correct Luhn check digit, distinct per `seq`.
pub fn iccid(seq: u64) -> String {
    let body = format!("896501240{:09}", seq % 1_000_000_000);
    let check = esim_courier_core::Iccid::check_digit(&body).unwrap_or('0');
    format!("{body}{check}")
}

/// A matching ID in the provider's style, distinct per `seq`.
pub fn matching_id(seq: u64) -> String {
    format!("K2-{:06X}-{:06X}", seq >> 24, seq & 0xFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_iccid_passes_the_same_luhn_check_as_the_intake() {
        for seq in [0, 1, 42, 999_999_999] {
            let parsed = esim_courier_core::Iccid::parse(&iccid(seq)).expect("an ICCID");
            assert!(parsed.luhn_valid(), "{}", iccid(seq));
        }
    }

    #[test]
    fn a_body_is_an_event_without_warnings() {
        let orders = Orders::new("t", "unit");
        let body = orders.webhook_body(7);
        let payload = esim_courier_core::WebhookPayload::from_slice(&body).expect("JSON");
        let event = payload
            .into_event(&esim_courier_core::CurrencyTable::default())
            .expect("an event");
        assert!(event.warnings.is_empty(), "{:?}", event.warnings);
        assert_eq!(event.order_no.as_str(), orders.order_no(7));
        assert_eq!(orders.seq_of(&orders.order_no(7)), Some(7));
    }
}
