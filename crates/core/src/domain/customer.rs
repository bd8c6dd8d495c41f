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

/// An email address: `local@domain`, with a dotted domain, no spaces, at most 254 characters,
/// and a local part and a domain the mailer can send to. Deliverability is the mail server's
/// business; this only refuses what cannot be an address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an address, trimming whitespace: the shape of [`EmailAddress::parse_stored`],
    /// and the rules of mail syntax lettre applies when it sends (the `email_address`
    /// crate's: no dot at the start or end of the local part, no two dots in a row, no
    /// characters such as `(` `)` `[` `]` `\` `:` outside quotes). What this accepts, the
    /// activation email can be sent to; what it refuses is answered at registration instead
    /// of failing at delivery.
    pub fn parse(raw: &str) -> Result<Self, CustomerError> {
        let address = Self::parse_stored(raw)?;
        let bad = |why: &str| CustomerError::Email(format!("email address is not valid: {why}"));
        let (local, domain) = address.0.rsplit_once('@').unwrap_or_default();
        if !email_address::EmailAddress::is_valid_local_part(local) {
            return Err(bad(
                "the part before '@' is not one mail can be sent to (a dot at its start or end, \
                 two dots in a row, or a character such as ( ) [ ] \\ :)",
            ));
        }
        if !email_address::EmailAddress::is_valid_domain(domain) {
            return Err(bad("the domain is not a dotted host name"));
        }
        Ok(address)
    }

    /// An address as it was stored: its shape only (`local@domain`, a dotted domain, no
    /// spaces, at most 254 characters). For reading stored rows and for finding a customer
    /// to erase: an address an earlier version accepted, before [`EmailAddress::parse`]
    /// applied the mailer's rules, is still read back and can still be erased.
    pub fn parse_stored(raw: &str) -> Result<Self, CustomerError> {
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

/// The customer's language: one tag such as `en`, `zh-Hans`, `pt-BR`, or a browser's
/// `Accept-Language` value (`fr-CH, fr;q=0.9, en;q=0.8`), kept as given (tags normalised) so
/// each channel picks the best of its own languages ([`Locale::preferences`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locale(String);

impl Locale {
    /// Parses a BCP 47-like tag (2–3 letter language, then `-`- or `_`-separated
    /// alphanumeric subtags; the language lower-cased, `_` made `-`), or an `Accept-Language`
    /// list of such tags with optional `;q=` weights (`*` allowed, at most 16 entries).
    pub fn parse(raw: &str) -> Result<Self, CustomerError> {
        let bad = || CustomerError::Locale(raw.to_owned());
        let raw_trimmed = raw.trim();
        if raw_trimmed == "*" {
            // Any language, as an `Accept-Language` list of that one item says: no preference,
            // so the default language. Accepted alone as in a list (`*,`), where it is what is
            // kept, and so what is read back.
            return Ok(Self(raw_trimmed.to_owned()));
        }
        if !raw_trimmed.contains([',', ';']) {
            return Self::tag(raw_trimmed).map(Self).ok_or_else(bad);
        }
        let items: Vec<&str> = raw_trimmed
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .collect();
        if items.is_empty() || items.len() > 16 {
            return Err(bad());
        }
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let mut parts = item.split(';').map(str::trim);
            let tag = parts.next().unwrap_or_default();
            let tag = if tag == "*" {
                "*".to_owned()
            } else {
                Self::tag(tag).ok_or_else(bad)?
            };
            let weight = match parts.next() {
                None => None,
                Some(q) => {
                    let value = q
                        .strip_prefix("q=")
                        .or_else(|| q.strip_prefix("Q="))
                        .ok_or_else(bad)?;
                    let ok = value.len() <= 5
                        && value.parse::<f32>().is_ok_and(|w| (0.0..=1.0).contains(&w));
                    if !ok {
                        return Err(bad());
                    }
                    Some(value.to_owned())
                }
            };
            if parts.next().is_some() {
                return Err(bad());
            }
            out.push(match weight {
                Some(q) => format!("{tag};q={q}"),
                None => tag,
            });
        }
        Ok(Self(out.join(", ")))
    }

    /// One tag, normalised; `None` when it is not one.
    fn tag(raw: &str) -> Option<String> {
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
            return None;
        }
        let mut tag = lang.to_ascii_lowercase();
        for p in rest {
            tag.push('-');
            tag.push_str(p);
        }
        Some(tag)
    }

    /// The tag, or the `Accept-Language` list, as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tags in the customer's order of preference: highest weight first, the order given
    /// among equal weights; without `*` and tags weighted 0.
    pub fn preferences(&self) -> Vec<&str> {
        let mut weighted: Vec<(f32, &str)> = self
            .0
            .split(", ")
            .filter_map(|item| {
                let mut parts = item.split(";q=");
                let tag = parts.next()?;
                let q = parts.next().map_or(1.0, |q| q.parse().unwrap_or(0.0));
                (tag != "*" && q > 0.0).then_some((q, tag))
            })
            .collect();
        weighted.sort_by(|a, b| b.0.total_cmp(&a.0));
        weighted.into_iter().map(|(_, tag)| tag).collect()
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
    fn a_locale_is_a_tag_or_an_accept_language_list_in_preference_order() {
        let one = Locale::parse(" zh_hant_TW ").expect("a tag");
        assert_eq!(
            (one.as_str(), one.preferences()),
            ("zh-hant-TW", vec!["zh-hant-TW"])
        );
        let list = Locale::parse("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5").expect("a list");
        assert_eq!(
            list.as_str(),
            "fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5"
        );
        assert_eq!(list.preferences(), ["fr-CH", "fr", "en", "de"]);
        let reordered = Locale::parse("en;q=0.1,ja").expect("a list");
        assert_eq!(reordered.preferences(), ["ja", "en"]);
        assert_eq!(
            Locale::parse("ar;q=0, en").expect("a list").preferences(),
            ["en"]
        );
        // What is kept reads back as itself: the store parses it again.
        for raw in [
            "*",
            "*,",
            ", *",
            "*;q=0.5",
            "en,",
            " en-us ,",
            "fr-CH, fr;q=0.9, *;q=0.5",
            "pt_br;Q=0.8",
        ] {
            let kept = Locale::parse(raw).expect(raw);
            assert_eq!(Locale::parse(kept.as_str()), Ok(kept.clone()), "{raw:?}");
        }
        assert!(Locale::parse("*,").expect("any").preferences().is_empty());
        for bad in [
            "",
            "../../etc",
            "en;q=2",
            "en;x=1",
            "en;q=0.5;q=1",
            "e, n",
            "en,,;",
        ] {
            assert!(Locale::parse(bad).is_err(), "{bad:?}");
        }
    }

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
            // What the mailer refuses to send to: refused at registration.
            "ana..smith@example.com",
            ".ana@example.com",
            "ana.@example.com",
            "a(b)@example.com",
            "a[b]@example.com",
            "a:b@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
        for ok in [
            "ana+esim@example.com",
            "o'brien@example.ie",
            "josé@bücher.example",
        ] {
            assert!(EmailAddress::parse(ok).is_ok(), "{ok}");
        }
        // Stored by an earlier version, read back.
        let old = EmailAddress::parse_stored("ana..smith@example.com").expect("its shape");
        assert_eq!(old.as_str(), "ana..smith@example.com");
        assert!(EmailAddress::parse_stored("ana@").is_err());
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
