use std::fmt;

/// The provider's order number: a non-empty string of printable characters, at most 128 long.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct OrderNo(String);

impl OrderNo {
    /// Longest order number accepted; real ones are about 22 characters.
    pub const MAX_LEN: usize = 128;

    /// Parses an order number, trimming surrounding whitespace.
    ///
    /// ```
    /// use esim_courier_core::OrderNo;
    ///
    /// assert_eq!(OrderNo::parse(" 2026032516000000001 ").unwrap().as_str(), "2026032516000000001");
    /// // Provider input never reaches a terminal or a log with control characters in it.
    /// assert!(OrderNo::parse("B1\u{1b}[2J").is_err());
    /// assert!(OrderNo::parse("").is_err());
    /// ```
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("orderNo is empty".into());
        }
        if s.chars().count() > Self::MAX_LEN {
            return Err(format!(
                "orderNo is longer than {} characters",
                Self::MAX_LEN
            ));
        }
        if s.chars().any(|c| c.is_control()) {
            return Err("orderNo contains control characters".into());
        }
        Ok(Self(s.to_owned()))
    }

    /// The order number as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_numbers_are_trimmed_and_must_not_be_empty() {
        assert_eq!(OrderNo::parse(" 123 ").map(|o| o.0), Ok("123".to_owned()));
        assert!(OrderNo::parse("   ").is_err());
        assert!(OrderNo::parse("a\nb").is_err());
        assert!(OrderNo::parse(&"9".repeat(129)).is_err());
    }
}
