//! The `[notifiers.<name>]` section of an `email` notifier, as written in the TOML file.
//!
//! These types only describe what was written; [`crate::EmailNotifier::new`] checks them and
//! turns them into validated settings, naming the bad key when something is wrong.

use std::path::PathBuf;
use std::time::Duration;

use esim_courier_core::Audience;
use secrecy::SecretString;
use serde::Deserialize;

/// The section of an `email` notifier (its `type` and `retry` keys are the binary's business).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `customer`: writes to the order's registered customer. `operator`: writes to [`Self::to`].
    pub audience: Audience,
    /// The template folder to render, e.g. `activation`, `order-failed`, `alert`.
    pub template: String,
    /// The sender mailbox, e.g. `eSIM Shop <esim@example.com>`.
    pub from: String,
    /// Recipients of an operator notifier. Must be empty for a customer notifier, which writes
    /// to the registered customer only (so no one else ever receives an activation code).
    #[serde(default)]
    pub to: Vec<String>,
    /// Where replies go, if not to `from`.
    #[serde(default)]
    pub reply_to: Option<String>,
    /// How messages leave: SMTP, or `.eml` files in a folder.
    pub transport: TransportConfig,
    /// A folder that overrides the built-in templates without rebuilding: same layout as the
    /// crate's `templates/` folder (`crates/notify-email/templates/`): `layout.html.hbs`,
    /// `<template>/{subject.hbs,body.html.hbs,body.txt.hbs}` (the markup, once for every
    /// locale) and `<template>/<locale>.ftl` (the sentences, Fluent). A markup file found there
    /// replaces the built-in one; a `.ftl` file replaces the messages it defines, or adds a
    /// locale when it defines them all.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
    /// The locale used when the customer's locale (or its language) has no messages; for an
    /// operator notifier, the locale of every email (also spelt `locale`).
    #[serde(default = "default_locale", alias = "locale")]
    pub default_locale: String,
    /// The shop's name in the header and footer. Default: the display name of `from`, else
    /// its domain.
    #[serde(default)]
    pub brand_name: Option<String>,
    /// The address customers are told to write to. Default: `reply_to`, else `from`.
    #[serde(default)]
    pub support_email: Option<String>,
    /// The colour of headings, buttons and the top border, `#rrggbb`.
    #[serde(default = "default_accent_color")]
    pub accent_color: String,
    /// A PNG logo (at most 100 KiB) sent inline as a CID image; never a remote URL.
    #[serde(default)]
    pub logo: Option<PathBuf>,
}

/// How messages leave.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TransportConfig {
    /// Writes one `.eml` file per message into `dir` (created if missing). Needs no server:
    /// the embedded default.
    File {
        /// The folder, e.g. `data/mail`.
        dir: PathBuf,
    },
    /// Sends through an SMTP server.
    Smtp(SmtpConfig),
}

/// SMTP transport options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `smtp://host[:port]` or `smtps://host[:port]`. Credentials go in `username` and
    /// `password`, never in the URL (URLs end up in logs).
    pub url: String,
    /// Encryption. Default: `tls` for `smtps://`; for `smtp://`, `starttls`, except `none` on a
    /// loopback host (a local relay or mail catcher, traffic never leaves the machine).
    #[serde(default)]
    pub tls: Option<TlsMode>,
    /// The login, if the server wants one.
    #[serde(default)]
    pub username: Option<String>,
    /// The password (or `ESIM_COURIER__NOTIFIERS__<NAME>__TRANSPORT__PASSWORD`).
    #[serde(default)]
    pub password: Option<SecretString>,
    /// How long one delivery attempt may take, from connecting to the server's last reply.
    /// Keep it well below the dispatcher's lease, so a stalled server never holds a job past it.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// The most idle connections kept open to the server between sends. Sends under way at
    /// once (up to the dispatcher's concurrency) may open more; those are closed when done.
    #[serde(default = "default_pool_max_size")]
    pub pool_max_size: u32,
    /// How long an unused pooled connection is kept.
    #[serde(default = "default_pool_idle_timeout", with = "humantime_serde")]
    pub pool_idle_timeout: Duration,
    /// The name sent with `EHLO`. Default: this machine's host name.
    #[serde(default)]
    pub hello_name: Option<String>,
}

/// SMTP encryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    /// Plain text. Only for a relay on this machine or a trusted network.
    None,
    /// Plain connection upgraded with `STARTTLS`, which the server must offer (port 587).
    Starttls,
    /// TLS from the first byte (implicit TLS, port 465).
    Tls,
}

fn default_locale() -> String {
    "en".to_owned()
}

fn default_accent_color() -> String {
    "#0b63ce".to_owned()
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_pool_max_size() -> u32 {
    4
}

fn default_pool_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn a_customer_file_section_parses_with_defaults() {
        let config: EmailConfig = toml::from_str(
            r#"
            audience = "customer"
            template = "activation"
            from = "eSIM Shop <esim@example.com>"
            transport = { type = "file", dir = "data/mail" }
            "#,
        )
        .expect("valid section");
        assert_eq!(config.audience, Audience::Customer);
        assert!(config.to.is_empty());
        assert_eq!(config.default_locale, "en");
        assert_eq!(config.accent_color, "#0b63ce");
        assert!(
            matches!(config.transport, TransportConfig::File { ref dir } if dir == &PathBuf::from("data/mail"))
        );
    }

    #[test]
    fn an_operator_smtp_section_parses() {
        let config: EmailConfig = toml::from_str(
            r#"
            audience = "operator"
            template = "order-failed"
            from = "esim-courier <courier@example.com>"
            to = ["ops@example.com"]
            [transport]
            type = "smtp"
            url = "smtp://smtp.example.com:587"
            tls = "starttls"
            username = "courier"
            password = "hunter2-very-secret"
            timeout = "15s"
            pool_max_size = 2
            "#,
        )
        .expect("valid section");
        let TransportConfig::Smtp(smtp) = &config.transport else {
            panic!("expected smtp, got {:?}", config.transport);
        };
        assert_eq!(smtp.tls, Some(TlsMode::Starttls));
        assert_eq!(smtp.timeout, Duration::from_secs(15));
        assert_eq!(smtp.pool_max_size, 2);
        assert_eq!(smtp.pool_idle_timeout, Duration::from_secs(60));
        assert_eq!(
            smtp.password.as_ref().map(|p| p.expose_secret().to_owned()),
            Some("hunter2-very-secret".into())
        );
        assert!(
            !format!("{config:?}").contains("hunter2"),
            "the password must not appear in Debug"
        );
    }

    #[test]
    fn the_readme_examples_parse() {
        let readme = include_str!("../README.md");
        let blocks: Vec<&str> = readme
            .split("```toml")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .collect();
        assert_eq!(blocks.len(), 2);
        for block in blocks {
            let document: toml::Table = toml::from_str(block).expect("valid TOML");
            let notifiers = document["notifiers"].as_table().expect("a notifiers table");
            for (name, section) in notifiers {
                let mut section = section.as_table().expect("a section").clone();
                // The binary reads `type` to pick the plugin; the plugin never sees it.
                assert_eq!(
                    section
                        .remove("type")
                        .and_then(|t| t.as_str().map(str::to_owned))
                        .as_deref(),
                    Some("email")
                );
                let config: EmailConfig =
                    section.try_into().unwrap_or_else(|e| panic!("{name}: {e}"));
                assert!(!config.template.is_empty());
            }
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let top = toml::from_str::<EmailConfig>(
            r##"
            audience = "customer"
            template = "activation"
            from = "a@example.com"
            colour = "#ffffff"
            transport = { type = "file", dir = "x" }
            "##,
        )
        .expect_err("unknown key");
        assert!(top.to_string().contains("colour"), "{top}");
        let nested = toml::from_str::<EmailConfig>(
            r#"
            audience = "customer"
            template = "activation"
            from = "a@example.com"
            transport = { type = "smtp", url = "smtp://127.0.0.1:25", passwd = "x" }
            "#,
        )
        .expect_err("unknown transport key");
        assert!(nested.to_string().contains("passwd"), "{nested}");
        let kind = toml::from_str::<EmailConfig>(
            r#"
            audience = "customer"
            template = "activation"
            from = "a@example.com"
            transport = { type = "carrier-pigeon" }
            "#,
        )
        .expect_err("unknown transport type");
        assert!(kind.to_string().contains("carrier-pigeon"), "{kind}");
    }
}
