//! The operators' console: accounts, sessions and failed logins, in the database so every
//! replica shares them.
//!
//! Passwords arrive here already hashed (argon2id, by the caller) and sessions by the SHA-256
//! of their cookie's id: nothing stored here logs anybody in.

use sqlx::Row;

use crate::audit::{self, AuditAction, AuditEntry};
use crate::{Store, StoreError};

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads every page.
    Viewer,
    /// Also acts: resend, reveal, retry.
    Operator,
}

stored_names!(Role, "console role", {
    Viewer => "viewer",
    Operator => "operator",
});

impl Role {
    /// Parses a role as typed by an operator (`viewer`, `operator`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

/// A console account, without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    /// The login name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was added (Unix ms).
    pub created_at: i64,
}

/// A live console session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Who is logged in.
    pub user: String,
    /// What they may do (read at each request: a role changed or a user removed takes effect
    /// at once).
    pub role: Role,
    /// The token every form of this session carries.
    pub csrf_token: String,
}

impl Store {
    /// Adds console user `name` with `role` and an argon2id `password_hash`, written to the
    /// audit log as done by `actor`. `false` when the name is taken (nothing changed).
    pub async fn add_console_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        actor: &str,
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        let added = sqlx::query(
            "INSERT INTO console_users (name, role, password_hash, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.to_owned())
        .bind(role.as_str())
        .bind(password_hash.to_owned())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if added {
            let entry = AuditEntry {
                actor: actor.to_owned(),
                action: AuditAction::UserAdded,
                order_no: None,
                detail: format!("console user {name} added as {role}"),
            };
            audit::record(&mut tx, &entry, now).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Removes console user `name` and ends their sessions, on record as done by `actor`.
    /// `false` when there is no such user.
    pub async fn remove_console_user(&self, name: &str, actor: &str) -> Result<bool, StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        let removed = sqlx::query("DELETE FROM console_users WHERE name = $1")
            .bind(name.to_owned())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if removed {
            sqlx::query("DELETE FROM console_sessions WHERE user_name = $1")
                .bind(name.to_owned())
                .execute(&mut *tx)
                .await?;
            let entry = AuditEntry {
                actor: actor.to_owned(),
                action: AuditAction::UserRemoved,
                order_no: None,
                detail: format!("console user {name} removed; their sessions ended"),
            };
            audit::record(&mut tx, &entry, now).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// Every console user, by name.
    pub async fn console_users(&self) -> Result<Vec<ConsoleUser>, StoreError> {
        sqlx::query("SELECT name, role, created_at FROM console_users ORDER BY name")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok(ConsoleUser {
                    name: r.try_get("name")?,
                    role: Role::parse(&r.try_get::<String, _>("role")?)?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The role and password hash of console user `name`, if there is one.
    pub async fn console_credentials(
        &self,
        name: &str,
    ) -> Result<Option<(Role, String)>, StoreError> {
        sqlx::query("SELECT role, password_hash FROM console_users WHERE name = $1")
            .bind(name.to_owned())
            .fetch_optional(&self.read)
            .await?
            .map(|r| {
                Ok((
                    Role::parse(&r.try_get::<String, _>("role")?)?,
                    r.try_get("password_hash")?,
                ))
            })
            .transpose()
    }

    /// Opens a session of `user`, known by `id_hash` (the SHA-256 of its cookie's id), whose
    /// forms carry `csrf_token`.
    pub async fn open_console_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf_token: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, user_name, csrf_token, created_at, last_seen)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id_hash.to_owned())
        .bind(user.to_owned())
        .bind(csrf_token.to_owned())
        .bind(self.now())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The session known by `id_hash`, if it is live: its user still exists and it was used
    /// within `idle_ms`. A live session's last use moves to now; an idle one is ended.
    pub async fn console_session(
        &self,
        id_hash: &str,
        idle_ms: i64,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let now = self.now();
        let row = sqlx::query(
            "SELECT s.csrf_token, s.last_seen, u.name, u.role FROM console_sessions s
               JOIN console_users u ON u.name = s.user_name WHERE s.id_hash = $1",
        )
        .bind(id_hash.to_owned())
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let last_seen: i64 = row.try_get("last_seen")?;
        if now - last_seen > idle_ms {
            self.close_console_session(id_hash).await?;
            return Ok(None);
        }
        sqlx::query("UPDATE console_sessions SET last_seen = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash.to_owned())
            .execute(&self.write)
            .await?;
        Ok(Some(ConsoleSession {
            user: row.try_get("name")?,
            role: Role::parse(&row.try_get::<String, _>("role")?)?,
            csrf_token: row.try_get("csrf_token")?,
        }))
    }

    /// Ends the session known by `id_hash` (logout).
    pub async fn close_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash.to_owned())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Records a failed login against each of `sources` (`addr:<ip>`, `user:<name>`), and
    /// forgets failures older than an hour.
    pub async fn console_login_failed(&self, sources: &[String]) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        for source in sources {
            sqlx::query("INSERT INTO console_login_failures (source, at) VALUES ($1, $2)")
                .bind(source.clone())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM console_login_failures WHERE at < $1")
            .bind(now - 3_600_000)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// How many logins failed against `source` within the last `window_ms`.
    pub async fn console_login_failures(
        &self,
        source: &str,
        window_ms: i64,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM console_login_failures WHERE source = $1 AND at > $2",
        )
        .bind(source.to_owned())
        .bind(self.now() - window_ms)
        .fetch_one(&self.read)
        .await?
        .try_get("n")?)
    }
}
