//! The template check behind `esim-courier check`: render every template in every locale
//! against sample data, build the MIME message, and apply the [`crate::policy`] rules.

use std::path::Path;

use esim_courier_core::{Audience, Content};
use lettre::message::Mailbox;

use crate::addresses::mailbox;
use crate::branding::Branding;
use crate::message::{self, Envelope};
use crate::render::{Composed, Renderer};
use crate::templates::Templates;
use crate::{policy, sample, ConfigError, RenderError};

/// The built-in templates and whom each is written for.
pub(crate) const BUILTIN_AUDIENCES: [(&str, Audience); 3] = [
    ("activation", Audience::Customer),
    ("order-failed", Audience::Operator),
    ("alert", Audience::Operator),
];

/// What a template check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateCheck {
    /// Each `template/locale` rendered against every sample without error.
    pub passed: Vec<String>,
    /// Every failure, one per template, locale and sample.
    pub errors: Vec<RenderError>,
}

impl TemplateCheck {
    /// Whether nothing failed.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Checks the built-in templates, overridden by `templates_dir` if given, without a notifier
/// configuration: `activation` against customer samples, `order-failed` and `alert` against
/// operator samples, in every locale each has.
pub fn check_templates(templates_dir: Option<&Path>) -> Result<TemplateCheck, ConfigError> {
    let templates = Templates::load(templates_dir)?;
    let from = mailbox("from", "eSIM Shop <esim@example.com>")?;
    let branding = Branding {
        name: "eSIM Shop".into(),
        support_email: "help@example.com".into(),
        accent_color: "#0b63ce".into(),
        logo: None,
    };
    let renderer = Renderer::new(templates, branding, "en".into());
    Ok(run(&renderer, &from, &BUILTIN_AUDIENCES))
}

/// Renders each `(template, audience)` of `targets` that exists, in every locale.
pub(crate) fn run(
    renderer: &Renderer,
    from: &Mailbox,
    targets: &[(&str, Audience)],
) -> TemplateCheck {
    let mut check = TemplateCheck::default();
    let (orders, contents) = match (sample::completed_orders(), sample::operator_contents()) {
        (Ok(orders), Ok(contents)) => (orders, contents),
        (Err(e), _) | (_, Err(e)) => {
            check.errors.push(e);
            return check;
        }
    };
    for (template, audience) in targets {
        let Some(locales) = renderer.templates().locales(template) else {
            continue;
        };
        for locale in locales {
            let before = check.errors.len();
            match audience {
                Audience::Customer => {
                    for order in &orders {
                        check
                            .errors
                            .extend(activation(renderer, from, template, locale, order).err());
                    }
                }
                Audience::Operator => {
                    for content in &contents {
                        check
                            .errors
                            .extend(operator(renderer, from, template, locale, content).err());
                    }
                }
            }
            if check.errors.len() == before {
                check.passed.push(format!("{template}/{locale}"));
            }
        }
    }
    check.errors.dedup();
    check
}

fn activation(
    renderer: &Renderer,
    from: &Mailbox,
    template: &str,
    locale: &str,
    order: &esim_courier_core::CompletedOrder,
) -> Result<(), RenderError> {
    let customer = order
        .customer
        .as_ref()
        .ok_or_else(|| RenderError::NoCustomer(order.order_no.to_string()))?;
    let composed = renderer.activation(template, locale, order, customer)?;
    judge_as_sent(
        from,
        customer.email.as_str(),
        composed,
        template,
        locale,
        Some(order),
    )
}

fn operator(
    renderer: &Renderer,
    from: &Mailbox,
    template: &str,
    locale: &str,
    content: &Content,
) -> Result<(), RenderError> {
    let composed = renderer.operator(template, locale, content)?;
    judge_as_sent(from, "ops@example.com", composed, template, locale, None)
}

/// Builds the message as it would be sent to `to` and judges it against the policy.
fn judge_as_sent(
    from: &Mailbox,
    to: &str,
    composed: Composed,
    template: &str,
    locale: &str,
    order: Option<&esim_courier_core::CompletedOrder>,
) -> Result<(), RenderError> {
    let to = mailbox("to", to).map_err(|e| RenderError::Address(e.to_string()))?;
    let email = message::build(
        Envelope {
            from,
            to: vec![to],
            reply_to: None,
        },
        "check",
        composed,
    )?;
    judge(template, locale, policy::violations(&email, order))
}

fn judge(template: &str, locale: &str, violations: Vec<String>) -> Result<(), RenderError> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(RenderError::Policy {
            template: template.to_owned(),
            locale: locale.to_owned(),
            reason: violations.join("; "),
        })
    }
}
