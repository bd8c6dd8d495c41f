//! A fresh PostgreSQL database for one measurement, created on the server the benchmark was
//! pointed at and dropped afterwards.

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

/// A database created for this run.
#[derive(Debug)]
pub struct FreshDatabase {
    admin_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

/// Creates `esim_bench_<random>` on the server of `admin_url` (a database URL whose user may
/// create databases, e.g. `postgres://postgres@127.0.0.1:5432/test`).
pub async fn create(admin_url: &str) -> anyhow::Result<FreshDatabase> {
    let mut admin = connect(admin_url).await?;
    let name = format!("esim_bench_{:08x}", fastrand::u32(..));
    // `name` is our own hex, never input.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .with_context(|| format!("cannot create database {name}"))?;
    let _ = admin.close().await;
    let url = with_database(admin_url, &name)?;
    Ok(FreshDatabase {
        admin_url: admin_url.to_owned(),
        name,
        url,
    })
}

impl FreshDatabase {
    /// Drops the database (esim-courier must have stopped).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        let mut admin = connect(&self.admin_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&mut admin)
        .await
        .with_context(|| format!("cannot drop database {}", self.name))?;
        let _ = admin.close().await;
        Ok(())
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url))
        .await
        .context("PostgreSQL did not answer within 5 s")?
        .context("cannot connect to PostgreSQL")
}

/// `url` with its database (path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let scheme_end = url.find("://").context("a database URL has a scheme")? + 3;
    let (base, query) = match url.find('?') {
        Some(q) => url.split_at(q),
        None => (url, ""),
    };
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    Ok(format!("{}/{name}{query}", &base[..host_end]))
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x").unwrap(),
            "postgres://h:5432/x"
        );
    }
}
