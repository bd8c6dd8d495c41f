//! `esim-courier users add|list|remove`: the operators' console accounts.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use esim_courier_store::Role;

use super::terminal::printable;
use super::{actor, load, open_store, time};

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a console user. The password is read from standard input (one line), never from
    /// the command line, where other users of the machine could see it.
    Add {
        /// The login name.
        name: String,
        /// `viewer` reads every page; `operator` also acts (resend, retry).
        #[arg(long, value_parser = ["viewer", "operator"])]
        role: String,
        /// Read the password from standard input (required: the only way to give it).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Who is acting, for the audit log (default: the OS user).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// List the console users.
    List,
    /// Remove a console user and end their sessions.
    Remove {
        /// The login name.
        name: String,
        /// Who is acting, for the audit log (default: the OS user).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

/// `esim-courier users ...`.
pub async fn run(path: &Path, command: UsersCommand) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let store = open_store(&config).await?;
    match command {
        UsersCommand::Add { name, role, by, .. } => {
            let name = name.trim().to_owned();
            if name.is_empty()
                || name.chars().count() > 64
                || name.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                bail!("a user name is 1 to 64 characters without spaces or control characters");
            }
            let role = Role::from_name(&role).context("--role is viewer or operator")?;
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("cannot read the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            let hash = esim_courier_console::hash_password(password)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if !store
                .add_console_user(&name, role, &hash, &actor(by))
                .await?
            {
                eprintln!(
                    "error: a console user named {} exists already",
                    printable(&name)
                );
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "added console user {} ({role}); log in at /admin/login on server.bind",
                printable(&name)
            );
        }
        UsersCommand::List => {
            let users = store.console_users().await?;
            if users.is_empty() {
                println!("no console users (add one with `esim-courier users add NAME --role operator --password-stdin`)");
            }
            for u in users {
                println!(
                    "{}\t{}\tadded {}",
                    printable(&u.name),
                    u.role,
                    time(u.created_at)
                );
            }
        }
        UsersCommand::Remove { name, by } => {
            if !store.remove_console_user(&name, &actor(by)).await? {
                eprintln!("error: no console user named {}", printable(&name));
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "removed console user {}; their sessions are ended",
                printable(&name)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
