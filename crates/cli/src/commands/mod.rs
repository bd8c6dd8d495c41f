//! One module per subcommand.

pub mod check;
pub mod customers;
pub mod dead_letters;
pub mod keys;
pub mod migrate;
pub mod orders;
#[cfg(feature = "email")]
pub mod preview;
pub mod reconcile;
pub mod resend;
pub mod serve;
pub mod simulate;
pub mod terminal;
pub mod users;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use esim_courier_store::{Store, StoreOptions};
use secrecy::ExposeSecret;

use crate::config::Config;

/// Loads the configuration and installs logging.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let config = Config::load(path)?;
    crate::telemetry::init(config.log.format, &config.log.level);
    Ok(config)
}

/// Opens and migrates the store, and readies its encryption (checks the keys, encrypts what
/// a database from before encryption holds).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let store = connect_store(config).await?;
    store
        .prepare_encryption(&keys::log_progress)
        .await
        .context("cannot start with the configured encryption keys")?;
    Ok(store)
}

/// Opens and migrates the store, without readying its encryption (`keys rotate` does its
/// own walk).
pub async fn connect_store(config: &Config) -> anyhow::Result<Store> {
    let store = connect_unmigrated(config).await?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

/// Opens the store as it is, unmigrated (`check`, which changes nothing).
pub async fn connect_unmigrated(config: &Config) -> anyhow::Result<Store> {
    let keys = keys::keyring(config).await?;
    let mut options = StoreOptions::new(config.database.url.expose_secret(), Arc::new(keys));
    options.max_connections = config.database.max_connections;
    Store::connect(&options).await.with_context(|| {
        format!(
            "cannot open the database ({})",
            redacted_url(config.database.url.expose_secret())
        )
    })
}

/// The database URL without its password, for messages: the one in its user information
/// (`postgres://user:***@host/db`) and any in its query (`?password=***`, `sslpassword`), which
/// sqlx accepts too. Read as sqlx reads it (the `url` crate, query keys decoded). A URL that
/// does not parse shows only its scheme, since where its password ends cannot be told; a
/// path without a scheme (`data/esim.db`) holds none and shows whole.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, _)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Ok(mut parsed) = url::Url::parse(url) else {
        return format!("{scheme}://… (not a valid URL, not shown)");
    };
    let mut changed = false;
    if parsed.password().is_some() {
        changed |= parsed.set_password(Some("***")).is_ok();
    }
    let secret = |key: &str| key.to_ascii_lowercase().contains("password");
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    if pairs.iter().any(|(key, _)| secret(key)) {
        parsed.query_pairs_mut().clear().extend_pairs(
            pairs
                .iter()
                .map(|(key, value)| (key, if secret(key) { "***" } else { value })),
        );
        changed = true;
    }
    if changed {
        parsed.to_string()
    } else {
        url.to_owned()
    }
}

/// Who an operator command is recorded as in the audit log: `--by NAME`, else the OS user.
pub fn actor(by: Option<String>) -> String {
    by.map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(whoami::username)
}

/// `2026-11-28T10:00:00.123Z` from Unix milliseconds.
pub fn time(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn a_database_password_never_shows_wherever_the_url_holds_it() {
        for (url, shown) in [
            (
                "postgres://esim:s3cret@db:5432/esim",
                "postgres://esim:***@db:5432/esim",
            ),
            (
                "postgres://esim:s3%3Fcr%40t@db/esim?sslmode=require",
                "postgres://esim:***@db/esim?sslmode=require",
            ),
            (
                "postgres://db/esim?password=s3cret&user=esim@corp",
                "postgres://db/esim?password=***&user=esim%40corp",
            ),
            (
                "postgres://esim@db/esim?pass%77ord=s3cret",
                "postgres://esim@db/esim?password=***",
            ),
            (
                "postgres://[::1]:5432/esim?password=s3cret",
                "postgres://[::1]:5432/esim?password=***",
            ),
            // Not a URL (a '/' in the password cuts its host): nothing of it is shown.
            (
                "postgres://esim:pa/ss@db/esim",
                "postgres://… (not a valid URL, not shown)",
            ),
            ("data/esim-courier.db", "data/esim-courier.db"),
            (
                "postgres://esim@db/esim?password=s3cret&sslmode=require",
                "postgres://esim@db/esim?password=***&sslmode=require",
            ),
            (
                "postgres://db/esim?user=esim&PASSWORD=s3cret&sslpassword=s3cret",
                "postgres://db/esim?user=esim&PASSWORD=***&sslpassword=***",
            ),
            ("sqlite:data/esim-courier.db", "sqlite:data/esim-courier.db"),
            (
                "sqlite:data/esim-courier.db?mode=rwc",
                "sqlite:data/esim-courier.db?mode=rwc",
            ),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }
}
