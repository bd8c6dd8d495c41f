use std::fmt;

/// An eSIM activation code as GSMA SGP.22 defines it:
/// `LPA:1$<SM-DP+ address>$<matching ID>[$<SM-DP+ OID>[$<confirmation code required flag>]]`.
///
/// The matching ID is a credential (whoever has it can install the eSIM), so `Debug` and
/// `Display` redact it. Use [`ActivationCode::qr_text`] for the one place it must appear in
/// full: the QR code and manual-entry text of the customer's email.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ActivationCode {
    smdp_address: String,
    matching_id: String,
    smdp_oid: Option<String>,
    confirmation_code_required: bool,
}

/// Why a text is not a usable activation code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivationCodeError {
    /// Nothing was given.
    #[error("activation code is empty")]
    Empty,
    /// The format field is not `1`, the only one SGP.22 defines. The field is not kept: a
    /// text with no `$` at all (a bare matching ID, an install link) is all "format field",
    /// and this error reaches logs, alerts and the order's warnings.
    #[error("activation code does not start with format \"1\", the only one defined (its text is not shown: it may hold the matching ID)")]
    Format,
    /// Fewer than three `$`-separated fields.
    #[error("activation code has {0} fields; expected format, SM-DP+ address and matching ID")]
    TooFewFields(usize),
    /// More than five `$`-separated fields: a `$` where none may be.
    #[error("activation code has {0} fields; at most 5 are defined (a '$' where none may be)")]
    TooManyFields(usize),
    /// The SM-DP+ address is empty or not a host name.
    #[error("SM-DP+ address is not a host name")]
    SmdpAddress,
    /// The matching ID is empty or contains whitespace.
    #[error("matching ID is empty or contains whitespace")]
    MatchingId,
    /// The OID field is not a dotted number.
    #[error("SM-DP+ OID is not a dotted number")]
    Oid,
    /// The 5th field is neither empty nor `1`.
    #[error("confirmation code flag must be \"1\" or empty")]
    ConfirmationFlag,
}

impl ActivationCode {
    /// Parses an activation code. The `LPA:` prefix is optional and case-insensitive, so is the
    /// host name; surrounding whitespace is ignored.
    ///
    /// ```
    /// use esim_courier_core::ActivationCode;
    ///
    /// let code = ActivationCode::parse(" lpa:1$smdp.example.com$K2-4KJ2T-1B6Q9X ").unwrap();
    /// assert_eq!(code.smdp_address(), "smdp.example.com");
    /// assert_eq!(code.qr_text(), "LPA:1$smdp.example.com$K2-4KJ2T-1B6Q9X");
    /// // The matching ID is a secret: only its end is ever shown.
    /// assert!(!code.masked().contains("K2-4KJ2T"));
    /// assert!(ActivationCode::parse("not a code").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, ActivationCodeError> {
        let s = raw.trim();
        let s = match s.get(..4) {
            Some(prefix) if prefix.eq_ignore_ascii_case("LPA:") => &s[4..],
            _ => s,
        };
        if s.is_empty() {
            return Err(ActivationCodeError::Empty);
        }
        let fields: Vec<&str> = s.split('$').collect();
        if fields[0] != "1" {
            return Err(ActivationCodeError::Format);
        }
        match fields.len() {
            0..=2 => return Err(ActivationCodeError::TooFewFields(fields.len())),
            3..=5 => {}
            n => return Err(ActivationCodeError::TooManyFields(n)),
        }
        let address = fields[1];
        let valid_host = !address.is_empty()
            && address
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'));
        if !valid_host {
            return Err(ActivationCodeError::SmdpAddress);
        }
        let matching_id = fields[2];
        if matching_id.is_empty()
            || matching_id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ActivationCodeError::MatchingId);
        }
        let smdp_oid = match fields.get(3) {
            None | Some(&"") => None,
            Some(oid) => {
                let dotted = oid
                    .split('.')
                    .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
                if !dotted {
                    return Err(ActivationCodeError::Oid);
                }
                Some((*oid).to_owned())
            }
        };
        let confirmation_code_required = match fields.get(4) {
            None | Some(&"") => false,
            Some(&"1") => true,
            Some(_) => return Err(ActivationCodeError::ConfirmationFlag),
        };
        Ok(Self {
            smdp_address: address.to_owned(),
            matching_id: matching_id.to_owned(),
            smdp_oid,
            confirmation_code_required,
        })
    }

    /// The SM-DP+ address, as given (for manual entry).
    pub fn smdp_address(&self) -> &str {
        &self.smdp_address
    }

    /// The matching ID (the "activation code" a phone asks for on manual entry). A secret.
    pub fn matching_id(&self) -> &str {
        &self.matching_id
    }

    /// The SM-DP+ OID, if one was given.
    pub fn smdp_oid(&self) -> Option<&str> {
        self.smdp_oid.as_deref()
    }

    /// Whether the user must type a confirmation code to install.
    pub fn confirmation_code_required(&self) -> bool {
        self.confirmation_code_required
    }

    /// The exact text to put in the QR code: `LPA:1$address$matchingId[$oid][$1]`.
    /// Contains the secret matching ID.
    pub fn qr_text(&self) -> String {
        self.render(&self.matching_id)
    }

    /// The activation code with all of the matching ID but its last 4 characters masked, for
    /// an operator's view of an order.
    pub fn masked(&self) -> String {
        self.render(&self.masked_matching_id())
    }

    /// The matching ID as [`Self::masked`] shows it: its last 4 characters when it has more
    /// than 8, otherwise none (the last 4 of a short ID are most of it); at least 4 stars.
    pub fn masked_matching_id(&self) -> String {
        let n = self.matching_id.chars().count();
        let visible: String = if n > 8 {
            self.matching_id.chars().skip(n - 4).collect()
        } else {
            String::new()
        };
        format!(
            "{}{visible}",
            "*".repeat(n.saturating_sub(visible.len()).max(4))
        )
    }

    fn render(&self, matching_id: &str) -> String {
        let mut out = format!("LPA:1${}${}", self.smdp_address, matching_id);
        match (&self.smdp_oid, self.confirmation_code_required) {
            (Some(oid), true) => out.push_str(&format!("${oid}$1")),
            (Some(oid), false) => out.push_str(&format!("${oid}")),
            (None, true) => out.push_str("$$1"),
            (None, false) => {}
        }
        out
    }
}

impl fmt::Debug for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActivationCode")
            .field("smdp_address", &self.smdp_address)
            .field("matching_id", &"[redacted]")
            .field("smdp_oid", &self.smdp_oid)
            .field(
                "confirmation_code_required",
                &self.confirmation_code_required,
            )
            .finish()
    }
}

/// For logs: the matching ID is replaced by `[redacted]`.
impl fmt::Display for ActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("[redacted]"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use ActivationCodeError as E;

    struct Ok {
        address: &'static str,
        matching_id: &'static str,
        oid: Option<&'static str>,
        confirm: bool,
        qr: &'static str,
    }

    #[test]
    fn valid_activation_codes() {
        let cases = [
            (
                "LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746",
                Ok {
                    address: "SMDP.GSMA.COM",
                    matching_id: "04386-AGYFT-A74Y8-3F815",
                    oid: Some("1.3.6.1.4.1.31746"),
                    confirm: false,
                    qr: "LPA:1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746",
                },
            ),
            (
                "1$HOST$TOKEN$$1",
                Ok {
                    address: "HOST",
                    matching_id: "TOKEN",
                    oid: None,
                    confirm: true,
                    qr: "LPA:1$HOST$TOKEN$$1",
                },
            ),
            (
                "LPA:1$rsp.demo$69C32E7Dxxxxxxxx",
                Ok {
                    address: "rsp.demo",
                    matching_id: "69C32E7Dxxxxxxxx",
                    oid: None,
                    confirm: false,
                    qr: "LPA:1$rsp.demo$69C32E7Dxxxxxxxx",
                },
            ),
            (
                "  lpa:1$smdp.example.com:443$ABC-123$1.2.3$1 ",
                Ok {
                    address: "smdp.example.com:443",
                    matching_id: "ABC-123",
                    oid: Some("1.2.3"),
                    confirm: true,
                    qr: "LPA:1$smdp.example.com:443$ABC-123$1.2.3$1",
                },
            ),
            (
                "LPA:1$host.example$ID$",
                Ok {
                    address: "host.example",
                    matching_id: "ID",
                    oid: None,
                    confirm: false,
                    qr: "LPA:1$host.example$ID",
                },
            ),
        ];
        for (input, want) in cases {
            let code = ActivationCode::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(code.smdp_address(), want.address, "{input}");
            assert_eq!(code.matching_id(), want.matching_id, "{input}");
            assert_eq!(code.smdp_oid(), want.oid, "{input}");
            assert_eq!(code.confirmation_code_required(), want.confirm, "{input}");
            assert_eq!(code.qr_text(), want.qr, "{input}");
            // A code's QR text parses back to the same code.
            assert_eq!(
                ActivationCode::parse(&code.qr_text()).as_ref(),
                std::result::Result::Ok(&code)
            );
        }
    }

    #[test]
    fn invalid_activation_codes() {
        let cases = [
            ("", E::Empty),
            ("LPA:", E::Empty),
            ("LPA:2$host$id", E::Format),
            ("LPA:1$host", E::TooFewFields(2)),
            ("LPA:1$$id", E::SmdpAddress),
            ("LPA:1$host$", E::MatchingId),
            ("LPA:1$host$id$1.2$1$x", E::TooManyFields(6)),
            ("LPA:1$host$id$$1$", E::TooManyFields(6)),
            ("LPA:1$ho st$id", E::SmdpAddress),
            ("LPA:1$host$i d", E::MatchingId),
            ("LPA:1$host$id$1.x", E::Oid),
            ("LPA:1$host$id$$2", E::ConfirmationFlag),
            ("http://example.com", E::Format),
            ("K2-4KJ2T-1B6Q9X", E::Format),
        ];
        for (input, want) in cases {
            assert_eq!(ActivationCode::parse(input), Err(want), "{input:?}");
        }
    }

    #[test]
    fn a_refused_code_never_shows_its_text() {
        // A bare matching ID, and the install link with the code percent-encoded: neither
        // has a `$`, so the whole text is the format field.
        for raw in [
            "SECRETMATCHING42",
            "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA:1%24rsp.demo%24SECRETMATCHING42",
            "LPA:1;rsp.demo;SECRETMATCHING42",
        ] {
            let e = ActivationCode::parse(raw).expect_err("not a code");
            assert!(!e.to_string().contains("SECRETMATCHING42"), "{e}");
            assert!(!format!("{e:?}").contains("SECRETMATCHING42"), "{e:?}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_matching_id() {
        let code = ActivationCode::parse("LPA:1$rsp.demo$SECRETMATCHING42").expect("valid");
        assert!(!format!("{code:?}").contains("SECRETMATCHING42"));
        assert!(!format!("{code}").contains("SECRETMATCHING42"));
        assert_eq!(code.to_string(), "LPA:1$rsp.demo$[redacted]");
        assert_eq!(code.masked(), "LPA:1$rsp.demo$************NG42");
        let short = ActivationCode::parse("1$h$ABC").expect("valid");
        assert_eq!(short.masked(), "LPA:1$h$****");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = ActivationCode::parse(&s);
        }

        #[test]
        fn well_formed_codes_round_trip(
            host in "[a-z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}",
            id in "[A-Z0-9-]{1,32}",
            oid in proptest::option::of("[0-9]{1,3}(\\.[0-9]{1,5}){0,6}"),
            confirm in any::<bool>(),
        ) {
            let mut text = format!("LPA:1${host}${id}");
            match (&oid, confirm) {
                (Some(o), true) => text.push_str(&format!("${o}$1")),
                (Some(o), false) => text.push_str(&format!("${o}")),
                (None, true) => text.push_str("$$1"),
                (None, false) => {}
            }
            let code = ActivationCode::parse(&text).expect("well formed");
            prop_assert_eq!(code.qr_text(), text);
            prop_assert_eq!(code.matching_id(), id.as_str());
            prop_assert_eq!(code.confirmation_code_required(), confirm);
        }
    }
}
