//! The operators' console: accounts, sessions and failed logins, in the database so every
//! replica shares them.
//!
//! Passwords arrive here already hashed (argon2id, by the caller) and sessions by the SHA-256
//! of their cookie's id: nothing stored here logs anybody in.

use sqlx::Row;

use crate::audit::{self, AuditAction, AuditEntry};
use crate::crypto::{event_row, receipt_row, Field};
use crate::{Backend, Store, StoreError};

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
        Self::parse(name).ok()
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
    ///
    /// Sessions unused for longer than `idle_ms` are ended too: one whose browser never
    /// came back is otherwise only ended when its cookie is shown again.
    pub async fn open_console_session(
        &self,
        id_hash: &str,
        user: &str,
        csrf_token: &str,
        idle_ms: i64,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM console_sessions WHERE last_seen < $1")
            .bind(now.saturating_sub(idle_ms))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, user_name, csrf_token, created_at, last_seen)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id_hash.to_owned())
        .bind(user.to_owned())
        .bind(csrf_token.to_owned())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
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

    /// Takes a login attempt against each of `sources` (`addr:<ip>`, `user:<name>`), unless
    /// one of them already has `limit` failures within the last `window_ms`: then `None`, and
    /// no password may be checked. The attempt is recorded as a failure before its password
    /// is checked, in the transaction that counted, and the count is serialised per source
    /// (SQLite's writer; an advisory lock on PostgreSQL), so logins sent at once cannot all
    /// read "no failures yet" and each get a guess. A login that succeeds takes its attempt
    /// back with [`Store::console_login_succeeded`], giving the time returned here. Failures
    /// older than an hour are forgotten.
    pub async fn console_login_attempt(
        &self,
        sources: &[String],
        limit: i64,
        window_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // In one order, so two logins sharing a source never wait on each other crosswise.
            let mut locks: Vec<&String> = sources.iter().collect();
            locks.sort();
            for source in locks {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(source.clone())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for source in sources {
            let failed: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM console_login_failures WHERE source = $1 AND at > $2",
            )
            .bind(source.clone())
            .bind(now - window_ms)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            if failed >= limit {
                return Ok(None);
            }
        }
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
        Ok(Some(now))
    }

    /// The login attempt taken at `at` against `sources` succeeded: it is not a failure.
    pub async fn console_login_succeeded(
        &self,
        sources: &[String],
        at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        for source in sources {
            sqlx::query("DELETE FROM console_login_failures WHERE source = $1 AND at = $2")
                .bind(source.clone())
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Which orders the console lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderFilter {
    /// No result yet.
    AwaitingWebhook,
    /// COMPLETED, and nobody registered as its customer.
    AwaitingCustomer,
    /// Its activation email was delivered.
    Emailed,
    /// The provider failed it.
    Failed,
    /// An event contradicted the record.
    Conflict,
    /// A delivery of its webhook was refused and kept aside.
    Quarantined,
}

stored_names!(OrderFilter, "order filter", {
    AwaitingWebhook => "awaiting_webhook",
    AwaitingCustomer => "awaiting_customer",
    Emailed => "emailed",
    Failed => "failed",
    Conflict => "conflict",
    Quarantined => "quarantined",
});

impl OrderFilter {
    /// Parses a filter's name as a URL gives it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::parse(name).ok()
    }
}

/// What the console's order list asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderQuery {
    /// Only orders in this situation.
    pub filter: Option<OrderFilter>,
    /// Only orders first seen at or after (Unix ms).
    pub from_ms: Option<i64>,
    /// Only orders first seen before (Unix ms).
    pub to_ms: Option<i64>,
    /// An order number or ICCID (exact or prefix), or a customer's address (exact).
    pub q: Option<String>,
}

/// One order in the console's list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    /// The order number.
    pub order_no: String,
    /// `awaiting_webhook` or the last accepted result.
    pub state: String,
    /// When it was first seen (Unix ms): with the order number, the keyset.
    pub created_at: i64,
    /// The registered customer's address.
    pub customer_email: Option<String>,
    /// The package of its latest event.
    pub package_name: Option<String>,
    /// The ICCID of its latest event.
    pub iccid: Option<String>,
}

/// `q` for `LIKE ... ESCAPE '\'`: its wildcards taken literally, then `%` for a prefix.
fn like_prefix(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 1);
    for c in q.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The columns of the console's order list.
macro_rules! console_orders_select {
    () => {
        "SELECT o.order_no, o.state, o.created_at, o.customer_email,
                (SELECT e.package_name FROM order_events e WHERE e.order_no = o.order_no ORDER BY e.id DESC LIMIT 1) AS package_name,
                (SELECT e.iccid FROM order_events e WHERE e.order_no = o.order_no ORDER BY e.id DESC LIMIT 1) AS iccid
           FROM orders o"
    };
}

/// The keyset, the dates, the situation, the order and the limit of the console's order
/// list: `$2`, `$3` the keyset (a row-value comparison, which both engines answer by seeking
/// the `(created_at, order_no)` index; the first page passes the largest key), `$4`..`$7` the
/// dates, `$11` the situation, `$12` the limit.
macro_rules! console_orders_page {
    () => {
        "($1 = 0 OR $1 = 1) AND (o.created_at, o.order_no) < ($2, $3)
            AND ($4 = 0 OR o.created_at >= $5)
            AND ($6 = 0 OR o.created_at < $7)
            AND ($11 = ''
                 OR ($11 = 'awaiting_webhook' AND o.state = 'awaiting_webhook')
                 OR ($11 = 'failed' AND o.state = 'FAILED')
                 OR ($11 = 'awaiting_customer' AND o.customer_email IS NULL AND o.customer_erased_at IS NULL AND EXISTS (
                        SELECT 1 FROM order_events e WHERE e.order_no = o.order_no
                           AND e.result = 'COMPLETED' AND e.disposition = 'accepted'))
                 OR ($11 = 'emailed' AND EXISTS (
                        SELECT 1 FROM outbox_jobs j WHERE j.order_no = o.order_no
                           AND j.kind = 'order_completed' AND j.state = 'done'))
                 OR ($11 = 'conflict' AND EXISTS (
                        SELECT 1 FROM order_events e WHERE e.order_no = o.order_no
                           AND e.disposition = 'conflict'))
                 OR ($11 = 'quarantined' AND EXISTS (
                        SELECT 1 FROM webhook_receipts r WHERE r.order_no = o.order_no
                           AND r.outcome = 'quarantined')))
          ORDER BY o.created_at DESC, o.order_no DESC
          LIMIT $12"
    };
}

impl Store {
    /// Up to `limit` orders matching `query`, newest first, after the keyset `after`
    /// (`(created_at, order_no)` of the last row of the previous page).
    pub async fn console_orders(
        &self,
        query: &OrderQuery,
        after: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<OrderRow>, StoreError> {
        let q = query.q.as_deref().map(str::trim).unwrap_or_default();
        // With a search, the candidates come from three index lookups (an order number or an
        // ICCID by its prefix's range, an address exactly) before the page is sorted; without
        // one, the page is read straight off the (created_at, order_no) index.
        //
        // A range, not `LIKE` alone: PostgreSQL uses an index for `LIKE 'q%'` only under the
        // C collation, and a range under the column's own. `LIKE` then keeps only true
        // prefixes. On a database with ICU's en-US collation, every prefix (1 to 8 characters)
        // of 3,050 order numbers of several forms found all its orders through the range,
        // by the index. A collation that sorts two letters as one (Czech `ch`, Danish `aa`)
        // could leave out an order whose number a prefix cuts inside them; the provider's
        // order numbers and ICCIDs are digits.
        let sql = if q.is_empty() {
            concat!(
                console_orders_select!(),
                " WHERE ($8 = '' OR $9 = $10 OR $13 = '') AND ",
                console_orders_page!()
            )
        } else {
            concat!(
                console_orders_select!(),
                " WHERE o.order_no IN (
                    SELECT order_no FROM orders
                     WHERE order_no >= $8 AND order_no < $10 AND order_no LIKE $9 ESCAPE '\\'
                    UNION
                    SELECT order_no FROM order_events
                     WHERE iccid >= $8 AND iccid < $10 AND iccid LIKE $9 ESCAPE '\\'
                    UNION
                    SELECT order_no FROM orders WHERE customer_email_index = $13)
                 AND ",
                console_orders_page!()
            )
        };
        let rows = sqlx::query(sql)
            .bind(i64::from(after.is_some()))
            .bind(after.map_or(i64::MAX, |a| a.0))
            .bind(after.map_or(String::new(), |a| a.1.to_owned()))
            .bind(i64::from(query.from_ms.is_some()))
            .bind(query.from_ms.unwrap_or(0))
            .bind(i64::from(query.to_ms.is_some()))
            .bind(query.to_ms.unwrap_or(0))
            .bind(q.to_owned())
            .bind(like_prefix(q))
            .bind(format!("{q}\u{10FFFF}"))
            .bind(query.filter.map_or("", OrderFilter::as_str))
            .bind(limit)
            .bind(self.keys.email_index(q))
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                let order_no: String = r.try_get("order_no")?;
                Ok(OrderRow {
                    customer_email: r
                        .try_get::<Option<String>, _>("customer_email")?
                        .map(|e| self.keys.open_str(Field::OrderEmail, &order_no, &e))
                        .transpose()?,
                    order_no,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                    package_name: r.try_get("package_name")?,
                    iccid: r.try_get("iccid")?,
                })
            })
            .collect()
    }

    /// The raw body of receipt `id`, as received (decrypted).
    pub async fn receipt_body(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        let Some(r) =
            sqlx::query("SELECT order_no, received_at, body FROM webhook_receipts WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?
        else {
            return Ok(None);
        };
        self.open_receipt_body(&r).map(Some)
    }

    /// A receipt's body from a row with its `order_no`, `received_at` and `body`.
    pub(crate) fn open_receipt_body(&self, r: &sqlx::any::AnyRow) -> Result<Vec<u8>, StoreError> {
        let order_no: Option<String> = r.try_get("order_no")?;
        let row = receipt_row(order_no.as_deref(), r.try_get("received_at")?);
        let body: Vec<u8> = r.try_get("body")?;
        let body = String::from_utf8(body).map_err(|_| StoreError::Decrypt {
            field: Field::ReceiptBody,
            row: row.clone(),
            reason: "it is not an encrypted value".into(),
        })?;
        self.keys.open(Field::ReceiptBody, &row, &body)
    }

    /// The activation code of `order_no`'s latest accepted COMPLETED event, for an operator
    /// who asked to see it (`actor`): the reveal is written to the audit log in the same
    /// transaction. `None` (and nothing recorded) when the order has no such code.
    pub async fn reveal_activation_code(
        &self,
        order_no: &str,
        actor: &str,
    ) -> Result<Option<esim_courier_core::ActivationCode>, StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        let Some(r) = sqlx::query(
            "SELECT fingerprint, lpa FROM order_events WHERE order_no = $1 AND result = 'COMPLETED'
               AND disposition = 'accepted' AND lpa IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(order_no.to_owned())
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let lpa = self.keys.open_str(
            Field::EventCode,
            &event_row(order_no, &r.try_get::<String, _>("fingerprint")?),
            &r.try_get::<String, _>("lpa")?,
        )?;
        let code = esim_courier_core::ActivationCode::parse(&lpa)
            .map_err(|e| StoreError::Corrupt(format!("a stored activation code: {e}")))?;
        let entry = AuditEntry {
            actor: actor.to_owned(),
            action: AuditAction::Reveal,
            order_no: Some(order_no.to_owned()),
            detail: format!("activation code {} shown in the console", code.masked()),
        };
        audit::record(&mut tx, &entry, now).await?;
        tx.commit().await?;
        Ok(Some(code))
    }

    /// The latest `limit` entries of the audit log, newest first.
    pub async fn recent_audit(&self, limit: i64) -> Result<Vec<crate::AuditRecord>, StoreError> {
        sqlx::query(
            "SELECT id, at, actor, action, order_no, detail FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(audit::audit_record)
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_search_prefix_takes_wildcards_literally() {
        assert_eq!(super::like_prefix("89_10%"), "89\\_10\\%%");
        assert_eq!(super::like_prefix(r"a\b"), r"a\\b%");
    }
}

/// The console's overview of the last 24 hours and of now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overview {
    /// Webhook deliveries (and provider records) received, by outcome (`accepted`,
    /// `duplicate`, `conflict`, `quarantined`).
    pub received: Vec<(String, i64)>,
    /// Activation emails delivered.
    pub emails_sent: i64,
    /// Operator alerts delivered.
    pub alerts_sent: i64,
    /// Jobs pending or waiting.
    pub queue_depth: i64,
    /// When the oldest of them was written (Unix ms).
    pub oldest_waiting_at: Option<i64>,
    /// Dead letters now.
    pub dead: i64,
    /// When the last webhook arrived (Unix ms), at any time.
    pub last_webhook_at: Option<i64>,
    /// The last reconciliation sweep: its state and when it last changed.
    pub last_sweep: Option<(String, i64)>,
    /// Webhooks per hour, oldest hour first (24 buckets ending now).
    pub webhooks_per_hour: Vec<i64>,
    /// Activation emails delivered per hour, oldest hour first.
    pub emails_per_hour: Vec<i64>,
}

/// One operator alert as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// The job's id.
    pub id: i64,
    /// The channel it went to.
    pub notifier: String,
    /// The alert, as raised.
    pub payload: Option<String>,
    /// Where its delivery stands.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// When it was raised (Unix ms).
    pub created_at: i64,
    /// The last error, if any.
    pub last_error: Option<String>,
}

const HOUR_MS: i64 = 3_600_000;

impl Store {
    /// The overview at `now` (Unix ms): the last 24 hours' traffic, the queue, the last
    /// webhook and sweep.
    pub async fn console_overview(&self, now: i64) -> Result<Overview, StoreError> {
        let since = now - 24 * HOUR_MS;
        let count = |sql: &'static str| {
            let read = &self.read;
            async move {
                Ok::<i64, StoreError>(
                    sqlx::query(sql)
                        .bind(since)
                        .fetch_one(read)
                        .await?
                        .try_get::<Option<i64>, _>("n")?
                        .unwrap_or(0),
                )
            }
        };
        let received = sqlx::query(
            "SELECT outcome, COUNT(*) AS n FROM webhook_receipts WHERE received_at >= $1
              GROUP BY outcome ORDER BY outcome",
        )
        .bind(since)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("outcome")?, r.try_get("n")?)))
        .collect::<Result<Vec<(String, i64)>, sqlx::Error>>()?;
        let emails_sent = count(
            "SELECT COUNT(*) AS n FROM delivery_attempts a JOIN outbox_jobs j ON j.id = a.job_id
              WHERE j.kind = 'order_completed' AND a.outcome = 'delivered' AND a.finished_at >= $1",
        )
        .await?;
        let alerts_sent = count(
            "SELECT COUNT(*) AS n FROM delivery_attempts a JOIN outbox_jobs j ON j.id = a.job_id
              WHERE j.kind = 'alert' AND a.outcome = 'delivered' AND a.finished_at >= $1",
        )
        .await?;
        let queue = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM outbox_jobs
              WHERE state IN ('pending', 'waiting')",
        )
        .fetch_one(&self.read)
        .await?;
        let dead: i64 = sqlx::query("SELECT COUNT(*) AS n FROM outbox_jobs WHERE state = 'dead'")
            .fetch_one(&self.read)
            .await?
            .try_get("n")?;
        let last_webhook_at: Option<i64> = sqlx::query(
            "SELECT MAX(received_at) AS at FROM webhook_receipts WHERE source = 'webhook'",
        )
        .fetch_one(&self.read)
        .await?
        .try_get("at")?;
        let last_sweep = sqlx::query(
            "SELECT state, updated_at FROM outbox_jobs WHERE kind = 'reconcile_sweep'
              ORDER BY updated_at DESC, id DESC LIMIT 1",
        )
        .fetch_optional(&self.read)
        .await?
        .map(|r| Ok::<_, sqlx::Error>((r.try_get("state")?, r.try_get("updated_at")?)))
        .transpose()?;
        let hours = |sql: &'static str| {
            let read = &self.read;
            async move {
                let mut buckets = vec![0i64; 24];
                for r in sqlx::query(sql).bind(since).fetch_all(read).await? {
                    let h: i64 = r.try_get("h")?;
                    if let Some(b) = usize::try_from(h).ok().and_then(|h| buckets.get_mut(h)) {
                        *b += r.try_get::<i64, _>("n")?;
                    }
                }
                Ok::<Vec<i64>, StoreError>(buckets)
            }
        };
        let webhooks_per_hour = hours(
            "SELECT (received_at - $1) / 3600000 AS h, COUNT(*) AS n FROM webhook_receipts
              WHERE received_at >= $1 AND source = 'webhook' GROUP BY (received_at - $1) / 3600000",
        )
        .await?;
        let emails_per_hour = hours(
            "SELECT (a.finished_at - $1) / 3600000 AS h, COUNT(*) AS n FROM delivery_attempts a
               JOIN outbox_jobs j ON j.id = a.job_id
              WHERE j.kind = 'order_completed' AND a.outcome = 'delivered' AND a.finished_at >= $1
              GROUP BY (a.finished_at - $1) / 3600000",
        )
        .await?;
        Ok(Overview {
            received,
            emails_sent,
            alerts_sent,
            queue_depth: queue.try_get("n")?,
            oldest_waiting_at: queue.try_get("oldest")?,
            dead,
            last_webhook_at,
            last_sweep,
            webhooks_per_hour,
            emails_per_hour,
        })
    }

    /// The latest `limit` operator alerts, newest first, each with its channel and outcome.
    pub async fn recent_alerts(&self, limit: i64) -> Result<Vec<AlertRecord>, StoreError> {
        sqlx::query(
            "SELECT id, notifier, payload, state, attempts, created_at, last_error FROM outbox_jobs
              WHERE kind = 'alert' ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok(AlertRecord {
                id: r.try_get("id")?,
                notifier: r.try_get("notifier")?,
                payload: r.try_get("payload")?,
                state: r.try_get("state")?,
                attempts: r.try_get("attempts")?,
                created_at: r.try_get("created_at")?,
                last_error: r.try_get("last_error")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
    }
}
