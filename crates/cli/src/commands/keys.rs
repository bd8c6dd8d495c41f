//! `esim-courier keys generate|rotate|status`, and where the store's keys come from: the
//! `[encryption]` section, or on SQLite without it the key file beside the database.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use esim_courier_store::{decode_key, generate_key, sqlite_file, Keyring, Progress};
use indicatif::{ProgressBar, ProgressStyle};
use secrecy::ExposeSecret;

use super::{connect_store, load, open_store};
use crate::config::{Config, EncryptionSection};

/// The key file's name, beside the SQLite database (`data/esim-courier.key` by default).
pub const KEY_FILE: &str = "esim-courier.key";

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new random key (base64 of 32 bytes) for `[encryption] keys` or `index_key`.
    Generate,
    /// Re-encrypt every stored value with `encryption.active_key`, in batches. Safe while
    /// `serve` runs once every replica has the same active key (one still sealing with the
    /// old key would write values this run does not see); run it again after an interruption
    /// and it goes on where it stopped.
    Rotate {
        /// Values read and rewritten per transaction: smaller batches hold the database's
        /// write lock for less time beside a busy `serve`.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        batch: u32,
    },
    /// How many stored values each key encrypted.
    Status,
    /// Make every blind-index entry again under a new `encryption.index_key`. Stop every
    /// `serve` first; the database accepts the new index key once this has finished (run it
    /// again if it was interrupted).
    Reindex,
}

/// `esim-courier keys ...`.
pub async fn run(path: &Path, command: KeysCommand) -> anyhow::Result<ExitCode> {
    if let KeysCommand::Generate = command {
        println!("{}", generate_key());
        return Ok(ExitCode::SUCCESS);
    }
    let config = load(path)?;
    if let KeysCommand::Reindex = command {
        // Not `open_store`: its start-up check refuses the new index key until this is done.
        let store = connect_store(&config).await?;
        let done = store
            .reindex(&|p: Progress| {
                if p.done.is_multiple_of(5_000) {
                    eprintln!("{}: {}", p.field, p.done);
                }
            })
            .await
            .context(
                "the blind index was not made again completely: run `keys reindex` again with the new index_key; until it finishes, no start is accepted with either key",
            )?;
        store.close().await;
        println!(
            "indexed again under the new index key: {} event fingerprint(s), {} address(es)",
            done.events, done.addresses
        );
        if done.kept > 0 {
            println!(
                "{} event(s) whose code was erased keep their old fingerprint (a provider retry of one would be recorded again)",
                done.kept
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = open_store(&config).await?;
    let code = match command {
        KeysCommand::Generate | KeysCommand::Reindex => unreachable!("answered above"),
        KeysCommand::Status => {
            let usage = store.key_usage().await?;
            print_usage(&usage);
            ExitCode::SUCCESS
        }
        KeysCommand::Rotate { batch } => {
            // Without a terminal (a deploy job's log) the progress is one line per batch.
            let lines = !std::io::stderr().is_terminal();
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{msg:24} [{bar:30}] {pos}/{len}")
                    .expect("a valid progress template")
                    .progress_chars("=> "),
            );
            let usage = store
                .rotate_keys(batch, &|p: Progress| {
                    if lines {
                        eprintln!("{}: {}/{}", p.field, p.done, p.total);
                    }
                    bar.set_message(p.field.to_string());
                    bar.set_length(p.total.max(p.done));
                    bar.set_position(p.done);
                })
                .await?;
            bar.finish_and_clear();
            println!(
                "re-encrypted {} value(s) with key {:?}",
                usage.rewritten,
                store.active_key()
            );
            print_usage(&usage);
            if usage.unreadable > 0 {
                eprintln!(
                    "error: {} value(s) could not be decrypted and were left as they are (each is named in the log)",
                    usage.unreadable
                );
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    };
    store.close().await;
    Ok(code)
}

fn print_usage(usage: &esim_courier_store::KeyUsage) {
    println!("stored values by key:");
    if usage.by_key.is_empty() {
        println!("  (none)");
    }
    for (id, n) in &usage.by_key {
        println!("  {id}: {n}");
    }
    if usage.plaintext > 0 {
        println!("  not encrypted yet: {}", usage.plaintext);
    }
    if usage.by_key.len() == 1 && usage.plaintext == 0 {
        let only = usage.by_key.keys().next().map(String::as_str).unwrap_or("");
        println!("every value uses {only:?}: any other key can be removed from [encryption] keys");
    }
}

/// Logs a walk over the stored values every 5,000 rows and at each column's end.
pub fn log_progress(p: Progress) {
    if p.total > 0 && (p.done.is_multiple_of(5_000) || p.done >= p.total) {
        tracing::info!(column = %p.field, done = p.done, total = p.total, "encrypting stored values");
    }
}

/// The store's keys: `[encryption]` when configured; on SQLite without it, the key file beside
/// the database, made on first start; on PostgreSQL without it, an error saying what to do.
pub async fn keyring(config: &Config) -> anyhow::Result<Keyring> {
    if let Some(section) = &config.encryption {
        return from_section(section).context("[encryption] is not usable");
    }
    let url = config.database.url.expose_secret();
    let Some(database) = sqlite_file(url) else {
        bail!(
            "on PostgreSQL the encryption keys must be configured, because every replica must share them: \
             add an [encryption] section with active_key, keys and index_key (each made with \
             `esim-courier keys generate`; in production give them by ESIM_COURIER__ENCRYPTION__KEYS__<ID> \
             and ESIM_COURIER__ENCRYPTION__INDEX_KEY)"
        );
    };
    let file = database
        .parent()
        .map_or_else(|| PathBuf::from(KEY_FILE), |d| d.join(KEY_FILE));
    // A new key file cannot read what the old one sealed: made only for a database that
    // holds nothing sealed (a new one, or one from before encryption).
    if !file.exists() && esim_courier_store::sqlite_records_keys(&database).await {
        bail!(
            "the key file {} is missing, but the database {} holds values sealed with its keys: \
             put back the key file kept with the database's backups (apart from them). A new \
             key file is made only for a database that has none, as it could not read what is stored",
            file.display(),
            database.display()
        );
    }
    key_file(&file)
}

fn from_section(section: &EncryptionSection) -> anyhow::Result<Keyring> {
    let mut keys = BTreeMap::new();
    for (id, key) in &section.keys {
        keys.insert(id.clone(), decode_key(id, key.expose_secret())?);
    }
    let Some(index) = &section.index_key else {
        bail!("encryption.index_key is missing (give it in the file or by ESIM_COURIER__ENCRYPTION__INDEX_KEY; make one with `esim-courier keys generate`)");
    };
    let index = decode_key("index_key", index.expose_secret())?;
    Ok(Keyring::new(&section.active_key, keys, index)?)
}

/// Reads the key file, or makes it (mode 0600) when there is none.
fn key_file(file: &Path) -> anyhow::Result<Keyring> {
    if !file.exists() {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the folder of {}", file.display()))?;
        }
        let text = format!(
            "# esim-courier's encryption keys for this SQLite database. Keep it with the database's\n\
             # backups, apart from them: without it the activation codes and customer data stored\n\
             # cannot be read. To manage keys yourself, move these into an [encryption] section.\n\
             active_key = \"k1\"\nindex_key = \"{}\"\n\n[keys]\nk1 = \"{}\"\n",
            generate_key(),
            generate_key()
        );
        // Written whole to a file of its own, then linked into place: another process starting
        // at the same moment, or a crash half-way, never sees a half-written key file; the
        // link fails if another process made the file first (theirs is used).
        let partial = file.with_extension(format!("key.{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&partial)
            .and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.sync_all()
            })
            .with_context(|| format!("cannot write the key file {}", partial.display()))?;
        let linked = std::fs::hard_link(&partial, file);
        let _ = std::fs::remove_file(&partial);
        match linked {
            Ok(()) => tracing::info!(
                file = %file.display(),
                "generated the encryption key file: back it up, apart from the database; without it the stored data cannot be read"
            ),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create the key file {}", file.display()))
            }
        }
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the key file {}", file.display()))?;
    let section: EncryptionSection = toml::from_str(&text)
        .with_context(|| format!("the key file {} is not valid", file.display()))?;
    from_section(&section).with_context(|| format!("the key file {} is not usable", file.display()))
}
