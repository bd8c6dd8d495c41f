//! The audit log: every operator action, who took it and when. One table serves the CLI's
//! operator commands now and the console and data-protection commands later.

use sqlx::{Any, Row, Transaction};

use crate::{Store, StoreError};

/// What an operator did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// Queued the activation email again (`resend`).
    Resend,
    /// Queued dead letters again (`dead-letters retry`).
    DeadLetterRetry,
    /// Added a console user (`users add`).
    UserAdded,
    /// Removed a console user (`users remove`).
    UserRemoved,
    /// Showed an order's activation code in the console.
    Reveal,
    /// Erased a customer's data on request (`customers forget`).
    CustomerForget,
}

impl AuditAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resend => "resend",
            Self::DeadLetterRetry => "dead_letter_retry",
            Self::UserAdded => "user_added",
            Self::UserRemoved => "user_removed",
            Self::Reveal => "reveal",
            Self::CustomerForget => "customer_forget",
        }
    }
}

/// An action to record. `detail` is one sentence for people; it never holds a secret, and a
/// customer's address in it is masked.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// Who acted: an operator's name (`--by NAME`, the console user) or the OS user.
    pub actor: String,
    /// What they did.
    pub action: AuditAction,
    /// The order concerned, if any.
    pub order_no: Option<String>,
    /// What exactly, in a sentence.
    pub detail: String,
}

/// A recorded action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRecord {
    /// Its id.
    pub id: i64,
    /// When (Unix milliseconds).
    pub at: i64,
    /// Who.
    pub actor: String,
    /// What (the stored name of an [`AuditAction`]).
    pub action: String,
    /// On which order.
    pub order_no: Option<String>,
    /// What exactly.
    pub detail: String,
}

impl Store {
    /// The actions taken on an order, oldest first.
    pub async fn audit_log(&self, order_no: &str) -> Result<Vec<AuditRecord>, StoreError> {
        sqlx::query(
            "SELECT id, at, actor, action, order_no, detail FROM audit_log WHERE order_no = $1 ORDER BY id",
        )
        .bind(order_no.to_owned())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(audit_record)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
    }
}

/// An `audit_log` row (`id, at, actor, action, order_no, detail`).
pub(crate) fn audit_record(r: &sqlx::any::AnyRow) -> Result<AuditRecord, sqlx::Error> {
    Ok(AuditRecord {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        order_no: r.try_get("order_no")?,
        detail: r.try_get("detail")?,
    })
}

/// Records `entry`, done at `now`, in the transaction of the action itself, so an action and
/// its audit row are committed together or not at all.
pub(crate) async fn record(
    tx: &mut Transaction<'_, Any>,
    entry: &AuditEntry,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, action, order_no, detail) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(now)
    .bind(entry.actor.clone())
    .bind(entry.action.as_str())
    .bind(entry.order_no.clone())
    .bind(entry.detail.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
