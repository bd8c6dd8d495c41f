use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use esim_courier_core::{
    Audience, CompletedOrder, Content, Customer, EmailAddress, FailedOrder, Locale, Notification,
    Notifier, OrderResult, WebhookPayload,
};

use super::load;
use crate::compose;

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// A webhook payload (JSON), e.g. tests/fixtures/webhook-completed.json.
    #[arg(long)]
    payload: PathBuf,
    /// The customer's language (COMPLETED orders), e.g. en, zh-Hans, zh-Hant, ms, ja.
    #[arg(long, default_value = "en")]
    locale: String,
    /// The customer's address shown in the preview.
    #[arg(long, default_value = "traveller@example.com")]
    email: String,
    /// The email notifier to render with (default: the first customer email notifier for a
    /// COMPLETED payload, the first operator one otherwise).
    #[arg(long)]
    notifier: Option<String>,
    /// Where to write the .eml and .html files.
    #[arg(long, default_value = "data/preview")]
    out: PathBuf,
}

/// `esim-courier preview`: renders the email a payload would produce, without sending it.
pub async fn run(path: &Path, args: PreviewArgs) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let body = std::fs::read(&args.payload)
        .with_context(|| format!("cannot read {}", args.payload.display()))?;
    let currencies = compose::currencies(&config)?;
    let event = WebhookPayload::from_slice(&body)
        .and_then(|p| p.into_event(&currencies))
        .with_context(|| format!("{} is not an order webhook", args.payload.display()))?;
    for w in &event.warnings {
        eprintln!("warning: {w}");
    }
    let received_at_ms = esim_courier_store::now_ms();
    let content = match &event.result {
        OrderResult::Completed => {
            let code = event
                .usable_activation_code()
                .context("the payload has no usable activation code (lpa)")?
                .clone();
            let customer = Customer {
                email: EmailAddress::parse(&args.email).context("--email")?,
                name: None,
                locale: Some(Locale::parse(&args.locale).context("--locale")?),
                retail_price: None,
            };
            Content::OrderCompleted(CompletedOrder {
                order_no: event.order_no.clone(),
                iccid: event.iccid_display().to_owned(),
                activation_code: code,
                package_code: event.package_code.clone(),
                package_name: event.package_name.clone(),
                contract_price: event.contract_price.clone(),
                customer: Some(customer),
                received_at_ms,
            })
        }
        _ => Content::OrderFailed(FailedOrder {
            order_no: event.order_no.clone(),
            package_code: event.package_code.clone(),
            package_name: event.package_name.clone(),
            contract_price: event.contract_price.clone(),
            received_at_ms,
        }),
    };
    let wanted = if matches!(content, Content::OrderCompleted(_)) {
        Audience::Customer
    } else {
        Audience::Operator
    };
    let notifiers = compose::email_notifiers(&config)?;
    let Some((name, notifier)) = notifiers.iter().find(|(name, n)| match &args.notifier {
        Some(wanted_name) => name == wanted_name,
        None => n.audience() == wanted,
    }) else {
        bail!(
            "no email notifier {} in {}",
            args.notifier.as_deref().map_or_else(
                || format!("for {} emails", wanted.as_str()),
                |n| format!("named {n:?}")
            ),
            path.display()
        );
    };
    let notification = Notification {
        key: format!("preview:{}:{name}", event.order_no),
        content,
    };
    let email = notifier
        .render(&notification)
        .with_context(|| format!("notifier {name} cannot render it"))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let stem = format!("{}-{}", sanitize(event.order_no.as_str()), email.locale);
    let eml = args.out.join(format!("{stem}.eml"));
    let html = args.out.join(format!("{stem}.html"));
    std::fs::write(&eml, email.eml()).with_context(|| format!("cannot write {}", eml.display()))?;
    std::fs::write(&html, &email.html)
        .with_context(|| format!("cannot write {}", html.display()))?;
    println!("subject: {}", email.subject);
    println!("locale:  {} (template {})", email.locale, email.template);
    println!("wrote {} ({} bytes)", eml.display(), email.eml().len());
    println!(
        "wrote {} ({} bytes of HTML)",
        html.display(),
        email.html.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// A file-name-safe version of an order number.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
