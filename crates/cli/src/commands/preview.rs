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
    /// The customer's language (COMPLETED orders): a tag such as en, zh-Hans, ar, an
    /// Accept-Language value, or `all` for one email per locale of the template.
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
    let completed = matches!(event.result, OrderResult::Completed);
    let wanted = if completed {
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
    let locales = if args.locale == "all" {
        notifier.locales()
    } else {
        vec![args.locale.clone()]
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for locale in locales {
        let content = if completed {
            let code = event
                .usable_activation_code()
                .context("the payload has no usable activation code (lpa)")?
                .clone();
            let customer = Customer {
                email: EmailAddress::parse(&args.email).context("--email")?,
                name: None,
                locale: Some(Locale::parse(&locale).context("--locale")?),
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
        } else {
            Content::OrderFailed(FailedOrder {
                order_no: event.order_no.clone(),
                package_code: event.package_code.clone(),
                package_name: event.package_name.clone(),
                contract_price: event.contract_price.clone(),
                received_at_ms,
            })
        };
        let notification = Notification {
            key: format!("preview:{}:{name}", event.order_no),
            content,
        };
        let email = notifier
            .render(&notification)
            .with_context(|| format!("notifier {name} cannot render it"))?;
        write(&args.out, event.order_no.as_str(), &email)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the `.eml` as it would be sent, and the HTML part for a browser: its inline images
/// (the QR code, the logo) as PNG files next to it, referenced by file name instead of `cid:`.
fn write(
    out: &Path,
    order_no: &str,
    email: &esim_courier_notify_email::RenderedEmail,
) -> anyhow::Result<()> {
    let stem = format!("{}-{}", sanitize(order_no), email.locale);
    let eml = out.join(format!("{stem}.eml"));
    let html = out.join(format!("{stem}.html"));
    std::fs::write(&eml, email.eml()).with_context(|| format!("cannot write {}", eml.display()))?;
    let mut page = email.html.clone();
    for (cid, png) in &email.inline_images {
        let file = format!(
            "{stem}-{}.png",
            sanitize(cid.split('@').next().unwrap_or(cid))
        );
        let image = out.join(&file);
        std::fs::write(&image, png).with_context(|| format!("cannot write {}", image.display()))?;
        page = page.replace(&format!("cid:{cid}"), &file);
    }
    std::fs::write(&html, &page).with_context(|| format!("cannot write {}", html.display()))?;
    println!("subject: {}", email.subject);
    println!("locale:  {} (template {})", email.locale, email.template);
    println!("wrote {} ({} bytes)", eml.display(), email.eml().len());
    println!(
        "wrote {} ({} bytes of HTML; its images beside it)",
        html.display(),
        email.html.len()
    );
    Ok(())
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
