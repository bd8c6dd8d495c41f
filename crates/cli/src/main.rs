//! `esim-courier`: the eSIM reseller's fulfilment backend.

mod commands;
mod compose;
mod config;
mod plugins;
mod telemetry;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "esim-courier",
    version,
    about = "Receives the eSIM provider's order webhooks and delivers activation emails and operator alerts."
)]
struct Cli {
    /// Configuration file (TOML). Environment variables ESIM_COURIER__SECTION__KEY override it.
    #[arg(
        long,
        global = true,
        default_value = "config/esim-courier.toml",
        env = "ESIM_COURIER_CONFIG"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the webhook receiver, the order API and the dispatcher until SIGTERM or Ctrl-C.
    Serve,
    /// Apply database migrations, then exit.
    Migrate,
    /// Check the configuration, the store and every notifier; exit non-zero on a failure.
    Check,
    /// Inspect orders.
    Orders {
        #[command(subcommand)]
        command: commands::orders::OrdersCommand,
    },
    /// List and retry dead letters (deliveries that gave up).
    DeadLetters {
        #[command(subcommand)]
        command: commands::dead_letters::DeadLettersCommand,
    },
    /// Render the email a webhook payload would produce, to .eml and .html files, without
    /// sending anything.
    #[cfg(feature = "email")]
    Preview(commands::preview::PreviewArgs),
    /// Act as the provider: POST an order webhook with its 3-attempt retry policy.
    Simulate(commands::simulate::SimulateArgs),
    /// Deliberately send an order's activation email again, to the registered customer or
    /// `--to` another address (recorded in the audit log; bypasses the once-only rule).
    Resend(commands::resend::ResendArgs),
    /// Look orders up at the provider's order API and record the results whose webhook never
    /// came: `--order NO` for one order, `--since 6h` to sweep every recent order.
    Reconcile(commands::reconcile::ReconcileArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve => commands::serve::run(&cli.config).await,
            Command::Migrate => commands::migrate::run(&cli.config).await,
            Command::Check => commands::check::run(&cli.config).await,
            Command::Orders { command } => commands::orders::run(&cli.config, command).await,
            Command::DeadLetters { command } => {
                commands::dead_letters::run(&cli.config, command).await
            }
            Command::Simulate(args) => commands::simulate::run(args).await,
            #[cfg(feature = "email")]
            Command::Preview(args) => commands::preview::run(&cli.config, args).await,
            Command::Resend(args) => commands::resend::run(&cli.config, args).await,
            Command::Reconcile(args) => commands::reconcile::run(&cli.config, args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
