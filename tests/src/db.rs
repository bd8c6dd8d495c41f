use sqlx::{AnyConnection, Connection, Executor};

/// The database engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the PostgreSQL server of `ESIM_COURIER_TEST_POSTGRES_URL`.
    Postgres,
}

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_ENV: &str = "ESIM_COURIER_TEST_POSTGRES_URL";
/// Set to `1` to make PostgreSQL tests fail, not skip, without a server.
pub const REQUIRE_POSTGRES_ENV: &str = "ESIM_COURIER_REQUIRE_POSTGRES";
/// A file to which each skipped test appends its name: `scripts/test` sets it and ends with
/// their count, so a run without PostgreSQL cannot pass for a full one.
pub const SKIP_LOG_ENV: &str = "ESIM_COURIER_SKIP_LOG";

/// Says that the running test is skipped, on stderr and in the skip log.
fn note_skipped() {
    skipped(&format!(
        "PostgreSQL test (set {POSTGRES_URL_ENV}=postgres://user@host:port/db to run it)"
    ));
}

/// Says that the running test is skipped because of `why`, on stderr and in the skip log
/// (`scripts/test` counts its lines).
pub fn skipped(why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    eprintln!("SKIPPED: {test}: {why}");
    if let Some(path) = std::env::var_os(SKIP_LOG_ENV) {
        use std::io::Write;
        // One short line per append: concurrent tests and test binaries do not interleave.
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{test}\n").as_bytes()));
        if let Err(e) = written {
            eprintln!(
                "note: the skip log {} cannot be written: {e}",
                path.to_string_lossy()
            );
        }
    }
}

/// A fresh, empty database, removed when dropped.
#[derive(Debug)]
pub struct TestDb {
    /// Its URL.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

/// A fresh database for `backend`, or `None` (with a message) when PostgreSQL is not
/// configured and not required.
pub async fn test_db(backend: Backend) -> Option<TestDb> {
    sqlx::any::install_default_drivers();
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("a temporary folder");
            let url = format!("sqlite://{}/esim-courier.db", dir.path().display());
            Some(TestDb {
                url,
                _dir: Some(dir),
                postgres: None,
            })
        }
        Backend::Postgres => {
            let admin = match std::env::var(POSTGRES_URL_ENV) {
                Ok(url) if !url.is_empty() => url,
                _ => {
                    assert!(
                        std::env::var(REQUIRE_POSTGRES_ENV).as_deref() != Ok("1"),
                        "{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} is not set"
                    );
                    note_skipped();
                    return None;
                }
            };
            let name = format!("esim_courier_test_{:016x}", fastrand::u64(..));
            let mut conn = AnyConnection::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {POSTGRES_URL_ENV}: {e}"));
            // `name` is our own hex, never input.
            conn.execute(sqlx::AssertSqlSafe(format!(r#"CREATE DATABASE "{name}""#)))
                .await
                .expect("CREATE DATABASE");
            let _ = conn.close().await;
            let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
            let url = format!("{base}/{name}");
            Some(TestDb {
                url,
                _dir: None,
                postgres: Some((admin, name)),
            })
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async code: use a private runtime on a plain thread.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = AnyConnection::connect(&admin).await.ok()?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                )))
                .await
                .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("note: a test database could not be dropped");
        }
    }
}
