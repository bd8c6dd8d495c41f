//! esim-courier as a library: the whole command line (`serve`, `check`, `preview`,
//! `resend`, ...) behind a builder, so a reseller's own binary can register its own notifier
//! types beside the built-in ones without forking:
//!
//! ```no_run
//! # use esim_courier::core::{async_trait, Audience, Notification, Notifier, NotifyError, Receipt};
//! # #[derive(Debug)] struct Crm(String);
//! # #[async_trait] impl Notifier for Crm {
//! #     fn name(&self) -> &str { &self.0 }
//! #     fn audience(&self) -> Audience { Audience::Operator }
//! #     async fn notify(&self, _: &Notification) -> Result<Receipt, NotifyError> { Ok(Receipt::default()) }
//! # }
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct CrmConfig { url: String }
//!
//! fn main() -> std::process::ExitCode {
//!     esim_courier::Courier::builder()
//!         .notifier("crm", |name: String, _config: CrmConfig| Ok::<_, String>(Crm(name)))
//!         .run()
//! }
//! ```
//!
//! `[notifiers.x] type = "crm"` then works in the configuration exactly as a built-in type:
//! its keys are checked against `CrmConfig`, `check` validates and health-checks it, routes
//! reach it, and `retry`/`group_window` apply. `examples/custom-notifier` is a whole project.

/// `println!` for the commands' output: a closed stdout (the output piped into `head`, a
/// pager quit early) ends the command quietly, as Unix tools do, where the standard macro
/// panics on the broken pipe. Defined before the modules, so theirs is this one.
macro_rules! println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("error: cannot write the output: {e}");
            std::process::exit(1);
        }
    }};
}

mod commands;
mod compose;
mod config;
pub mod plugins;
mod telemetry;
mod tls;

/// The plugin contract, re-exported so a reseller's notifier uses the very version this
/// binary was built with.
pub use esim_courier_core as core;
pub use plugins::Registry;

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
    /// Manage the operators' console accounts (`/admin`).
    Users {
        #[command(subcommand)]
        command: commands::users::UsersCommand,
    },
    /// Customers' personal data: erase one customer's on request.
    Customers {
        #[command(subcommand)]
        command: commands::customers::CustomersCommand,
    },
    /// Encryption keys: generate one, rotate the stored data to the active key, see which
    /// keys it uses.
    Keys {
        #[command(subcommand)]
        command: commands::keys::KeysCommand,
    },
}

/// Builds an esim-courier binary: the built-in notifier types, plus those registered.
#[derive(Debug)]
pub struct Courier {
    registry: Registry,
}

impl Courier {
    /// The built-in notifier types (each behind its default-on Cargo feature).
    pub fn builder() -> Self {
        Self {
            registry: Registry::builtin(),
        }
    }

    /// Registers notifier type `type_name`: each `[notifiers.<name>]` section with
    /// `type = "<type_name>"` is deserialised into `C` (without esim-courier's own keys
    /// `type`, `retry`, `group_window`; refuse unknown keys in `C` so a typo names itself) and
    /// built by `new(name, config)`, whose error is shown with the section's name. A built-in
    /// type of the same name is replaced.
    #[must_use]
    pub fn notifier<C, N, E>(
        mut self,
        type_name: &str,
        new: impl Fn(String, C) -> Result<N, E> + Send + Sync + 'static,
    ) -> Self
    where
        C: serde::de::DeserializeOwned,
        N: core::Notifier + 'static,
        E: std::fmt::Display,
    {
        self.registry.register(type_name, new);
        self
    }

    /// Parses the command line and runs the command; the process's exit code.
    pub fn run(self) -> ExitCode {
        run(&self.registry)
    }
}

fn run(registry: &Registry) -> ExitCode {
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
            Command::Serve => commands::serve::run(&cli.config, registry).await,
            Command::Migrate => commands::migrate::run(&cli.config).await,
            Command::Check => commands::check::run(&cli.config, registry).await,
            Command::Orders { command } => commands::orders::run(&cli.config, command).await,
            Command::DeadLetters { command } => {
                commands::dead_letters::run(&cli.config, command).await
            }
            Command::Simulate(args) => commands::simulate::run(args).await,
            #[cfg(feature = "email")]
            Command::Preview(args) => commands::preview::run(&cli.config, args).await,
            Command::Resend(args) => commands::resend::run(&cli.config, args, registry).await,
            Command::Reconcile(args) => commands::reconcile::run(&cli.config, args, registry).await,
            Command::Users { command } => commands::users::run(&cli.config, command).await,
            Command::Keys { command } => commands::keys::run(&cli.config, command).await,
            Command::Customers { command } => commands::customers::run(&cli.config, command).await,
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
