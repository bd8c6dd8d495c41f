use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use esim_courier_core::{Audience, RouteTrigger};

use super::{load, open_store};
use crate::compose;

/// `esim-courier resend ORDER_NO`: a deliberate, recorded re-send of the activation email to
/// the customer-audience notifiers routed on COMPLETED. The one way around the once-only rule.
pub async fn run(path: &Path, order_no: &str) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let notifiers = compose::notifiers(&config)?;
    let routes = compose::routes(&config, &notifiers)?;
    let targets: Vec<String> = routes
        .for_trigger(RouteTrigger::Completed)
        .into_iter()
        .filter(|n| {
            notifiers
                .get(*n)
                .is_some_and(|r| r.notifier.audience() == Audience::Customer)
        })
        .map(str::to_owned)
        .collect();
    if targets.is_empty() {
        bail!("no customer notifier is routed on COMPLETED; nothing to re-send");
    }
    let store = open_store(&config).await?;
    let queued = store.resend(order_no, &targets).await?;
    store.close().await;
    match queued {
        Some(ids) => {
            tracing::info!(order_no, jobs = ?ids, "activation email re-send queued by an operator");
            println!(
                "re-send of order {order_no} queued as job(s) {}; a running server delivers it within its poll interval",
                ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("order {order_no} has no COMPLETED event with a usable activation code");
            Ok(ExitCode::from(2))
        }
    }
}
