//! The provider's order webhook: the wire form, and the [`OrderEvent`] it is parsed into.

use std::collections::HashMap;

use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::{
    ActivationCode, ActivationCodeError, Currency, CurrencyTable, Iccid, JsonScalar, Money,
    OrderNo, OrderResult,
};

/// Why a webhook body was not accepted. Both variants are quarantined by the receiver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, or JSON that is not an object.
    #[error("body is not a JSON object: {0}")]
    InvalidJson(String),
    /// A JSON object without a usable `orderNo` or `result`.
    #[error("{message}")]
    Invalid {
        /// The wire name of the offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// The order webhook as it arrives: a JSON object whose values may be strings or numbers.
///
/// Unknown keys are fine (they stay in the raw receipt); only `orderNo` and `result` are
/// required. Everything else that is odd becomes a warning on the event. Each value is kept
/// as raw JSON until it is read, so a number keeps its exact text ([`JsonScalar`]).
#[derive(Debug)]
pub struct WebhookPayload {
    object: HashMap<String, Box<RawValue>>,
}

/// One order event, parsed. Holding one means `orderNo` and `result` were usable; the other
/// fields carry what could be understood of them.
#[derive(Debug, Clone)]
pub struct OrderEvent {
    /// The provider's order number.
    pub order_no: OrderNo,
    /// COMPLETED, FAILED, or an unrecognised value.
    pub result: OrderResult,
    /// The ICCID as received (trimmed), empty when absent.
    pub iccid_text: String,
    /// The ICCID, if it parsed.
    pub iccid: Option<Iccid>,
    /// The activation code, if one was given: parsed, or why it is unusable.
    pub activation_code: Option<Result<ActivationCode, ActivationCodeError>>,
    /// The provider's package identifier.
    pub package_code: Option<String>,
    /// The package's human name, e.g. `Malaysia, 1 Day, 1GB, 256kbps`.
    pub package_name: Option<String>,
    /// The currency code as understood.
    pub currency: Option<Currency>,
    /// The reseller's contract cost with the provider (operators only, never customers).
    pub contract_price: Option<Money>,
    /// Odd things found while parsing; none of them blocks intake.
    pub warnings: Vec<String>,
    /// See [`OrderEvent::fingerprint`].
    fingerprint: String,
}

impl WebhookPayload {
    /// Parses a body as a JSON object.
    ///
    /// ```
    /// use esim_courier_core::{CurrencyTable, OrderResult, WebhookPayload};
    ///
    /// let body = br#"{"orderNo": "B1", "result": "COMPLETED", "iccid": "8944500102198304826",
    ///     "lpa": "LPA:1$smdp.example.com$K2-4KJ2T-1B6Q9X", "price": "9.99", "currency": "2"}"#;
    /// let event = WebhookPayload::from_slice(body)
    ///     .and_then(|p| p.into_event(&CurrencyTable::default()))
    ///     .unwrap();
    /// assert_eq!(event.result, OrderResult::Completed);
    /// assert!(event.usable_activation_code().is_some());
    /// // The same event with its keys in another order is the same event (a provider retry).
    /// let again = br#"{"lpa": "LPA:1$smdp.example.com$K2-4KJ2T-1B6Q9X", "iccid": "8944500102198304826",
    ///     "result": "COMPLETED", "orderNo": "B1"}"#;
    /// let again = WebhookPayload::from_slice(again)
    ///     .and_then(|p| p.into_event(&CurrencyTable::default()))
    ///     .unwrap();
    /// assert_eq!(event.fingerprint(), again.fingerprint());
    /// ```
    pub fn from_slice(body: &[u8]) -> Result<Self, PayloadError> {
        let invalid = |e: serde_json::Error| PayloadError::InvalidJson(e.to_string());
        let whole: &RawValue = serde_json::from_slice(body).map_err(invalid)?;
        if whole.get().starts_with('{') {
            Ok(Self {
                object: serde_json::from_str(whole.get()).map_err(invalid)?,
            })
        } else {
            Err(PayloadError::InvalidJson(format!(
                "expected an object, found {}",
                JsonScalar::of(whole).kind()
            )))
        }
    }

    /// The `orderNo`, if it is usable: lets a quarantined body still be tied to its order.
    pub fn order_no(&self) -> Option<OrderNo> {
        self.field("orderNo")
            .into_text()
            .and_then(|s| OrderNo::parse(&s).ok())
    }

    /// A field's value; an absent field reads as `null`.
    fn field(&self, key: &str) -> JsonScalar {
        self.object
            .get(key)
            .map_or(JsonScalar::Null, |raw| JsonScalar::of(raw))
    }

    /// Parses the payload into an order event.
    pub fn into_event(self, currencies: &CurrencyTable) -> Result<OrderEvent, PayloadError> {
        self.into_event_with_result_in("result", currencies)
    }

    /// Parses the payload into an order event whose result is in the field `result_key`: the
    /// same rules for the provider's order records (`"status"`) as for its webhooks.
    pub fn into_event_with_result_in(
        self,
        result_key: &'static str,
        currencies: &CurrencyTable,
    ) -> Result<OrderEvent, PayloadError> {
        let mut warnings = Vec::new();
        // Not rewritten: an order number with a control character (NUL included) is refused,
        // so "A\u0000B" can never be taken for another order's "A\u{FFFD}B".
        let order_no = self.required("orderNo")?;
        let order_no = OrderNo::parse(&order_no).map_err(|message| PayloadError::Invalid {
            field: "orderNo",
            message,
        })?;
        let result = OrderResult::parse(&without_nul(self.required(result_key)?));

        let mut optional = |key: &'static str| -> Option<String> {
            match self.field(key) {
                JsonScalar::Null => None,
                JsonScalar::Other(kind) => {
                    warnings.push(format!("{key} is {kind}, expected a string; ignored"));
                    None
                }
                JsonScalar::Text(s) | JsonScalar::Number(s) => {
                    Some(without_nul(s.trim().to_owned())).filter(|s| !s.is_empty())
                }
            }
        };
        let iccid_text = optional("iccid").unwrap_or_default();
        let lpa = optional("lpa");
        let package_code = optional("packageCode");
        let package_name = optional("packageName");
        let currency_text = optional("currency");
        let price_text = optional("price");

        let iccid = if iccid_text.is_empty() {
            None
        } else {
            match Iccid::parse(&iccid_text) {
                Ok(i) => {
                    if !i.luhn_valid() {
                        warnings.push(format!("ICCID {i} fails the Luhn check"));
                    }
                    Some(i)
                }
                Err(e) => {
                    warnings.push(format!("ICCID {iccid_text:?} kept as text: {e}"));
                    None
                }
            }
        };
        let activation_code = lpa.as_deref().map(ActivationCode::parse);
        if let Some(Err(e)) = &activation_code {
            warnings.push(format!("activation code is unusable: {e}"));
        }
        let currency = currency_text.as_deref().map(|c| currencies.parse(c));
        if let Some(Currency::Unknown(c)) = &currency {
            warnings.push(format!("currency code {c:?} is not in the currency table"));
        }
        let contract_price = match (price_text, &currency) {
            (Some(p), Some(c)) => match Money::parse(&p, c.clone()) {
                Ok(m) => Some(m),
                Err(e) => {
                    warnings.push(e);
                    None
                }
            },
            (Some(p), None) => {
                warnings.push(format!("price {p:?} has no currency; ignored"));
                None
            }
            (None, _) => None,
        };
        if result == OrderResult::Completed {
            if iccid_text.is_empty() {
                warnings.push("COMPLETED order without an ICCID".into());
            }
            if activation_code.is_none() {
                warnings.push("COMPLETED order without an activation code".into());
            }
        }
        let mut event = OrderEvent {
            order_no,
            result,
            iccid_text,
            iccid,
            activation_code,
            package_code,
            package_name,
            currency,
            contract_price,
            warnings,
            fingerprint: String::new(),
        };
        event.fingerprint = event.digest(lpa.as_deref());
        Ok(event)
    }
}

impl OrderEvent {
    /// The usable activation code, if any.
    pub fn usable_activation_code(&self) -> Option<&ActivationCode> {
        self.activation_code.as_ref().and_then(|r| r.as_ref().ok())
    }

    /// The ICCID to show: normalised when it parsed, else as received.
    pub fn iccid_display(&self) -> &str {
        self.iccid
            .as_ref()
            .map_or(self.iccid_text.as_str(), Iccid::as_str)
    }

    /// A digest of what makes two deliveries "the same event": the result, the ICCID and the
    /// activation code, normalised. JSON key order, spacing, number-vs-string and the other
    /// fields do not change it. Hashed so the stored key carries no matching ID.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn digest(&self, lpa_text: Option<&str>) -> String {
        let lpa = match self.usable_activation_code() {
            Some(code) => code.qr_text(),
            None => lpa_text.unwrap_or_default().trim().to_owned(),
        };
        event_digest(self.result.as_str(), self.iccid_display(), &lpa)
    }
}

/// An event's digest ([`OrderEvent::fingerprint`]) from its parts as stored: the result, the
/// ICCID as shown, and the usable activation code's QR text (else the `lpa` text received,
/// trimmed). The store recomputes it when the blind index's key changes.
pub fn event_digest(result: &str, iccid_display: &str, lpa: &str) -> String {
    let mut h = Sha256::new();
    h.update(result.as_bytes());
    h.update([0]);
    h.update(iccid_display.as_bytes());
    h.update([0]);
    h.update(lpa.as_bytes());
    hex::encode(h.finalize())
}

impl WebhookPayload {
    /// A required field's text (a string, or a number's exact text; the spec says strings,
    /// some senders send numbers), trimmed.
    fn required(&self, key: &'static str) -> Result<String, PayloadError> {
        let invalid = |message: String| PayloadError::Invalid {
            field: key,
            message,
        };
        match self.field(key) {
            JsonScalar::Null if !self.object.contains_key(key) => {
                Err(invalid(format!("{key} is missing")))
            }
            JsonScalar::Text(s) | JsonScalar::Number(s) if !s.trim().is_empty() => {
                Ok(s.trim().to_owned())
            }
            JsonScalar::Text(_) | JsonScalar::Number(_) => Err(invalid(format!("{key} is empty"))),
            other => Err(invalid(format!(
                "{key} is {}, expected a string",
                other.kind()
            ))),
        }
    }
}

/// NUL characters become U+FFFD in the fields that are kept as text: no database text type
/// can hold them, and the raw body keeps the original anyway. (Never the order number: see
/// [`WebhookPayload::into_event`].)
fn without_nul(s: String) -> String {
    if s.contains('\0') {
        s.replace('\0', "\u{FFFD}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<OrderEvent, PayloadError> {
        WebhookPayload::from_slice(body.as_bytes())?.into_event(&CurrencyTable::default())
    }

    const SAMPLE: &str = r#"{
        "orderNo": "2026032516xxxxxxxxxxx", "currency": "4", "iccid": "8910010000xxxxxxxxxx",
        "lpa": "LPA:1$rsp.demo$69C32E7Dxxxxxxxx", "packageCode": "YN2602130xxxxxx",
        "packageName": "Malaysia, 1 Day, 1GB, 256kbps", "price": "9.99", "result": "COMPLETED"
    }"#;

    #[test]
    fn the_providers_sample_parses_with_a_warning_for_its_placeholder_iccid() {
        let e = parse(SAMPLE).expect("sample is accepted");
        assert_eq!(e.order_no.as_str(), "2026032516xxxxxxxxxxx");
        assert_eq!(e.result, OrderResult::Completed);
        assert_eq!(e.iccid, None);
        assert_eq!(e.iccid_display(), "8910010000xxxxxxxxxx");
        assert_eq!(
            e.usable_activation_code()
                .map(ActivationCode::qr_text)
                .as_deref(),
            Some("LPA:1$rsp.demo$69C32E7Dxxxxxxxx")
        );
        assert_eq!(
            e.contract_price
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some("9.99 SGD")
        );
        assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
    }

    #[test]
    fn numbers_are_accepted_where_strings_are_expected() {
        let e = parse(r#"{"orderNo": 123456, "result": "FAILED", "currency": 2, "price": 12.5}"#)
            .expect("accepted");
        assert_eq!(e.order_no.as_str(), "123456");
        let price = e.contract_price.expect("a price");
        assert_eq!(
            price.amount().to_string(),
            "12.5",
            "the number's exact value"
        );
        assert_eq!(
            price.to_string(),
            "12.50 USD",
            "shown as a price is written"
        );
    }

    #[test]
    fn missing_or_unusable_required_fields_name_the_field() {
        let cases = [
            (r#"{"result": "COMPLETED"}"#, "orderNo"),
            (r#"{"orderNo": "", "result": "COMPLETED"}"#, "orderNo"),
            (r#"{"orderNo": ["a"], "result": "COMPLETED"}"#, "orderNo"),
            (r#"{"orderNo": "1"}"#, "result"),
            (r#"{"orderNo": "1", "result": null}"#, "result"),
        ];
        for (body, want) in cases {
            match parse(body) {
                Err(PayloadError::Invalid { field, .. }) => assert_eq!(field, want, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        for body in ["", "[1]", "{", "\"x\"", "{\"a\":1}x"] {
            assert!(
                matches!(parse(body), Err(PayloadError::InvalidJson(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn fingerprint_ignores_key_order_spacing_and_number_forms() {
        let a = parse(SAMPLE).expect("ok");
        let b = parse(r#"{"result":"completed","lpa":"lpa:1$rsp.demo$69C32E7Dxxxxxxxx","iccid":"8910010000xxxxxxxxxx","orderNo":"2026032516xxxxxxxxxxx","price":9.99}"#).expect("ok");
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = parse(r#"{"result":"FAILED","orderNo":"2026032516xxxxxxxxxxx"}"#).expect("ok");
        assert_ne!(a.fingerprint(), c.fingerprint());
    }

    #[test]
    fn nul_characters_never_reach_the_event() {
        let e = parse(
            "{\"orderNo\":\"N1\",\"result\":\"FAIL\\u0000ED\",\"packageName\":\"a\\u0000b\"}",
        )
        .expect("accepted");
        assert_eq!(e.package_name.as_deref(), Some("a\u{FFFD}b"));
        assert_eq!(e.result, OrderResult::Unrecognised("FAIL\u{FFFD}ED".into()));
    }

    #[test]
    fn long_numeric_order_numbers_and_iccids_keep_every_digit() {
        let a = parse(r#"{"orderNo": 202603251612345678901, "result": "COMPLETED", "iccid": 89100100001234567890}"#)
            .expect("accepted");
        let b = parse(r#"{"orderNo": 202603251612345678902, "result": "COMPLETED"}"#)
            .expect("accepted");
        assert_eq!(a.order_no.as_str(), "202603251612345678901");
        assert_eq!(b.order_no.as_str(), "202603251612345678902");
        assert_eq!(a.iccid_display(), "89100100001234567890");
        assert!(a.iccid.is_some(), "{:?}", a.warnings);
    }

    #[test]
    fn a_price_that_is_no_decimal_amount_is_dropped_with_a_warning() {
        let e = parse(r#"{"orderNo": "N1", "result": "FAILED", "currency": 2, "price": 1e400}"#)
            .expect("accepted");
        assert_eq!(e.contract_price, None);
        assert!(
            e.warnings.iter().any(|w| w.contains("1e400")),
            "{:?}",
            e.warnings
        );
        // A long numeric price stays exact, never a float.
        let e = parse(r#"{"orderNo": "N1", "result": "FAILED", "currency": 2, "price": 12345678901234567.25}"#)
            .expect("accepted");
        assert_eq!(
            e.contract_price.map(|m| m.to_string()).as_deref(),
            Some("12345678901234567.25 USD")
        );
    }

    #[test]
    fn an_order_number_with_a_control_character_is_refused_not_rewritten() {
        for body in [
            "{\"orderNo\":\"A\\u0000B\",\"result\":\"FAILED\"}",
            "{\"orderNo\":\"A\\u001bB\",\"result\":\"FAILED\"}",
            "{\"orderNo\":\"A\\u007fB\",\"result\":\"FAILED\"}",
        ] {
            match parse(body) {
                Err(PayloadError::Invalid { field, .. }) => assert_eq!(field, "orderNo", "{body}"),
                other => panic!("{body}: {other:?}"),
            }
            let payload = WebhookPayload::from_slice(body.as_bytes()).expect("JSON");
            assert_eq!(payload.order_no(), None, "{body}");
        }
        let e = parse("{\"orderNo\":\"A\\uFFFDB\",\"result\":\"FAILED\"}").expect("accepted");
        assert_eq!(e.order_no.as_str(), "A\u{FFFD}B");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let body = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(parse(&body), Err(PayloadError::InvalidJson(_))));
    }
}
