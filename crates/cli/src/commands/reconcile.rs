//! `esim-courier reconcile`: look orders up at the provider's order API and record the results
//! whose webhook never came (an outage longer than the provider's 9-second retry window).
//!
//! It writes through the same intake as a webhook, into the same database: a running
//! `esim-courier serve` delivers the emails and alerts the recovered orders get.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use esim_courier_core::OrderNo;
use esim_courier_dispatch::reconcile::{Found, Reconciler};
use indicatif::{ProgressBar, ProgressStyle};

use super::terminal::printable;
use super::{load, open_store};
use crate::compose;

/// `esim-courier reconcile (--order NO ... | --since DURATION)`.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub struct ReconcileArgs {
    /// Look these orders up (repeatable).
    #[arg(long = "order", value_name = "ORDER_NO")]
    pub orders: Vec<String>,
    /// Sweep every order the provider created within this long (e.g. `6h`, `2d`), newest
    /// first, recording the finished ones we never heard of.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,
}

/// Runs one reconciliation by hand. Exit 0 when every order was handled, 2 when an order
/// named with `--order` is unknown to the provider, 1 on an error.
pub async fn run(
    path: &Path,
    args: ReconcileArgs,
    registry: &crate::plugins::Registry,
) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    anyhow::ensure!(
        config.provider.is_some(),
        "no [provider] section: reconciliation needs the provider's order API (see config/production.example.toml)"
    );
    let orders = args
        .orders
        .iter()
        .map(|o| OrderNo::parse(o).map_err(|e| anyhow::anyhow!("--order {:?}: {e}", printable(o))))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let notifiers = compose::notifiers(&config, registry)?;
    let routes = compose::routes(&config, &notifiers)?;
    let store = open_store(&config).await?;
    // Its lookups take turns with the running replicas': the provider's rate is shared.
    let provider = compose::provider(&config, Some(&store))?.context("no [provider] section")?;
    let reconciler = Reconciler::new(store.clone(), provider, routes);
    let code = match args.since {
        Some(since) => sweep(&reconciler, since).await,
        None => lookups(&reconciler, &orders).await,
    };
    store.close().await;
    code
}

async fn lookups(reconciler: &Reconciler, orders: &[OrderNo]) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for order_no in orders {
        let found = reconciler
            .order(order_no)
            .await
            .with_context(|| format!("order {}", printable(order_no.as_str())))?;
        let what = match &found {
            Found::Recovered => "recovered: its result is recorded and routed".to_owned(),
            Found::AlreadyKnown => "already on record: nothing to do".to_owned(),
            Found::Conflict => {
                "contradicts the recorded result: recorded, operators alerted".to_owned()
            }
            Found::Unfinished(status) => format!(
                "not finished at the provider ({}): look again later",
                printable(&status.to_string())
            ),
            Found::NotAtProvider => {
                code = ExitCode::from(2);
                "unknown to the provider".to_owned()
            }
        };
        println!("{}: {what}", printable(order_no.as_str()));
    }
    Ok(code)
}

async fn sweep(reconciler: &Reconciler, since: Duration) -> anyhow::Result<ExitCode> {
    let since_ms = esim_courier_store::now_ms()
        .saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    // The provider's total counts every order it has, not only the window's: the bar shows
    // pages read against that, and stops early once the window is passed.
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let report = reconciler
        .sweep(since_ms, |report, total| {
            bar.set_message(format!(
                "{} pages, {} of the provider's {total} orders read, {} recovered",
                report.pages, report.orders, report.recovered
            ));
            bar.tick();
        })
        .await
        .context("the sweep stopped")?;
    bar.finish_and_clear();
    println!(
        "swept {} orders from the last {} in {} pages: {} recovered, {} already on record, {} conflicting, {} not finished, {} unreadable",
        report.orders,
        humantime::format_duration(since),
        report.pages,
        report.recovered,
        report.already_known,
        report.conflicts,
        report.unfinished,
        report.unreadable,
    );
    Ok(ExitCode::SUCCESS)
}
