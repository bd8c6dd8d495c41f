//! Any text as an activation code: parsing never panics; a parsed code's QR text parses back
//! to the same code, and its Display never shows the matching ID.
#![no_main]

use esim_courier_core::ActivationCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(code) = ActivationCode::parse(text) else { return };
    let again = ActivationCode::parse(&code.qr_text()).expect("a code's own QR text parses");
    assert_eq!(again, code);
    // The redacted form shows the address and OID but not the matching ID (checked when the
    // ID is long enough not to occur in the rest by chance).
    let id = code.matching_id();
    let elsewhere = code.smdp_address().contains(id) || code.smdp_oid().unwrap_or("").contains(id) || "LPA:1$[redacted]".contains(id);
    if id.len() >= 8 && !elsewhere {
        assert!(!code.to_string().contains(id));
        assert!(!format!("{code:?}").contains(id));
    }
});
