//! Durable storage of esim-courier on SQLite (the embedded default) or PostgreSQL (several
//! replicas).
//!
//! One set of SQL serves both engines: the statements use only what both understand (`$n`
//! parameters, `RETURNING`, `ON CONFLICT`), timestamps are Unix milliseconds in 64-bit
//! integers, and the few engine-specific parts (the migrations, the `FOR UPDATE [SKIP LOCKED]`
//! locks, PostgreSQL's combined intake and outcome statements) branch on [`Backend`]. sqlx's
//! `Any` driver runs them, except SQLite's intakes, claims and delivery outcomes: those go
//! through the group-commit writer (`group_commit.rs`), which runs them with rusqlite.
//!
//! Durability: SQLite runs in WAL mode with `synchronous=FULL`; PostgreSQL with
//! `synchronous_commit=on`. Every write that a caller acknowledges has been committed.

/// A closed set of values stored as text, one name per variant: `ALL`, `as_str` (the stored
/// name), `parse` (an unknown name is a corrupt row) and `Display` (the name). The names also
/// stand in SQL text where a partial index needs the literal (`WHERE state = 'pending'`).
macro_rules! stored_names {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: [$ty; [$($name),+].len()] = [$(Self::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name),+
                }
            }

            pub(crate) fn parse(s: &str) -> Result<Self, StoreError> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| StoreError::Corrupt(format!(concat!("unknown ", $what, " {:?}"), s)))
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod audit;
mod clock;
mod columns;
mod connect;
mod console;
mod crypto;
mod error;
mod group_commit;
mod intake;
mod orders;
mod outbox;
mod pg_batch;
mod pg_intake;
mod pg_outcome;
mod placements;
mod protect;
mod provider_gate;
mod retention;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::AnyPool;
use tokio::sync::Notify;

pub use audit::{AuditAction, AuditEntry, AuditRecord};
pub use clock::Clock;
pub use connect::{sqlite_file, sqlite_records_keys, StoreOptions};
pub use console::{
    AlertRecord, ConsoleSession, ConsoleUser, OrderFilter, OrderQuery, OrderRow, Overview, Role,
};
pub use crypto::{decode_key, generate_key, Field, Keyring, KEY_BYTES};
pub use error::StoreError;
pub use group_commit::{sqlite_statement_timings, StatementTiming};
pub use intake::{IntakeOutcome, NewJob, NewReceipt, Planned, Planner};
pub use orders::{
    AttemptRecord, EventRecord, JobRecord, OrderDetails, OrderRecord, Registration, Resend,
};
pub use outbox::{
    due_claim_statement, notifier_claim_statement, Attempt, AttemptOutcome, ClaimedJob,
    CustomerWait, DueClaim, JobContext, JobKind, JobState, RECONCILER,
};
pub use pg_outcome::outcome_batch_statement;
pub use placements::{NewPlacement, Placement, PlacementRecord, PlacementStatus};
pub use protect::{KeyUsage, Progress, Reindexed};
pub use provider_gate::ProviderGate;
pub use retention::{Erased, Retention, REDACTED_BODY};

/// Which database engine is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// The store. Cheap to clone; clones share the pools and the wake-up signal.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    /// Where writes go that do not go through `batcher`. On SQLite a single connection (SQLite
    /// has one writer at a time anyway) beside the batcher's; its transactions begin
    /// IMMEDIATE ([`Store::begin_write`]), so the two wait for each other instead of failing
    /// on a lock upgrade.
    write: AnyPool,
    /// Where reads go. On PostgreSQL the same pool as `write`.
    read: AnyPool,
    wake: Arc<Notify>,
    /// SQLite's group-commit writer for intakes, claims and delivery outcomes; `None` on
    /// PostgreSQL.
    batcher: Option<group_commit::Batcher>,
    /// PostgreSQL's intake writer.
    intakes: Option<pg_intake::Intakes>,
    /// PostgreSQL's writer of delivery outcomes.
    outcomes: Option<pg_outcome::Outcomes>,
    /// Where every time the store writes or compares comes from.
    clock: Clock,
    /// The keys that seal activation codes and customer data, and key the blind index.
    keys: Arc<Keyring>,
}

/// The PostgreSQL advisory lock whose holder migrates ([`Store::migrate`]): a constant of
/// esim-courier's own, not sqlx's (which derives one from the database's name). A replica of
/// a version from before takes sqlx's; it only ever runs migrations already applied.
const MIGRATION_LOCK: i64 = 0x6573_696d_2d6d_6967; // "esim-mig"

/// The database's migrations against this build's ([`Store::migration_status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// This build's migrations the database has not run (`version description`).
    pub pending: Vec<String>,
    /// Versions the database ran that this build does not know: a newer build migrated it.
    pub unknown: Vec<i64>,
}

impl Store {
    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The id of the key new values are sealed with.
    pub fn active_key(&self) -> &str {
        self.keys.active()
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// This engine's migrations.
    fn migrator(&self) -> sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        }
    }

    /// Applies the migrations of this engine that have not run yet. Processes that start
    /// together take turns; the first runs what is new, the others find it done.
    ///
    /// On PostgreSQL the turn is an advisory lock asked for again every 200 ms
    /// (`pg_try_advisory_lock`), not waited for (`pg_advisory_lock`, what sqlx's migrator
    /// does): some migrations build their index `CONCURRENTLY`, which waits for every
    /// transaction under way to end, a replica's wait for the lock among them, while that
    /// replica waits for the lock: PostgreSQL then ended one of them as a deadlock, and a
    /// replica started beside another failed to start. A try is a statement that ends at once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        use sqlx::Row;
        let mut migrator = self.migrator();
        if self.backend == Backend::Sqlite {
            return migrator.run(&self.write).await.map_err(StoreError::Migrate);
        }
        migrator.set_locking(false);
        let mut conn = self.write.acquire().await?;
        let mut waiting = false;
        loop {
            let taken: bool = sqlx::query("SELECT pg_try_advisory_lock($1) AS taken")
                .bind(MIGRATION_LOCK)
                .fetch_one(&mut *conn)
                .await?
                .try_get("taken")?;
            if taken {
                break;
            }
            if !waiting {
                tracing::info!("another process is migrating the database; waiting for it");
                waiting = true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        // `run_direct`: `run` on a connection makes this future `Send` for one lifetime only
        // (sqlx's own note on it), which a spawned task cannot take.
        let ran = migrator.run_direct(None, &mut *conn, false).await;
        let released = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
        if released.is_err() {
            // The lock is the session's: closed with its connection, not kept in the pool.
            drop(conn.detach());
        }
        ran.map_err(StoreError::Migrate)?;
        released?;
        Ok(())
    }

    /// What [`Store::migrate`] would do, without doing it (`check`, which may run beside
    /// replicas of the older version: a migration would make them refuse to start again).
    pub async fn migration_status(&self) -> Result<MigrationStatus, StoreError> {
        use sqlx::Row;
        let exists = match self.backend {
            Backend::Sqlite => {
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) AS n FROM pg_tables WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations'"
            }
        };
        let n: i64 = sqlx::query(exists)
            .fetch_one(&self.read)
            .await?
            .try_get("n")?;
        let applied: Vec<i64> = if n == 0 {
            Vec::new()
        } else {
            sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(|r| r.try_get("version"))
                .collect::<Result<_, _>>()?
        };
        let migrator = self.migrator();
        let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
        Ok(MigrationStatus {
            pending: migrator
                .iter()
                .filter(|m| !applied.contains(&m.version))
                .map(|m| format!("{} {}", m.version, m.description))
                .collect(),
            unknown: applied.into_iter().filter(|v| !known.contains(v)).collect(),
        })
    }

    /// Checks the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Signalled when jobs may have become due: a webhook or a registration committed, a dead
    /// letter was retried. In-process only; other processes find new jobs by polling.
    /// A signal sent while nobody waits is kept for the next waiter, so none is lost.
    pub fn jobs_changed(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    fn notify_jobs_changed(&self) {
        self.wake.notify_one();
    }

    /// Closes the pools, waiting for connections in use to be returned (on SQLite, after the
    /// group-commit writer has committed what was submitted to it).
    pub async fn close(&self) {
        if let Some(batcher) = &self.batcher {
            batcher.close().await;
        }
        if let Some(intakes) = &self.intakes {
            intakes.close().await;
        }
        if let Some(outcomes) = &self.outcomes {
            outcomes.close().await;
        }
        self.write.close().await;
        self.read.close().await;
    }

    /// A write transaction on the write pool. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): the group-commit writer is another connection to the same file, and
    /// a transaction that read first could not become a writer once that one had committed
    /// (`SQLITE_BUSY_SNAPSHOT`, which no busy timeout waits out).
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        })
    }

    /// An order's customer email, read under the order row's lock where the engine has row
    /// locks (`FOR UPDATE`); SQLite serialises writers instead. A registration and an
    /// erasure take the same lock, so whichever commits second sees the other.
    fn locked_customer_email(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "SELECT customer_email FROM orders WHERE order_no = $1",
            Backend::Postgres => "SELECT customer_email FROM orders WHERE order_no = $1 FOR UPDATE",
        }
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A duration in whole milliseconds, saturating.
pub fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
