use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Executor;
use tokio::sync::Notify;

use crate::{Backend, Clock, Keyring, Store, StoreError};

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite://path/to/file.db` or `postgres://user@host:port/db`.
    pub url: String,
    /// The most connections to open (reads, and writes on PostgreSQL).
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing (the webhook then
    /// answers 503 and the provider retries).
    pub acquire_timeout: Duration,
    /// Where the store reads the time: the system clock, or a manual one in tests.
    pub clock: Clock,
    /// The keys for encryption at rest and the blind index.
    pub keys: Arc<Keyring>,
    /// SQLite: time each statement the group-commit writer runs, for
    /// [`sqlite_statement_timings`](crate::sqlite_statement_timings) (the benchmark's
    /// `store --statements`). Off by default: it costs a lock and an allocation per statement.
    pub statement_timings: bool,
}

impl StoreOptions {
    /// Defaults for `url` and `keys`: 8 connections, 3 s acquire timeout.
    pub fn new(url: impl Into<String>, keys: Arc<Keyring>) -> Self {
        Self {
            url: url.into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
            clock: Clock::system(),
            keys,
            statement_timings: false,
        }
    }
}

impl Store {
    /// Opens the database (creating a SQLite file and its folder if missing). Does not
    /// migrate: call [`Store::migrate`].
    pub async fn connect(options: &StoreOptions) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let url = options.url.trim();
        let (backend, write, read, batcher) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let (path, url) = sqlite_target(rest)?;
            let write = sqlite_pool(1, options.acquire_timeout)
                .connect(&url)
                .await?;
            let read = sqlite_pool(options.max_connections.max(1), options.acquire_timeout)
                .connect(&url)
                .await?;
            // After the pools: connecting them created the file and set WAL mode.
            let batcher = crate::group_commit::Batcher::start(&path, options.statement_timings)?;
            (Backend::Sqlite, write, read, Some(batcher))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = AnyPoolOptions::new()
                .max_connections(options.max_connections.max(2))
                .acquire_timeout(options.acquire_timeout)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("SET synchronous_commit = on").await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await?;
            (Backend::Postgres, pool.clone(), pool, None)
        } else {
            return Err(StoreError::Config(format!(
                "database.url must start with sqlite:// or postgres://, got {:?}",
                url.split(':').next().unwrap_or_default()
            )));
        };
        // PostgreSQL's intake writers: half the pool, so that the dispatcher's claims and
        // outcomes and the API's reads always find a connection.
        let intakes = (backend == Backend::Postgres).then(|| {
            crate::pg_intake::Intakes::start(
                write.clone(),
                (options.max_connections / 2).max(1) as usize,
            )
        });
        // Its outcome writers: a quarter of the pool. Outcomes are smaller and fewer than
        // webhooks at their peak, and a batch takes every outcome queued meanwhile.
        let outcomes = (backend == Backend::Postgres).then(|| {
            crate::pg_outcome::Outcomes::start(
                write.clone(),
                (options.max_connections / 4).max(1) as usize,
            )
        });
        Ok(Self {
            backend,
            write,
            read,
            wake: Arc::new(Notify::new()),
            intakes,
            outcomes,
            batcher,
            clock: options.clock.clone(),
            keys: Arc::clone(&options.keys),
        })
    }
}

/// The file a `sqlite:` URL opens, as the store opens it; `None` for another engine.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.trim().strip_prefix("sqlite:")?;
    let (path, _) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.strip_prefix("//").unwrap_or(path);
    SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
        .ok()
        .map(|o| o.get_filename().to_path_buf())
}

/// Whether the SQLite database at `file` records an encryption key that sealed a value (read
/// before choosing its keys: a new key file cannot read what the old one sealed). A file that
/// does not exist, cannot be read, or is from before encryption records none.
pub async fn sqlite_records_keys(file: &std::path::Path) -> bool {
    use sqlx::{ConnectOptions, Connection};
    if !file.exists() {
        return false;
    }
    let Ok(mut db) = SqliteConnectOptions::new().filename(file).connect().await else {
        return false;
    };
    let recorded = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM encryption_keys")
        .fetch_one(&mut db)
        .await
        .is_ok_and(|n| n > 0);
    let _ = db.close().await;
    recorded
}

/// Turns `//data/x.db` into the file's path and a URL that creates the file, and creates
/// its folder. The path is the one sqlx opens (percent-decoded), so that the group-commit
/// writer opens the same file.
fn sqlite_target(rest: &str) -> Result<(PathBuf, String), StoreError> {
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() || path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory") {
        return Err(StoreError::Config(
            "database.url must name a SQLite file: an in-memory database would lose every order on restart".into(),
        ));
    }
    if query
        .split('&')
        .any(|kv| kv == "mode=ro" || kv.starts_with("immutable="))
    {
        return Err(StoreError::Config(
            "database.url opens the database read-only (mode=ro or immutable), but esim-courier writes to it".into(),
        ));
    }
    let query = match query {
        "" => "mode=rwc".to_owned(),
        q if q.contains("mode=") => q.to_owned(),
        q => format!("{q}&mode=rwc"),
    };
    let url = format!("sqlite://{path}?{query}");
    let file = SqliteConnectOptions::from_str(&url)
        .map_err(|e| StoreError::Config(format!("database.url is not a usable SQLite URL: {e}")))?
        .get_filename()
        .to_path_buf();
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Config(format!(
                "cannot create the database folder {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok((file, url))
}

fn sqlite_pool(max: u32, acquire_timeout: Duration) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .min_connections(1)
        .acquire_timeout(acquire_timeout)
        .after_connect(|conn, _| {
            Box::pin(async move {
                // WAL lets readers run beside the writer; FULL syncs the WAL on every commit so
                // an acknowledged webhook survives power loss, not just a process crash.
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA busy_timeout = 5000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                // As the group-commit writer: freed content is zeroed (no plaintext left in
                // free pages after encryption, rotation or erasure).
                conn.execute("PRAGMA secure_delete = ON").await?;
                Ok(())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_opens_the_file_sqlx_opens() {
        let root = tempfile::tempdir().expect("tempdir");
        let rest = format!("//{}/my%20data/x.db", root.path().display());
        let (file, url) = sqlite_target(&rest).expect("a file URL");
        assert_eq!(file, root.path().join("my data/x.db"));
        assert!(url.ends_with("?mode=rwc"), "{url}");
        assert!(
            root.path().join("my data").is_dir(),
            "its folder is created"
        );
    }

    #[test]
    fn urls_that_cannot_keep_orders_are_refused() {
        for rest in [
            "//:memory:",
            "",
            "//data/x.db?mode=memory",
            "//data/x.db?mode=ro",
            "//data/x.db?immutable=1",
        ] {
            let error = sqlite_target(rest).expect_err(rest);
            assert!(matches!(error, StoreError::Config(_)), "{rest}: {error}");
        }
    }
}
