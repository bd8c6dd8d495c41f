//! The `store` command: esim-courier's store alone, in this process, with no HTTP and no
//! dispatcher. It shows how many webhooks the database side can take by itself, which bounds
//! what (b) and (c) can reach whatever the HTTP side does, and how much CPU each one costs.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use esim_courier_core::{CurrencyTable, WebhookPayload};
use esim_courier_store::{
    sqlite_statement_timings, JobKind, NewJob, NewReceipt, StatementTiming, Store, StoreOptions,
};

use crate::limits::closed_loop;
use crate::load::Outcome;
use crate::payload::Orders;

/// The `store` command's options.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreBenchOptions {
    /// The database: a SQLite URL (default: a fresh file under target/bench) or a PostgreSQL
    /// URL of an empty, migrated-or-migratable database.
    #[arg(long)]
    pub url: Option<String>,
    /// Intakes under way at once (as the 32 connections of the HTTP measurements).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// SQLite: also time each statement the writer runs, and print where its time goes.
    #[arg(long)]
    pub statements: bool,
}

/// Runs the `store` command.
pub async fn run(options: StoreBenchOptions) -> anyhow::Result<()> {
    let run_id = format!("{:06x}", fastrand::u32(..0x100_0000));
    let url = match options.url {
        Some(url) => url,
        None => {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/bench")
                .join(format!("store-{run_id}"));
            format!("sqlite://{}/store.db", dir.display())
        }
    };
    let measured = measure(
        &url,
        Orders::new(&run_id, "store"),
        options.concurrency,
        Duration::from_secs_f64(options.duration),
        Duration::ZERO,
        options.statements,
    )
    .await?;
    let (all, elapsed) = (
        &measured.outcome.latency,
        measured.outcome.elapsed.as_secs_f64(),
    );
    let n = all.len();
    println!(
        "store alone ({}): {n} intakes in {elapsed:.1} s, {:.0}/s, {} at once; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} failed",
        store_kind(&url),
        n as f64 / elapsed,
        options.concurrency,
        all.value_at_quantile(0.5) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0,
        all.max() as f64 / 1000.0,
        measured.outcome.errors,
    );
    if let Some(cpu) = measured.cpu_s {
        println!(
            "CPU of this process: {:.0} µs per intake ({:.2} cores)",
            cpu * 1e6 / n as f64,
            cpu / elapsed
        );
    }
    if let Some(writer) = measured.writer_cpu_s {
        println!(
            "CPU of the SQLite writer thread: {:.0} µs per intake ({:.0} % of one core)",
            writer * 1e6 / n as f64,
            writer * 100.0 / elapsed
        );
    }
    if options.statements {
        print_statements(&measured.statements, n);
    }
    Ok(())
}

/// Where the writer's statement time went, per intake.
fn print_statements(statements: &[StatementTiming], intakes: u64) {
    let total: Duration = statements.iter().map(|s| s.total).sum();
    if total.is_zero() {
        println!("no statement was timed: --statements times SQLite's writer, and this store has none (PostgreSQL)");
        return;
    }
    if intakes == 0 {
        println!("no intake completed: nothing to divide the writer's statement time by");
        return;
    }
    println!(
        "the SQLite writer's statements (wall clock, as SQLite times them): {:.1} µs per intake",
        total.as_secs_f64() * 1e6 / intakes as f64
    );
    println!("  per intake   runs/intake    µs each   share  statement");
    for s in statements {
        let sql: String = s.sql.chars().take(72).collect();
        println!(
            "  {:>7.2} µs   {:>11.3}   {:>8.2}   {:>4.1} %  {sql}",
            s.total.as_secs_f64() * 1e6 / intakes as f64,
            s.runs as f64 / intakes as f64,
            s.total.as_secs_f64() * 1e6 / s.runs as f64,
            s.total.as_secs_f64() * 100.0 / total.as_secs_f64(),
        );
    }
}

/// The statements timed between `before` and `after`, slowest in total first.
fn timed_between(before: &[StatementTiming], after: Vec<StatementTiming>) -> Vec<StatementTiming> {
    let mut during: Vec<StatementTiming> = after
        .into_iter()
        .filter_map(|mut s| {
            if let Some(b) = before.iter().find(|b| b.sql == s.sql) {
                s.runs -= b.runs;
                s.total -= b.total;
            }
            (s.runs > 0).then_some(s)
        })
        .collect();
    during.sort_by_key(|s| std::cmp::Reverse(s.total));
    during
}

/// What [`measure`] saw.
#[derive(Debug)]
pub struct StoreRun {
    /// The intakes, as a closed-loop measurement.
    pub outcome: Outcome,
    /// CPU seconds of this process during the measurement.
    pub cpu_s: Option<f64>,
    /// CPU seconds of the SQLite writer thread during the measurement.
    pub writer_cpu_s: Option<f64>,
    /// The writer's statements during the measurement, when asked for.
    pub statements: Vec<StatementTiming>,
}

/// Opens and migrates the store at `url` (encryption on, a key made for the run), then
/// calls its intake from `concurrency` tasks: `warm_up`, then `duration` measured. Each
/// intake writes what a webhook through esim-courier writes: receipt, order, event and one
/// outbox job.
pub async fn measure(
    url: &str,
    orders: Orders,
    concurrency: usize,
    duration: Duration,
    warm_up: Duration,
    statements: bool,
) -> anyhow::Result<StoreRun> {
    let store = Store::connect(&StoreOptions {
        statement_timings: statements,
        ..StoreOptions::new(
            url.to_owned(),
            Arc::new(esim_courier_store::Keyring::random()),
        )
    })
    .await
    .context("cannot open the store")?;
    store.migrate().await.context("cannot migrate the store")?;
    let orders = Arc::new(orders);
    let intake = {
        let store = store.clone();
        Arc::new(move |seq: u64| {
            let (store, orders) = (store.clone(), Arc::clone(&orders));
            async move { one_intake(&store, &orders, seq).await }
        })
    };
    if !warm_up.is_zero() {
        let warm = Arc::clone(&intake);
        closed_loop(concurrency, warm_up, move |seq| warm(seq + 1_000_000_000)).await?;
    }
    let cpu_before = process_cpu();
    let writer_before = thread_cpu("sqlite-writer");
    let statements_before = sqlite_statement_timings();
    let outcome = closed_loop(concurrency, duration, move |seq| intake(seq)).await?;
    let statements = timed_between(&statements_before, sqlite_statement_timings());
    let cpu_s = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let writer_cpu_s = thread_cpu("sqlite-writer")
        .zip(writer_before)
        .map(|(after, before)| after - before);
    store.close().await;
    Ok(StoreRun {
        outcome,
        cpu_s,
        writer_cpu_s,
        statements,
    })
}

/// The currencies, made once as the server makes them once.
static CURRENCIES: std::sync::LazyLock<CurrencyTable> =
    std::sync::LazyLock::new(CurrencyTable::default);

/// One webhook's intake, as the HTTP handler makes it (a COMPLETED order routed to one
/// notifier).
async fn one_intake(store: &Store, orders: &Orders, seq: u64) -> anyhow::Result<()> {
    let body = orders.webhook_body(seq);
    let event = WebhookPayload::from_slice(&body)
        .ok()
        .and_then(|p| p.into_event(&CURRENCIES).ok())
        .context("the benchmark's payload does not parse")?;
    store
        .intake(
            NewReceipt {
                received_at_ms: esim_courier_store::now_ms(),
                remote_addr: Some("127.0.0.1"),
                body: &body,
                source: esim_courier_core::EventSource::Webhook,
            },
            &event,
            |_, _| {
                vec![NewJob {
                    notifier: "bench-log".to_owned(),
                    kind: JobKind::OrderCompleted,
                    payload: None,
                }]
                .into()
            },
        )
        .await
        .context("an intake failed")?;
    Ok(())
}

fn store_kind(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

/// CPU seconds (user + system) this process has used, from /proc.
fn process_cpu() -> Option<f64> {
    cpu_of(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// CPU seconds of this process's thread named `name`, if there is one.
fn thread_cpu(name: &str) -> Option<f64> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .flatten()
        .find(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .and_then(|t| cpu_of(&std::fs::read_to_string(t.path().join("stat")).ok()?))
}

/// User + system CPU seconds of a `/proc/…/stat` line.
fn cpu_of(stat: &str) -> Option<f64> {
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Clock ticks: 100 per second on Linux.
    Some((utime + stime) / 100.0)
}
