//! The `email` notifier: emails a customer their eSIM activation code (QR code inline,
//! one-tap install links, codes for manual entry) and operators their order failures and
//! alerts, over SMTP or into `.eml` files.
//!
//! ```toml
//! [notifiers.customer-email]
//! type = "email"
//! audience = "customer"
//! template = "activation"
//! from = "eSIM Shop <esim@example.com>"
//! transport = { type = "file", dir = "data/mail" }
//! ```
//!
//! - Templates: handlebars, strict mode, one folder per template and locale (see the crate
//!   README), built in and overridable from `templates_dir` without rebuilding.
//! - Exactly-once help: the `Message-ID` is derived from the notification key, so every attempt
//!   of one job carries the same id ([`message_id`]).
//! - Failures say whether a retry can help: SMTP 4xx, timeouts and broken connections are
//!   transient; 5xx replies, bad addresses and templates that do not render are permanent.
//! - [`EmailNotifier::render`] renders without sending (`esim-courier preview`);
//!   [`EmailNotifier::check_templates`] and [`check_templates`] render every template against
//!   sample data (`esim-courier check`).

mod addresses;
mod branding;
mod check;
mod config;
mod error;
pub mod links;
mod locale;
mod message;
mod messages;
mod palette;
mod policy;
pub mod qr;
mod render;
mod sample;
mod templates;
mod transport;
mod view;

#[cfg(test)]
mod tests;

use std::str::FromStr;

use esim_courier_core::{
    async_trait, Audience, Content, Customer, Locale, Notification, Notifier, NotifyError, Receipt,
};
use lettre::message::Mailbox;
use lettre::Address;

use crate::addresses::Addresses;
use crate::branding::Branding;
use crate::message::Envelope;
use crate::render::Renderer;
use crate::templates::Templates;
use crate::transport::Transport;

pub use crate::check::{check_templates, TemplateCheck};
pub use crate::config::{EmailConfig, SmtpConfig, TlsMode, TransportConfig};
pub use crate::error::{ConfigError, RenderError};
pub use crate::message::{message_id, RenderedEmail};

/// Sends one kind of email to one audience.
#[derive(Debug)]
pub struct EmailNotifier {
    name: String,
    audience: Audience,
    template: String,
    addresses: Addresses,
    renderer: Renderer,
    transport: Transport,
}

impl EmailNotifier {
    /// Builds the notifier named `name` from its section.
    ///
    /// Checks everything that can be checked without a network: addresses, branding, the
    /// transport settings, and the configured template, rendered in each of its locales
    /// against sample data. Reads `templates_dir` and `logo`; connects nowhere (see
    /// [`Notifier::healthcheck`]).
    pub fn new(name: impl Into<String>, config: EmailConfig) -> Result<Self, ConfigError> {
        let addresses = Addresses::from_config(&config)?;
        let branding = Branding::from_config(&config, &addresses)?;
        let templates = Templates::load(config.templates_dir.as_deref())?;
        let template = config.template.trim().to_owned();
        let Some(locales) = templates.locales(&template) else {
            let known: Vec<&str> = templates.names().collect();
            return Err(ConfigError::new(
                "template",
                format!("{template:?} is not one of {}", known.join(", ")),
            ));
        };
        let default_locale = Locale::parse(&config.default_locale)
            .map_err(|e| ConfigError::new("default_locale", e.to_string()))?
            .as_str()
            .to_owned();
        let Some(default_folder) = locales
            .iter()
            .find(|l| l.eq_ignore_ascii_case(&default_locale))
            .cloned()
        else {
            return Err(ConfigError::new(
                "default_locale",
                format!(
                    "template {template} has no {default_locale} folder; it has {}",
                    locales.join(", ")
                ),
            ));
        };
        let renderer = Renderer::new(templates, branding, default_folder);
        let transport = Transport::from_config(&config.transport)?;
        let notifier = Self {
            name: name.into(),
            audience: config.audience,
            template,
            addresses,
            renderer,
            transport,
        };

        // A template that cannot render for this audience fails at start-up, not at the first
        // customer (e.g. `activation` for operators, or an override with a typo).
        let check = check::run(
            &notifier.renderer,
            &notifier.addresses.from,
            &[(&notifier.template, notifier.audience)],
        );
        if let Some(first) = check.errors.first() {
            let more = match check.errors.len() {
                1 => String::new(),
                n => format!(" (and {} more)", n - 1),
            };
            return Err(ConfigError::new(
                "template",
                format!(
                    "{} cannot render for {}: {first}{more}",
                    notifier.template,
                    notifier.audience.as_str()
                ),
            ));
        }
        Ok(notifier)
    }

    /// Renders the email for `notification` without sending it: what `notify` would send,
    /// Message-ID included.
    ///
    /// A customer notifier renders only completed orders with a registered customer, in the
    /// customer's locale (or its language, or the default); an operator notifier renders
    /// anything, in the default locale.
    pub fn render(&self, notification: &Notification) -> Result<RenderedEmail, RenderError> {
        let from = &self.addresses.from;
        let reply_to = self.addresses.reply_to.as_ref();
        match self.audience {
            Audience::Customer => {
                let Content::OrderCompleted(order) = &notification.content else {
                    return Err(RenderError::NotForCustomers(notification.kind()));
                };
                let customer = order
                    .customer
                    .as_ref()
                    .ok_or_else(|| RenderError::NoCustomer(order.order_no.to_string()))?;
                let locale = self
                    .renderer
                    .locale_for(&self.template, customer.locale.as_ref())?;
                let composed =
                    self.renderer
                        .activation(&self.template, &locale, order, customer)?;
                let to = vec![customer_mailbox(customer)?];
                message::build(Envelope { from, to, reply_to }, &notification.key, composed)
            }
            Audience::Operator => {
                let locale = self.renderer.locale_for(&self.template, None)?;
                let composed =
                    self.renderer
                        .operator(&self.template, &locale, &notification.content)?;
                let to = self.addresses.to.clone();
                message::build(Envelope { from, to, reply_to }, &notification.key, composed)
            }
        }
    }

    /// The locales this notifier's template is written in.
    pub fn locales(&self) -> Vec<String> {
        self.renderer
            .templates()
            .locales(&self.template)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }

    /// Renders every template this notifier knows in every locale against sample data,
    /// checking the result (size, no remote or `data:` images, no contract price for
    /// customers, install codes present). Covers the built-in templates (with overrides from
    /// `templates_dir`) and this notifier's own template for its audience.
    pub fn check_templates(&self) -> TemplateCheck {
        let mut targets: Vec<(&str, Audience)> = check::BUILTIN_AUDIENCES.to_vec();
        if !targets.iter().any(|(t, _)| *t == self.template) {
            targets.push((&self.template, self.audience));
        }
        check::run(&self.renderer, &self.addresses.from, &targets)
    }
}

/// The customer's mailbox, with their name when the shop gave one.
fn customer_mailbox(customer: &Customer) -> Result<Mailbox, RenderError> {
    let address = Address::from_str(customer.email.as_str()).map_err(|e| {
        RenderError::Address(format!(
            "the customer's address {} is not usable: {e}",
            customer.email.masked()
        ))
    })?;
    let name = customer
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    Ok(Mailbox::new(name, address))
}

#[async_trait]
impl Notifier for EmailNotifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn audience(&self) -> Audience {
        self.audience
    }

    #[tracing::instrument(skip_all, fields(notifier = %self.name, order_no = notification.order_no()))]
    async fn notify(&self, notification: &Notification) -> Result<Receipt, NotifyError> {
        // Rendering cannot succeed on a retry: the same input gives the same failure.
        let email = self
            .render(notification)
            .map_err(|e| NotifyError::permanent(e.to_string()))?;
        let id = self.transport.send(email.message()).await?;
        tracing::debug!(message_id = %email.message_id, template = %email.template, locale = %email.locale, "email accepted");
        let receipt = Receipt::with_id(format!("{} {id}", email.message_id));
        // The customer's language is what varies; operator emails are all in one.
        Ok(match self.audience {
            Audience::Customer => receipt.in_locale(email.locale.clone()),
            Audience::Operator => receipt,
        })
    }

    async fn healthcheck(&self) -> Result<(), NotifyError> {
        self.transport.healthcheck().await
    }

    /// Every template in every locale renders against the sample orders and passes the
    /// email's own checks ([`EmailNotifier::check_templates`]).
    fn validate(&self) -> Result<Option<String>, Vec<String>> {
        let check = self.check_templates();
        if check.is_ok() {
            Ok(Some(format!(
                "{} template/locale pairs render",
                check.passed.len()
            )))
        } else {
            Err(check.errors.iter().map(ToString::to_string).collect())
        }
    }
}
