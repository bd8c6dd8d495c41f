//! The `sweep` command: a reconciliation sweep over many orders at the fake provider (a real
//! HTTP server in this process that checks signatures and pages newest first), recording
//! every finished order into a fresh store. The baseline, measured in the same run, pages
//! through the same orders with the same client and rate limit but records nothing: the
//! difference is what recording costs, and the time is mostly the provider's rate limit.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use esim_courier_core::{CurrencyTable, Provider, Routes};
use esim_courier_dispatch::reconcile::Reconciler;
use esim_courier_provider_yoni::{YoniConfig, YoniProvider};
use esim_courier_store::{now_ms, Store, StoreOptions};
use esim_courier_test_support::provider::FakeProvider;

use crate::memory::{mb, PeakSampler};

/// The `sweep` command's options.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepBenchOptions {
    /// Finished orders at the provider.
    #[arg(long, default_value_t = 10_000)]
    pub orders: usize,
    /// Provider calls per second (the provider allows 10 for lookups).
    #[arg(long, default_value_t = 10)]
    pub rate: u32,
    /// The database (default: a fresh SQLite file under target/bench).
    #[arg(long)]
    pub url: Option<String>,
}

/// Runs the `sweep` command.
pub async fn run(options: SweepBenchOptions) -> anyhow::Result<()> {
    let fake = FakeProvider::start("bench", "bench-secret");
    for i in 0..options.orders {
        let order = fake.new_order("JP-7D-5GB");
        fake.add(order.clone());
        let iccid = format!("89440001{i:011}");
        fake.finish(
            &order.order_no,
            "COMPLETED",
            &iccid,
            "LPA:1$rsp.bench.example$69C32E7D00000001",
        );
    }
    let provider = Arc::new(
        YoniProvider::new(
            YoniConfig {
                base_url: fake.base.clone(),
                app_id: fake.app_id.clone(),
                app_secret: fake.app_secret.clone().into(),
                timeout: Duration::from_secs(10),
                requests_per_second: NonZeroU32::new(options.rate)
                    .context("--rate must be above 0")?,
            },
            CurrencyTable::default(),
        )
        .context("the provider client")?,
    );
    let size = Reconciler::PAGE_SIZE;

    // Baseline: the same pages, read and parsed, nothing recorded.
    let started = Instant::now();
    let mut current = 1;
    let mut read = 0;
    loop {
        let page = provider.page(current, size).await?;
        read += page.orders.len();
        if page.orders.is_empty() || u64::from(current) * u64::from(size) >= page.total {
            break;
        }
        current += 1;
    }
    let baseline = started.elapsed();
    let baseline_requests = fake.requests().len();

    let url = options.url.unwrap_or_else(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/bench")
            .join(format!("sweep-{:06x}", fastrand::u32(..0x100_0000)));
        format!("sqlite://{}/sweep.db", dir.display())
    });
    let store = Store::connect(&StoreOptions::new(
        url,
        std::sync::Arc::new(esim_courier_store::Keyring::random()),
    ))
    .await
    .context("cannot open the store")?;
    store.migrate().await.context("cannot migrate the store")?;
    let reconciler = Reconciler::new(store.clone(), provider, Routes::default());
    let before = crate::memory::resident(std::process::id())?;
    let peak = PeakSampler::start(std::process::id());
    let started = Instant::now();
    let report = reconciler
        .sweep(now_ms() - 3_600_000, |report, total| {
            if report.pages % 50 == 0 {
                eprintln!("  {} of {total} orders", report.orders);
            }
        })
        .await?;
    let swept = started.elapsed();
    let peak = peak.finish().await;
    let requests = fake.requests().len() - baseline_requests;
    store.close().await;

    println!(
        "sweep of {} orders at {} requests/s, page size {size}",
        options.orders, options.rate
    );
    println!(
        "  baseline (page through, record nothing): {read} orders in {} pages, {:.1} s",
        baseline_requests,
        baseline.as_secs_f64()
    );
    println!(
        "  sweep (record each through intake):      {} orders, {} recovered, in {} pages ({requests} requests), {:.1} s",
        report.orders,
        report.recovered,
        report.pages,
        swept.as_secs_f64()
    );
    println!(
        "  sweep / baseline: {:.2}x the time; resident memory {:.1} MB before, {:.1} MB at its highest during the sweep (+{:.1} MB)",
        swept.as_secs_f64() / baseline.as_secs_f64().max(f64::EPSILON),
        mb(before.now),
        mb(peak.max(before.now)),
        mb(peak.saturating_sub(before.now))
    );
    Ok(())
}
