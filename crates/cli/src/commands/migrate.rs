use std::path::Path;
use std::process::ExitCode;

use super::{load, open_store, redacted_url};
use secrecy::ExposeSecret;

/// `esim-courier migrate`.
pub async fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let store = open_store(&config).await?;
    store.close().await;
    println!(
        "database {} is up to date",
        redacted_url(config.database.url.expose_secret())
    );
    Ok(ExitCode::SUCCESS)
}
