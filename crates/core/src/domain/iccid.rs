use std::fmt;

/// An eSIM's ICCID (ITU-T E.118): 18 to 22 digits once a trailing `F` pad is stripped.
///
/// A failed Luhn check is *not* an error: real providers send ICCIDs that fail it. Check
/// [`Iccid::luhn_valid`] and warn.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iccid {
    digits: String,
    luhn_valid: bool,
}

/// Why a text is not an ICCID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IccidError {
    /// Nothing was given.
    #[error("ICCID is empty")]
    Empty,
    /// A character other than a digit (or the trailing `F` pad).
    #[error("ICCID contains {0:?}, which is not a digit")]
    NotDigit(char),
    /// Too short or too long.
    #[error("ICCID has {0} digits; expected 18 to 22")]
    Length(usize),
}

impl Iccid {
    /// Parses an ICCID, trimming whitespace and stripping one trailing `F`/`f` pad.
    pub fn parse(raw: &str) -> Result<Self, IccidError> {
        let s = raw.trim();
        let s = s
            .strip_suffix('F')
            .or_else(|| s.strip_suffix('f'))
            .unwrap_or(s);
        if s.is_empty() {
            return Err(IccidError::Empty);
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_digit()) {
            return Err(IccidError::NotDigit(c));
        }
        if !(18..=22).contains(&s.len()) {
            return Err(IccidError::Length(s.len()));
        }
        Ok(Self {
            luhn_valid: luhn(s),
            digits: s.to_owned(),
        })
    }

    /// The digits, without the pad.
    pub fn as_str(&self) -> &str {
        &self.digits
    }

    /// The Luhn check digit that completes `body` (ASCII digits), or `None` for other text.
    /// For issuing test ICCIDs.
    pub fn check_digit(body: &str) -> Option<char> {
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        ('0'..='9').find(|d| luhn(&format!("{body}{d}")))
    }

    /// Whether the last digit is a correct Luhn check digit.
    pub fn luhn_valid(&self) -> bool {
        self.luhn_valid
    }
}

impl fmt::Display for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits)
    }
}

/// The Luhn (mod 10) check over a string of ASCII digits.
fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn iccid_table() {
        // (input, expected digits or error, luhn valid)
        let cases: &[(&str, Result<&str, IccidError>, bool)] = &[
            ("8944500102198304826", Ok("8944500102198304826"), true),
            ("8944500102198304826F", Ok("8944500102198304826"), true),
            (" 8944500102198304826f ", Ok("8944500102198304826"), true),
            ("8944500102198304827", Ok("8944500102198304827"), false),
            ("89852000000000000001", Ok("89852000000000000001"), false),
            (
                "8910010000xxxxxxxxxx",
                Err(IccidError::NotDigit('x')),
                false,
            ),
            ("", Err(IccidError::Empty), false),
            ("F", Err(IccidError::Empty), false),
            ("12345", Err(IccidError::Length(5)), false),
            ("8944-5001", Err(IccidError::NotDigit('-')), false),
        ];
        for (input, expected, luhn_ok) in cases {
            let got = Iccid::parse(input);
            match (expected, &got) {
                (Ok(d), Ok(i)) => {
                    assert_eq!(i.as_str(), *d, "{input}");
                    assert_eq!(i.luhn_valid(), *luhn_ok, "{input}");
                }
                (Err(e), Err(g)) => assert_eq!(e, g, "{input}"),
                _ => panic!("{input:?}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn appending_the_luhn_digit_always_validates(body in "[0-9]{18,21}") {
            let check = (0..10u8)
                .map(|d| format!("{body}{d}"))
                .find(|s| luhn(s))
                .expect("one digit always completes the Luhn sum");
            let iccid = Iccid::parse(&check).expect("valid length");
            prop_assert!(iccid.luhn_valid());
        }

        #[test]
        fn parse_never_panics(s in "\\PC*") {
            let _ = Iccid::parse(&s);
        }
    }
}
