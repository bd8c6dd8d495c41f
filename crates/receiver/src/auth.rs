use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A set of accepted tokens (several at once, so one can be rotated without downtime).
///
/// Stored as SHA-256 digests and compared in constant time against every entry, so neither
/// the comparison's duration nor an early exit tells how much of a guess was right.
#[derive(Clone, Default)]
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl TokenSet {
    /// The set of `tokens`; empty ones are ignored.
    pub fn new(tokens: Vec<SecretString>) -> Self {
        let digests = tokens
            .iter()
            .map(ExposeSecret::expose_secret)
            .filter(|t| !t.is_empty())
            .map(digest)
            .collect();
        Self { digests }
    }

    /// Whether `candidate` is one of the tokens.
    pub fn accepts(&self, candidate: &str) -> bool {
        let c = digest(candidate);
        self.digests
            .iter()
            .fold(subtle::Choice::from(0), |found, d| found | d.ct_eq(&c))
            .into()
    }

    /// Whether no token is configured.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} tokens, redacted)", self.digests.len())
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_configured_token_and_nothing_else() {
        let set = TokenSet::new(vec![
            "old".to_owned().into(),
            "new".to_owned().into(),
            String::new().into(),
        ]);
        assert!(set.accepts("old"));
        assert!(set.accepts("new"));
        assert!(!set.accepts(""));
        assert!(!set.accepts("ol"));
        assert!(!format!("{set:?}").contains("old"));
    }
}
