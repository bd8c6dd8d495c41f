//! Any bytes as a webhook body: parsing never panics, and an accepted event is coherent.
#![no_main]

use esim_courier_core::{CurrencyTable, WebhookPayload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = WebhookPayload::from_slice(data) else { return };
    let order_no = payload.order_no();
    if let Ok(event) = payload.into_event(&CurrencyTable::default()) {
        assert!(!event.order_no.as_str().is_empty());
        assert_eq!(Some(&event.order_no), order_no.as_ref());
        assert_eq!(event.fingerprint().len(), 64);
        if let Some(code) = event.usable_activation_code() {
            assert!(code.qr_text().starts_with("LPA:1$"));
        }
    }
});
