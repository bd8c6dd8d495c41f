use thiserror::Error;

/// A storage failure.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be reached or refused the statement.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// SQLite refused a statement of the group-commit writer.
    #[error("database error")]
    Sqlite(#[from] rusqlite::Error),
    /// A migration failed.
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// The database URL is not one this store understands.
    #[error("{0}")]
    Config(String),
    /// A stored row does not hold what the code expects.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    /// A stored encrypted value does not open: altered, copied from another row, or sealed
    /// with a key that is not configured. Names the row, never the value.
    #[error("the stored {field} of row {row:?} cannot be decrypted: {reason}")]
    Decrypt {
        /// The column.
        field: crate::crypto::Field,
        /// The row's identity.
        row: String,
        /// Why.
        reason: String,
    },
    /// The group-commit writer has stopped (the store is closing).
    #[error("the database writer has stopped")]
    WriterStopped,
    /// A failure shared by every write of a group commit.
    #[error("{message}")]
    Batch {
        /// The failure, with its causes.
        message: String,
        /// Whether it means the database is unavailable.
        unavailable: bool,
    },
}

impl StoreError {
    /// Whether the database is unreachable or overloaded (a 503, retried by the caller),
    /// rather than a bug.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Tls(_)
                        | sqlx::Error::Protocol(_)
                ) || e.as_database_error().is_some_and(|d| {
                    // SQLite: busy/locked; PostgreSQL: admin shutdown, cannot connect now,
                    // serialization failure.
                    matches!(
                        d.code().as_deref(),
                        Some(
                            "5" | "6"
                                | "57P01"
                                | "57P02"
                                | "57P03"
                                | "40001"
                                | "40P01"
                                | "08006"
                                | "08003"
                        )
                    )
                })
            }
            Self::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::CannotOpen
            ),
            Self::WriterStopped => true,
            Self::Batch { unavailable, .. } => *unavailable,
            _ => false,
        }
    }

    /// Whether PostgreSQL ended the transaction to break a deadlock (`40P01`) or a
    /// serialization conflict (`40001`): the same work, done again, can succeed at once.
    pub(crate) fn is_lock_conflict(&self) -> bool {
        match self {
            Self::Database(e) => e
                .as_database_error()
                .is_some_and(|d| matches!(d.code().as_deref(), Some("40P01" | "40001"))),
            _ => false,
        }
    }

    /// A copy for each caller of a group commit (the driver's errors cannot be cloned).
    pub(crate) fn clone_for_caller(&self) -> StoreError {
        let mut message = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        StoreError::Batch {
            message,
            unavailable: self.is_unavailable(),
        }
    }
}
