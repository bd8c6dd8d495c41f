//! The least a durable intake can write: one transaction that inserts the raw body and one
//! outbox row, through sqlx's `Any` driver (the driver esim-courier's store uses) and a pool
//! of the same size. Two measurements use it:
//!
//! - **p**, the engine's limit: 32 tasks in this process call [`record`] in a closed loop on
//!   PostgreSQL. No HTTP, no parsing, no rules, no dispatcher: what this machine's PostgreSQL
//!   can commit at best through the same client.
//! - **n** and **m**, the naive peer (`esim-courier-bench naive-server`): what a developer
//!   would write in an afternoon with actix-web and sqlx, one transaction per request, on
//!   SQLite and on PostgreSQL, measured over HTTP like esim-courier.

use std::time::Duration;

use anyhow::Context;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor, Row};

/// The pool size: `max_connections` of the configuration esim-courier runs with in (b), (c).
pub const POOL_SIZE: u32 = 8;

/// A pool on `url` (SQLite or PostgreSQL) with the durability esim-courier keeps: WAL and
/// `synchronous=FULL` on SQLite, `synchronous_commit=on` on PostgreSQL.
pub async fn pool(url: &str, size: u32) -> anyhow::Result<AnyPool> {
    sqlx::any::install_default_drivers();
    let sqlite = url.starts_with("sqlite:");
    let pool = AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if sqlite {
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = FULL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                } else {
                    conn.execute("SET synchronous_commit = on").await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await
        .with_context(|| format!("cannot open {}", engine(url)))?;
    let id = if sqlite {
        "INTEGER PRIMARY KEY"
    } else {
        "BIGSERIAL PRIMARY KEY"
    };
    for statement in [
        format!(
            "CREATE TABLE IF NOT EXISTS minimal_receipts (id {id}, order_no TEXT NOT NULL,
             received_at BIGINT NOT NULL, body TEXT NOT NULL)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS minimal_outbox (id {id}, receipt_id BIGINT NOT NULL,
             kind TEXT NOT NULL, state TEXT NOT NULL, created_at BIGINT NOT NULL)"
        ),
    ] {
        pool.execute(sqlx::AssertSqlSafe(statement))
            .await
            .context("cannot create the tables")?;
    }
    Ok(pool)
}

/// One durable write: the raw body and an outbox row, committed together.
pub async fn record(pool: &AnyPool, order_no: &str, body: &str) -> Result<(), sqlx::Error> {
    let now = esim_courier_store::now_ms();
    let mut tx = pool.begin().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO minimal_receipts (order_no, received_at, body) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(order_no.to_owned())
    .bind(now)
    .bind(body.to_owned())
    .fetch_one(&mut *tx)
    .await?
    .try_get(0)?;
    sqlx::query(
        "INSERT INTO minimal_outbox (receipt_id, kind, state, created_at) VALUES ($1, 'order_completed', 'pending', $2)",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// "SQLite" or "PostgreSQL", for messages.
pub fn engine(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}
