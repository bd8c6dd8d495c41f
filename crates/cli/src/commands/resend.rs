use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use esim_courier_core::EmailAddress;

use super::{actor, load, open_store};
use crate::compose;

/// `esim-courier resend ORDER_NO [--to EMAIL] [--by NAME]`.
#[derive(Debug, clap::Args)]
pub struct ResendArgs {
    /// The provider's order number.
    pub order_no: String,
    /// Send to this address instead of the registered customer's. The address is recorded
    /// with the attempt and in the audit log.
    #[arg(long, value_name = "EMAIL")]
    pub to: Option<String>,
    /// Who is acting, for the audit log (default: the OS user).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

/// A deliberate, recorded re-send of the activation email to the customer-audience notifiers
/// routed on COMPLETED. The one way around the once-only rule, and the one way to send an
/// order's activation code to another address.
pub async fn run(
    path: &Path,
    args: ResendArgs,
    registry: &crate::plugins::Registry,
) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let to = args
        .to
        .as_deref()
        .map(EmailAddress::parse)
        .transpose()
        .context("--to")?;
    let notifiers = compose::notifiers(&config, registry)?;
    let routes = compose::routes(&config, &notifiers)?;
    let targets = compose::resend_targets(&notifiers, &routes);
    if targets.is_empty() {
        bail!("no customer notifier is routed on COMPLETED; nothing to re-send");
    }
    let order_no = &args.order_no;
    let by = actor(args.by);
    let store = open_store(&config).await?;
    let queued = store.resend(order_no, &targets, to.as_ref(), &by).await?;
    store.close().await;
    let Some(resend) = queued else {
        eprintln!("order {order_no} has no COMPLETED event with a usable activation code");
        return Ok(ExitCode::from(2));
    };
    let jobs = resend
        .jobs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    tracing::info!(
        order_no,
        jobs,
        by,
        "activation email re-send queued by an operator"
    );
    match &resend.recipient {
        Some(to) => println!(
            "re-send of order {order_no} to {} queued as job(s) {jobs} (recorded as by {by}); a running server delivers it within its poll interval",
            to.masked()
        ),
        None => println!(
            "re-send of order {order_no} queued as job(s) {jobs} (recorded as by {by}); no customer is registered yet, so it goes out when one is (or give --to EMAIL)"
        ),
    }
    Ok(ExitCode::SUCCESS)
}
