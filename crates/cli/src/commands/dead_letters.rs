use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;

use super::terminal::printable;
use super::{actor, load, open_store, time};

#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// List deliveries that gave up, newest first.
    List,
    /// Queue dead letters again (attempts start over). A running `serve` picks them up
    /// within its poll interval.
    Retry {
        /// The job id shown by `list`.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<i64>,
        /// Retry every dead letter.
        #[arg(long)]
        all: bool,
        /// Who is acting, for the audit log (default: the OS user).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

/// `esim-courier dead-letters ...`.
pub async fn run(path: &Path, command: DeadLettersCommand) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let store = open_store(&config).await?;
    match command {
        DeadLettersCommand::List => {
            let dead = store.dead_letters().await?;
            if dead.is_empty() {
                println!("no dead letters");
            }
            for j in dead {
                // Tab-separated columns; each stored value escaped on its own.
                println!(
                    "{}\t{}\t{} -> {}\torder {}\t{} attempt(s)\t{}",
                    j.id,
                    time(j.updated_at),
                    printable(&j.kind),
                    printable(&j.notifier),
                    printable(j.order_no.as_deref().unwrap_or("-")),
                    j.attempts,
                    printable(j.last_error.as_deref().unwrap_or("-"))
                );
            }
        }
        DeadLettersCommand::Retry { id, all, by } => {
            let n = store
                .retry_dead(if all { None } else { id }, &actor(by))
                .await?;
            match (n, id) {
                (0, Some(id)) if !all => {
                    eprintln!("job {id} is not a dead letter");
                    return Ok(ExitCode::from(2));
                }
                _ => println!("{n} dead letter(s) queued again"),
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
