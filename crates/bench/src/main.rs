//! `esim-courier-bench`: measures, in one run on this machine, esim-courier's webhook intake
//! against a raw actix-web baseline (throughput at 32 connections, latency percentiles,
//! latency against request rate), on SQLite and PostgreSQL; the end-to-end latency from
//! webhook to the customer's email accepted by a local SMTP server; activation emails per
//! second; and esim-courier's resident memory. Prints a table with the targets, writes
//! `target/bench/results.json` and the plot `docs/bench-latency.png`.
//!
//! ```sh
//! cargo run --release -p esim-courier-bench
//! ```

mod baseline;
mod console;
mod courier;
mod e2e;
mod emails;
mod limits;
mod load;
mod machine;
mod memory;
mod minimal;
mod naive;
mod payload;
mod plot;
mod postgres;
mod process;
mod report;
mod run;
mod smtp_sink;
mod store_only;
mod sweep;
mod watch;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "esim-courier-bench", about, version)]
/// Benchmarks esim-courier against a raw actix-web baseline (see BENCHMARKS.md).
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    options: run::Options,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the whole benchmark (the default).
    Run,
    /// Posts webhooks to a server you started yourself, e.g. to profile it under load, and
    /// prints what it measured.
    Load(run::LoadOptions),
    /// Measures esim-courier's store alone, in this process (no HTTP, no dispatcher): how many
    /// webhooks the database side takes by itself, and the CPU each costs.
    Store(store_only::StoreBenchOptions),
    /// A reconciliation sweep over many orders at a fake provider in this process, against
    /// paging through them without recording (time, requests, memory).
    Sweep(sweep::SweepBenchOptions),
    /// The operators' console over many orders (one million by default): the orders page and
    /// searches, through HTTP, against the console's static stylesheet as a baseline.
    Console(console::ConsoleBenchOptions),
    /// The disk alone: 4 KiB appends, each followed by `fdatasync`, as a commit does; prints
    /// the percentiles, the slowest (with when it ended) and how many took over 50 ms. Run on
    /// an idle machine, it shows whether stalls come from the disk itself.
    Disk {
        /// Seconds to run.
        #[arg(long, default_value_t = 60.0)]
        duration: f64,
        /// Syncs per second [default: as fast as the disk allows].
        #[arg(long)]
        rate: Option<f64>,
    },
    /// Serves the raw actix-web baseline (started by the benchmark itself).
    BaselineServer {
        /// The port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        /// HTTP worker threads.
        #[arg(long)]
        workers: usize,
    },
    /// Serves the naive peer (started by the benchmark itself): actix-web and sqlx, one
    /// transaction per webhook.
    NaiveServer {
        /// The port on 127.0.0.1.
        #[arg(long)]
        port: u16,
        /// HTTP worker threads.
        #[arg(long)]
        workers: usize,
        /// The database (`sqlite://…` or `postgres://…`).
        #[arg(long)]
        url: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::BaselineServer { port, workers }) => baseline::serve(port, workers),
        Some(Command::NaiveServer { port, workers, url }) => naive::serve(port, workers, url),
        Some(Command::Load(options)) => runtime()?.block_on(run::load_only(options)),
        Some(Command::Disk { duration, rate }) => {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
            std::fs::create_dir_all(&dir)?;
            let r = machine::sync_probe(&dir, std::time::Duration::from_secs_f64(duration), rate)?;
            println!(
                "fdatasync after a 4 KiB append: {:.0}/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (ended {}), {} over 50 ms",
                r.per_second, r.p50_ms, r.p99_ms, r.max_ms, r.slowest_at, r.stalled
            );
            Ok(())
        }
        Some(Command::Store(options)) => runtime()?.block_on(store_only::run(options)),
        Some(Command::Sweep(options)) => runtime()?.block_on(sweep::run(options)),
        Some(Command::Console(options)) => runtime()?.block_on(console::run(options)),
        None | Some(Command::Run) => runtime()?.block_on(run::run(cli.options)),
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
