//! The mailboxes of a notifier: who it writes as, to whom operator mail goes, where replies go.

use lettre::message::Mailbox;

use crate::{ConfigError, EmailConfig};
use esim_courier_core::Audience;

/// Parsed `from`, `to` and `reply_to`.
#[derive(Debug, Clone)]
pub(crate) struct Addresses {
    pub(crate) from: Mailbox,
    /// Operator recipients; empty for a customer notifier.
    pub(crate) to: Vec<Mailbox>,
    pub(crate) reply_to: Option<Mailbox>,
}

impl Addresses {
    pub(crate) fn from_config(config: &EmailConfig) -> Result<Self, ConfigError> {
        let from = mailbox("from", &config.from)?;
        let to = config
            .to
            .iter()
            .enumerate()
            .map(|(i, raw)| mailbox(&format!("to[{i}]"), raw))
            .collect::<Result<Vec<_>, _>>()?;
        let reply_to = config
            .reply_to
            .as_deref()
            .map(|raw| mailbox("reply_to", raw))
            .transpose()?;
        match config.audience {
            // An activation code goes to its customer and nobody else.
            Audience::Customer if !to.is_empty() => return Err(ConfigError::new(
                "to",
                "a customer notifier writes to the order's registered customer only; remove `to`",
            )),
            Audience::Operator if to.is_empty() => {
                return Err(ConfigError::new(
                    "to",
                    "an operator notifier needs at least one recipient",
                ))
            }
            _ => {}
        }
        Ok(Self { from, to, reply_to })
    }
}

/// Parses `Name <local@domain>` or `local@domain`.
pub(crate) fn mailbox(key: &str, raw: &str) -> Result<Mailbox, ConfigError> {
    raw.trim().parse::<Mailbox>().map_err(|e| {
        ConfigError::new(
            key,
            format!("{raw:?} is not a mailbox such as \"Shop <esim@example.com>\": {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(audience: &str, to: &str) -> EmailConfig {
        toml::from_str(&format!(
            r#"
            audience = "{audience}"
            template = "x"
            from = "eSIM Shop <esim@example.com>"
            to = [{to}]
            reply_to = "help@example.com"
            transport = {{ type = "file", dir = "d" }}
            "#
        ))
        .expect("valid section")
    }

    #[test]
    fn addresses_parse_and_recipients_follow_the_audience() {
        let ops = Addresses::from_config(&config(
            "operator",
            r#""ops@example.com", "Night <night@example.com>""#,
        ))
        .expect("valid");
        assert_eq!(ops.from.name.as_deref(), Some("eSIM Shop"));
        assert_eq!(ops.to.len(), 2);
        assert_eq!(
            ops.reply_to.map(|m| m.email.to_string()),
            Some("help@example.com".into())
        );

        let error = Addresses::from_config(&config("operator", "")).expect_err("no recipient");
        assert_eq!(error.key(), "to");
        let error = Addresses::from_config(&config("customer", r#""ops@example.com""#))
            .expect_err("customer with to");
        assert_eq!(error.key(), "to");
        let error = Addresses::from_config(&config("operator", r#""not an address""#))
            .expect_err("bad address");
        assert_eq!(error.key(), "to[0]");
    }
}
