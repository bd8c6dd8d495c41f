//! The `store` command: esim-courier's store alone, in this process, with no HTTP and no
//! dispatcher. It shows how many webhooks the database side can take by itself, which bounds
//! what (b) and (c) can reach whatever the HTTP side does, and how much CPU each one costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use esim_courier_core::{CurrencyTable, WebhookPayload};
use esim_courier_store::{JobKind, NewJob, NewReceipt, Store, StoreOptions};

use crate::load::{new_histogram, record};
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
    let store = Store::connect(&StoreOptions::new(
        url.clone(),
        std::sync::Arc::new(esim_courier_store::Keyring::random()),
    ))
    .await
    .context("cannot open the store")?;
    store.migrate().await.context("cannot migrate the store")?;

    let orders = Arc::new(Orders::new(&run_id, "store"));
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(options.duration);
    let cpu_before = process_cpu();
    let writer_before = thread_cpu("sqlite-writer");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..options.concurrency {
        let (store, orders, next) = (store.clone(), Arc::clone(&orders), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut latencies = new_histogram();
            let currencies = CurrencyTable::default();
            while Instant::now() < deadline {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                let body = orders.webhook_body(seq);
                let event = WebhookPayload::from_slice(&body)
                    .ok()
                    .and_then(|p| p.into_event(&currencies).ok())
                    .context("the benchmark's payload does not parse")?;
                let sent = Instant::now();
                store
                    .intake(
                        NewReceipt {
                            received_at_ms: esim_courier_store::now_ms(),
                            remote_addr: Some("127.0.0.1"),
                            body: &body,
                            source: esim_courier_core::EventSource::Webhook,
                        },
                        &event,
                        |_| {
                            vec![NewJob {
                                notifier: "bench-log".to_owned(),
                                kind: JobKind::OrderCompleted,
                                payload: None,
                            }]
                        },
                    )
                    .await
                    .context("an intake failed")?;
                record(&mut latencies, sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = new_histogram();
    for task in tasks {
        all.add(task.await??)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let writer = thread_cpu("sqlite-writer")
        .zip(writer_before)
        .map(|(after, before)| after - before);
    let n = all.len();
    println!(
        "store alone ({}): {n} intakes in {elapsed:.1} s, {:.0}/s, {} at once; p50 {:.2} ms, p99 {:.2} ms",
        store_kind(&url),
        n as f64 / elapsed,
        options.concurrency,
        all.value_at_quantile(0.5) as f64 / 1000.0,
        all.value_at_quantile(0.99) as f64 / 1000.0,
    );
    if let Some(cpu) = cpu {
        println!(
            "CPU of this process: {:.0} µs per intake ({:.2} cores)",
            cpu * 1e6 / n as f64,
            cpu / elapsed
        );
    }
    if let Some(writer) = writer {
        println!(
            "CPU of the SQLite writer thread: {:.0} µs per intake ({:.0} % of one core)",
            writer * 1e6 / n as f64,
            writer * 100.0 / elapsed
        );
    }
    store.close().await;
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
