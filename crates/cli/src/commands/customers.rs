//! `esim-courier customers forget EMAIL`: a customer's erasure on request (GDPR Art. 17).

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use esim_courier_core::EmailAddress;

use super::terminal::printable;
use super::{actor, load, open_store};

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Erase a customer's personal data and activation codes on every order and placement at
    /// once: addresses, names, languages, codes (kept masked), receipt bodies, recipients;
    /// and the address where `resend --to` sent to it, on any order.
    /// Recorded in the audit log without the address.
    Forget {
        /// The customer's address (any case).
        email: String,
        /// Who is acting, for the audit log (default: the OS user).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

/// `esim-courier customers ...`.
pub async fn run(path: &Path, command: CustomersCommand) -> anyhow::Result<ExitCode> {
    let CustomersCommand::Forget { email, by } = command;
    // Its shape only: an address an earlier version accepted (before registration applied
    // the mailer's rules) can still be erased.
    let address = match EmailAddress::parse_stored(email.trim()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let config = load(path)?;
    let store = open_store(&config).await?;
    let erased = store.forget_customer(address.as_str(), &actor(by)).await?;
    store.close().await;
    if erased.is_empty() {
        println!(
            "no order or placement holds {}: nothing erased",
            address.masked()
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("erased {erased}");
    if !erased.orders.is_empty() {
        println!("orders: {}", printable(&erased.orders.join(", ")));
    }
    Ok(ExitCode::SUCCESS)
}
