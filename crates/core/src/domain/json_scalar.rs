//! One JSON value of a wire payload, read without losing a digit.
//!
//! serde_json's `Value` stores a number that does not fit 64 bits as an `f64`, so the
//! provider's 21-digit order numbers (and numeric ICCIDs) would be rounded and two orders
//! could become one. Its `arbitrary_precision` feature would fix that but changes how every
//! `Value` in the process holds numbers (feature unification reaches every crate that uses
//! serde_json). Reading the field as a [`RawValue`] keeps the exact text of a number instead,
//! and touches nothing else.

use serde_json::value::RawValue;

/// A JSON value as the intake sees it: text (a string, or the exact text of a number), or
/// something that cannot stand for text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonScalar {
    /// `null`.
    Null,
    /// A string, unescaped. May hold any character, NUL included.
    Text(String),
    /// A number, exactly as written (`202603251612345678901`, `9.99`, `1e400`).
    Number(String),
    /// A boolean, array or object: its kind, for messages ("an array").
    Other(&'static str),
}

impl JsonScalar {
    /// Reads one raw JSON value. The value is valid JSON (serde_json checked it when it
    /// produced the `RawValue`), so its first character says what it is.
    pub fn of(raw: &RawValue) -> Self {
        let text = raw.get().trim_start();
        match text.as_bytes().first() {
            Some(b'"') => match serde_json::from_str::<String>(text) {
                Ok(s) => Self::Text(s),
                // Unreachable for a RawValue; treated as unusable, never as a panic.
                Err(_) => Self::Other("a malformed string"),
            },
            Some(b'-' | b'0'..=b'9') => Self::Number(text.trim_end().to_owned()),
            Some(b'n') => Self::Null,
            Some(b't' | b'f') => Self::Other("a boolean"),
            Some(b'[') => Self::Other("an array"),
            Some(b'{') => Self::Other("an object"),
            _ => Self::Other("an unknown value"),
        }
    }

    /// The text of a string or a number; `None` for anything else.
    pub fn into_text(self) -> Option<String> {
        match self {
            Self::Text(s) | Self::Number(s) => Some(s),
            Self::Null | Self::Other(_) => None,
        }
    }

    /// What kind of value this is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Text(_) => "a string",
            Self::Number(_) => "a number",
            Self::Other(kind) => kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(json: &str) -> JsonScalar {
        let raw: Box<RawValue> = serde_json::from_str(json).expect("valid JSON");
        JsonScalar::of(&raw)
    }

    #[test]
    fn numbers_keep_every_digit() {
        assert_eq!(
            of("202603251612345678901"),
            JsonScalar::Number("202603251612345678901".into())
        );
        assert_eq!(
            of("89100100001234567890123"),
            JsonScalar::Number("89100100001234567890123".into())
        );
        assert_eq!(of("1e400"), JsonScalar::Number("1e400".into()));
        assert_eq!(of(" -0.10 "), JsonScalar::Number("-0.10".into()));
    }

    #[test]
    fn strings_are_unescaped_and_other_kinds_named() {
        assert_eq!(of(r#""a\u0000b""#), JsonScalar::Text("a\u{0}b".into()));
        assert_eq!(of("null"), JsonScalar::Null);
        assert_eq!(of("true").kind(), "a boolean");
        assert_eq!(of("[1]").kind(), "an array");
        assert_eq!(of(r#"{"a":1}"#).kind(), "an object");
        assert_eq!(of("[1]").into_text(), None);
    }
}
