use std::fmt;

/// What the provider says happened to the order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrderResult {
    /// The eSIM was issued; the payload carries its ICCID and activation code.
    Completed,
    /// The order failed at the provider.
    Failed,
    /// Any other value: recorded, never rejected, and raised to operators.
    Unrecognised(String),
}

impl OrderResult {
    /// Parses the `result` field, case-insensitively.
    pub fn parse(raw: &str) -> Self {
        let s = raw.trim();
        if s.eq_ignore_ascii_case("COMPLETED") {
            Self::Completed
        } else if s.eq_ignore_ascii_case("FAILED") {
            Self::Failed
        } else {
            Self::Unrecognised(s.to_owned())
        }
    }

    /// The canonical text stored and shown (`COMPLETED`, `FAILED`, or the value as received).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Unrecognised(s) => s,
        }
    }
}

impl fmt::Display for OrderResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_case_insensitive_and_unknown_values_are_kept() {
        assert_eq!(OrderResult::parse("completed"), OrderResult::Completed);
        assert_eq!(OrderResult::parse(" FAILED "), OrderResult::Failed);
        assert_eq!(
            OrderResult::parse("REFUNDED"),
            OrderResult::Unrecognised("REFUNDED".into())
        );
    }
}
