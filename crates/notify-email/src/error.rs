//! The errors of this crate. None of them ever carries a secret: no matching ID, no password,
//! and customer addresses only masked.

/// A notifier section is not usable. Names the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    key: String,
    reason: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The configuration key at fault, e.g. `transport.url` or `templates_dir`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Why it is not usable.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// A message could not be rendered. Retrying will not help: every variant is permanent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A template failed to render (strict mode: a misspelt or missing variable is an error).
    #[error("template {template}/{locale}/{file}: {reason}")]
    Template {
        /// The template folder, e.g. `activation`.
        template: String,
        /// The locale folder, e.g. `zh-Hans`.
        locale: String,
        /// The file, e.g. `body.html.hbs`.
        file: String,
        /// What handlebars said.
        reason: String,
    },
    /// A template has no folder for the locale asked for, nor for the default locale.
    #[error("template {template} has no locale {locale}")]
    MissingTemplate {
        /// The template folder.
        template: String,
        /// The locale.
        locale: String,
    },
    /// A customer notifier was given something that is not for customers.
    #[error("a customer email is only sent for a completed order; this is {0}")]
    NotForCustomers(&'static str),
    /// A customer notifier was given an order whose customer is not registered.
    #[error("order {0} has no registered customer to write to")]
    NoCustomer(String),
    /// An address does not parse as a mailbox.
    #[error("{0}")]
    Address(String),
    /// The QR code could not be made (e.g. the activation code is too long for a QR code).
    #[error("QR code: {0}")]
    Qr(String),
    /// The MIME message could not be built.
    #[error("message: {0}")]
    Message(String),
    /// A rendered message breaks a rule of this crate (size, remote image, `data:` URI, the
    /// contract price in a customer email). Reported by the template check.
    #[error("template {template}/{locale}: {reason}")]
    Policy {
        /// The template folder.
        template: String,
        /// The locale folder.
        locale: String,
        /// The rule broken.
        reason: String,
    },
}
