use std::fmt;

use super::Money;

/// The customer of an order, as the reseller's shop registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Where the activation email goes.
    pub email: EmailAddress,
    /// How to greet them, if known.
    pub name: Option<String>,
    /// Their language, if known; templates fall back to the configured default.
    pub locale: Option<Locale>,
    /// What the customer paid (the retail price), if the shop said.
    pub retail_price: Option<Money>,
}

/// Why a registration is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomerError {
    /// The email address is not an address.
    #[error("{0}")]
    Email(String),
    /// The locale is not a language tag.
    #[error("locale {0:?} is not a language tag such as \"en\" or \"zh-Hans\"")]
    Locale(String),
}

/// An email address: `local@domain`, with a dotted domain, no spaces, at most 254 characters.
/// Deliverability is the mail server's business; this only refuses what cannot be an address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address, trimming whitespace.
    pub fn parse(raw: &str) -> Result<Self, CustomerError> {
        let s = raw.trim();
        let bad = |why: &str| CustomerError::Email(format!("email address is not valid: {why}"));
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.len() > 254 {
            return Err(bad("it is longer than 254 characters"));
        }
        if s.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"')
        }) {
            return Err(bad(
                "it contains spaces or characters not allowed in an address",
            ));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(bad("it has no '@'"));
        };
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(bad("the part before '@' is empty or too long"));
        }
        let labels_ok = domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
        if !domain.contains('.') || !labels_ok {
            return Err(bad("the domain is not a dotted host name"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `j***@example.com`: for logs and operator views.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", &self.0));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

/// Masked: a customer's address is personal data.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.masked())
    }
}

/// A language tag such as `en`, `zh-Hans`, `pt-BR`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locale(String);

impl Locale {
    /// Parses a BCP 47-like tag: 2–3 letter language, then `-`- or `_`-separated alphanumeric
    /// subtags. The language is lower-cased; `_` becomes `-`.
    pub fn parse(raw: &str) -> Result<Self, CustomerError> {
        let s = raw.trim().replace('_', "-");
        let mut parts = s.split('-');
        let lang = parts.next().unwrap_or_default();
        let lang_ok =
            (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_alphabetic());
        let rest: Vec<&str> = parts.collect();
        let rest_ok = rest
            .iter()
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !lang_ok || !rest_ok || s.len() > 35 {
            return Err(CustomerError::Locale(raw.to_owned()));
        }
        let mut tag = lang.to_ascii_lowercase();
        for p in rest {
            tag.push('-');
            tag.push_str(p);
        }
        Ok(Self(tag))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        for ok in [
            "ana@example.com",
            " ana.b+esim@mail.example.co.uk ",
            "x@a.io",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@localhost",
            "a b@example.com",
            "ana@example..com",
            "<ana@example.com>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
        let e = EmailAddress::parse("traveller@example.com").expect("valid");
        assert_eq!(e.masked(), "t***@example.com");
        assert!(!format!("{e:?}").contains("traveller"));
    }

    #[test]
    fn locales() {
        assert_eq!(Locale::parse("zh-Hans").map(|l| l.0), Ok("zh-Hans".into()));
        assert_eq!(Locale::parse("EN").map(|l| l.0), Ok("en".into()));
        assert_eq!(Locale::parse("pt_BR").map(|l| l.0), Ok("pt-BR".into()));
        for bad in ["", "e", "english", "en-", "en--US", "../etc", "en US"] {
            assert!(Locale::parse(bad).is_err(), "{bad}");
        }
    }
}
