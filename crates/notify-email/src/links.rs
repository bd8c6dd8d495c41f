//! One-tap install links for phones that read the email on the device itself.
//!
//! iOS 17.4+ installs an eSIM from `https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=<LPA>`;
//! Android has the de-facto equivalent on `esimsetup.android.com`. The LPA goes in a query
//! value, so everything but RFC 3986 unreserved characters is percent-encoded: `$` and `:`
//! would otherwise be read by some clients as URL syntax.

use esim_courier_core::ActivationCode;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const APPLE: &str = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=";
const ANDROID: &str = "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=";

/// Everything except the unreserved characters `A-Z a-z 0-9 - . _ ~`.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The LPA text, percent-encoded for a query value: `LPA%3A1%24rsp.demo%24...`.
pub fn encoded_lpa(code: &ActivationCode) -> String {
    utf8_percent_encode(&code.qr_text(), NOT_UNRESERVED).to_string()
}

/// The iPhone (iOS 17.4+) one-tap install link. Contains the secret matching ID.
pub fn ios_install_url(code: &ActivationCode) -> String {
    format!("{APPLE}{}", encoded_lpa(code))
}

/// The Android one-tap install link. Contains the secret matching ID.
pub fn android_install_url(code: &ActivationCode) -> String {
    format!("{ANDROID}{}", encoded_lpa(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_percent_encode_everything_but_unreserved_characters() {
        let code = ActivationCode::parse("LPA:1$rsp.demo$69C32E7Dxxxxxxxx").expect("valid");
        assert_eq!(
            ios_install_url(&code),
            "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA%3A1%24rsp.demo%2469C32E7Dxxxxxxxx"
        );
        assert_eq!(
            android_install_url(&code),
            "https://esimsetup.android.com/esim_qrcode_provisioning?carddata=LPA%3A1%24rsp.demo%2469C32E7Dxxxxxxxx"
        );
        let full =
            ActivationCode::parse("LPA:1$smdp.example.com:443$AB-12_x~y$1.2.3$1").expect("valid");
        assert_eq!(
            encoded_lpa(&full),
            "LPA%3A1%24smdp.example.com%3A443%24AB-12_x~y%241.2.3%241"
        );
    }
}
