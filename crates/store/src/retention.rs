//! Retention and erasure: activation codes erased once delivered (kept masked), receipt
//! bodies redacted, customer data removed, on a schedule (`[retention]`) or for one customer
//! at once (`customers forget`).
//!
//! Erasure removes the values, not only their keys: the columns are set to NULL (a
//! placement's address, which cannot be NULL, to the empty text), the blind-index entries
//! with them, and a redacted body is replaced by a sealed note. SQLite's `secure_delete`
//! zeroes the freed bytes.

use std::time::Duration;

use sqlx::{Any, Row, Transaction};

use crate::audit::{self, AuditAction, AuditEntry};
use crate::crypto::{event_row, receipt_row, Field};
use crate::{duration_ms, Store, StoreError};

/// What a redacted receipt's body says instead.
pub const REDACTED_BODY: &[u8] =
    br#"{"redacted":"the activation code and personal data of this body were erased"}"#;

/// How long each kind of data is kept; `None` keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Activation codes, after the activation email was delivered (then kept masked).
    pub activation_codes: Option<Duration>,
    /// Raw receipt bodies, after they arrived.
    pub receipt_bodies: Option<Duration>,
    /// Customers' addresses, names and languages, and recipients, after the order was
    /// created (placements: after they were made, once no longer being placed).
    pub customer_data: Option<Duration>,
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// Orders whose customer data was removed.
    pub customers: u64,
    /// Activation codes erased (kept masked).
    pub codes: u64,
    /// Receipt bodies redacted.
    pub bodies: u64,
    /// Recipient addresses of deliveries and jobs removed.
    pub recipients: u64,
    /// Placements whose customer data was removed.
    pub placements: u64,
    /// Customer jobs not yet delivered, cancelled with their customer.
    pub cancelled_jobs: u64,
    /// Customer jobs being sent at that moment: marked, so that their attempt keeps no
    /// address and they are not sent again.
    pub under_way: u64,
    /// The orders concerned.
    pub orders: Vec<String>,
}

impl Erased {
    fn add(&mut self, other: Erased) {
        self.customers += other.customers;
        self.codes += other.codes;
        self.bodies += other.bodies;
        self.recipients += other.recipients;
        self.placements += other.placements;
        self.cancelled_jobs += other.cancelled_jobs;
        self.under_way += other.under_way;
        self.orders.extend(other.orders);
    }

    /// Whether nothing was erased.
    pub fn is_empty(&self) -> bool {
        self.customers
            + self.codes
            + self.bodies
            + self.recipients
            + self.placements
            + self.under_way
            == 0
    }
}

impl std::fmt::Display for Erased {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} customer(s), {} activation code(s), {} receipt body(ies), {} recipient address(es), {} placement(s), {} undelivered job(s) cancelled, {} being sent (not sent again)",
            self.customers, self.codes, self.bodies, self.recipients, self.placements, self.cancelled_jobs, self.under_way
        )
    }
}

const BATCH: i64 = 200;

/// Runs an erasure's transaction, and again (up to three times) when PostgreSQL ended it to
/// break a deadlock or a serialization conflict. An erasure locks an order's rows and marks
/// its deliveries under way, and a batch of delivery outcomes, a registration or a webhook
/// can lock some of the same rows in another order: PostgreSQL then ends one of the two, and
/// without this an erasure asked for (`customers forget`) would fail, and a retention purge
/// would wait for its next attempt with the rest of its work.
async fn again_after_lock_conflict<T, F, Fut>(mut transaction: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match transaction().await {
            Err(e) if e.is_lock_conflict() && tries <= 3 => {
                tracing::warn!(tries, error = %e, "an erasure met a concurrent write; doing it again");
            }
            done => return done,
        }
    }
}

impl Store {
    /// Erases one customer's personal data and activation codes on every order and placement
    /// found by their address's blind index, in one transaction, with an audit row by `actor`
    /// that does not hold the address.
    pub async fn forget_customer(&self, email: &str, actor: &str) -> Result<Erased, StoreError> {
        again_after_lock_conflict(|| self.forget_customer_once(email, actor)).await
    }

    async fn forget_customer_once(&self, email: &str, actor: &str) -> Result<Erased, StoreError> {
        let index = self.keys.email_index(email);
        let now = self.now();
        let mut tx = self.begin_write().await?;
        let mut erased = Erased::default();
        // Placements first: on PostgreSQL this waits for a placement being placed (which
        // binds its customer to the new order under the same row lock), so the orders read
        // next include that order; a placement placed after this sees its customer erased.
        erased.placements += sqlx::query(
            "UPDATE placements SET customer_email = '', customer_name = NULL, customer_locale = NULL,
                    customer_email_index = NULL, updated_at = $2
              WHERE customer_email_index = $1",
        )
        .bind(index.clone())
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let orders: Vec<String> = sqlx::query(
            "SELECT order_no FROM orders WHERE customer_email_index = $1 ORDER BY order_no",
        )
        .bind(index.clone())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get("order_no"))
        .collect::<Result<_, _>>()?;
        for order_no in &orders {
            erased.add(self.erase_order(&mut tx, order_no, None, true, now).await?);
        }
        erased.add(self.erase_sent_to(&mut tx, &index, now).await?);
        erased.orders.sort();
        erased.orders.dedup();
        if !erased.is_empty() {
            let entry = AuditEntry {
                actor: actor.to_owned(),
                action: AuditAction::CustomerForget,
                order_no: None,
                detail: format!(
                    "a customer's data erased on request: {erased}; orders {}",
                    if erased.orders.is_empty() {
                        "-".into()
                    } else {
                        erased.orders.join(", ")
                    }
                ),
            };
            audit::record(&mut tx, &entry, now).await?;
        }
        tx.commit().await?;
        Ok(erased)
    }

    /// Erases what `retention` no longer keeps, as of `now`, in batches. Returns what it did.
    pub async fn purge(&self, retention: &Retention, now: i64) -> Result<Erased, StoreError> {
        let mut erased = Erased::default();
        if let Some(keep) = retention.customer_data {
            let before = now - duration_ms(keep);
            self.erase_batches(
                "SELECT order_no, CAST(NULL AS BIGINT) AS event_id FROM orders
                  WHERE customer_email IS NOT NULL AND created_at <= $1 ORDER BY created_at LIMIT $2",
                before,
                true,
                &mut erased,
            )
            .await?;
            erased.placements += sqlx::query(
                "UPDATE placements SET customer_email = '', customer_name = NULL, customer_locale = NULL,
                        customer_email_index = NULL, updated_at = $2
                  WHERE customer_email <> '' AND created_at <= $1 AND status <> 'placing'",
            )
            .bind(before)
            .bind(now)
            .execute(&self.write)
            .await?
            .rows_affected();
        }
        if let Some(keep) = retention.activation_codes {
            let before = now - duration_ms(keep);
            // An event's code, once its own activation email reached its customer (an attempt
            // with a recipient is a customer's): not another event's, not an operator's copy.
            self.erase_batches(
                "SELECT e.order_no, e.id AS event_id FROM order_events e
                  WHERE e.lpa IS NOT NULL AND EXISTS (
                        SELECT 1 FROM outbox_jobs j JOIN delivery_attempts a ON a.job_id = j.id
                         WHERE j.event_id = e.id AND j.kind = 'order_completed' AND a.outcome = 'delivered'
                           AND a.recipient IS NOT NULL AND a.finished_at <= $1)
                  ORDER BY e.id LIMIT $2",
                before,
                false,
                &mut erased,
            )
            .await?;
        }
        if let Some(keep) = retention.receipt_bodies {
            let before = now - duration_ms(keep);
            loop {
                let rows = sqlx::query(
                    "SELECT id, order_no, received_at FROM webhook_receipts
                      WHERE redacted_at IS NULL AND received_at <= $1 ORDER BY id LIMIT $2",
                )
                .bind(before)
                .bind(BATCH)
                .fetch_all(&self.read)
                .await?;
                if rows.is_empty() {
                    break;
                }
                let rows = &rows;
                erased.bodies += again_after_lock_conflict(|| async move {
                    let mut tx = self.begin_write().await?;
                    let mut bodies = 0;
                    for r in rows {
                        let order_no: Option<String> = r.try_get("order_no")?;
                        bodies += self
                            .redact(
                                &mut tx,
                                r.try_get("id")?,
                                order_no.as_deref(),
                                r.try_get("received_at")?,
                                now,
                            )
                            .await?;
                    }
                    tx.commit().await?;
                    Ok::<_, StoreError>(bodies)
                })
                .await?;
            }
        }
        erased.orders.sort();
        erased.orders.dedup();
        Ok(erased)
    }

    /// Erases what `select` lists (`order_no`, and `event_id` to erase that event's code only;
    /// `$1` the cut-off, `$2` the batch size), a batch per transaction, until it lists none:
    /// each erasure takes its row off the list.
    async fn erase_batches(
        &self,
        select: &'static str,
        before: i64,
        customer: bool,
        erased: &mut Erased,
    ) -> Result<(), StoreError> {
        loop {
            let rows: Vec<(String, Option<i64>)> = sqlx::query(select)
                .bind(before)
                .bind(BATCH)
                .fetch_all(&self.read)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("order_no")?, r.try_get("event_id")?)))
                .collect::<Result<_, sqlx::Error>>()?;
            if rows.is_empty() {
                return Ok(());
            }
            let rows = &rows;
            erased.add(
                again_after_lock_conflict(|| async move {
                    let now = self.now();
                    let mut tx = self.begin_write().await?;
                    let mut batch = Erased::default();
                    for (order_no, event) in rows {
                        batch.add(
                            self.erase_order(&mut tx, order_no, *event, customer, now)
                                .await?,
                        );
                    }
                    tx.commit().await?;
                    Ok(batch)
                })
                .await?,
            );
        }
    }

    /// Erases an order's activation codes (kept masked), or only `event`'s, and redacts its
    /// receipts' bodies (which carry the codes: a provider retry's too); with `customer`,
    /// also its customer data and recipients, and cancels its customer jobs not yet
    /// delivered.
    async fn erase_order(
        &self,
        tx: &mut Transaction<'_, Any>,
        order_no: &str,
        event: Option<i64>,
        customer: bool,
        now: i64,
    ) -> Result<Erased, StoreError> {
        let mut erased = Erased {
            orders: vec![order_no.to_owned()],
            ..Erased::default()
        };
        let events = sqlx::query(
            "SELECT id, fingerprint, lpa FROM order_events
              WHERE order_no = $1 AND lpa IS NOT NULL AND ($2 < 0 OR id = $2)",
        )
        .bind(order_no.to_owned())
        .bind(event.unwrap_or(-1))
        .fetch_all(&mut **tx)
        .await?;
        for e in &events {
            let row = event_row(order_no, &e.try_get::<String, _>("fingerprint")?);
            // A code that no longer opens is erased all the same, without its masked form.
            let masked = self
                .keys
                .open_str(Field::EventCode, &row, &e.try_get::<String, _>("lpa")?)
                .ok()
                .and_then(|c| esim_courier_core::ActivationCode::parse(&c).ok())
                .map(|c| c.masked());
            erased.codes +=
                sqlx::query("UPDATE order_events SET lpa = NULL, lpa_masked = $1 WHERE id = $2")
                    .bind(masked)
                    .bind(e.try_get::<i64, _>("id")?)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
        }
        let receipts = sqlx::query(
            "SELECT id, received_at FROM webhook_receipts WHERE order_no = $1 AND redacted_at IS NULL",
        )
        .bind(order_no.to_owned())
        .fetch_all(&mut **tx)
        .await?;
        for r in &receipts {
            erased.bodies += self
                .redact(
                    tx,
                    r.try_get("id")?,
                    Some(order_no),
                    r.try_get("received_at")?,
                    now,
                )
                .await?;
        }
        if customer {
            erased.customers += sqlx::query(
                "UPDATE orders SET customer_email = NULL, customer_name = NULL, customer_locale = NULL,
                        customer_email_index = NULL, customer_erased_at = $2, updated_at = $2
                  WHERE order_no = $1 AND customer_email IS NOT NULL",
            )
            .bind(order_no.to_owned())
            .bind(now)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            // In one statement, so no job escapes both by changing state between two: the
            // order's activation emails not yet sent are cancelled, dead letters included,
            // and its deliveries under way are marked. Their outcome, written after this,
            // then keeps no recipient (the finish reads the mark from the job row it
            // updates; on PostgreSQL the mark's row lock makes it wait for this
            // transaction), and one that failed is cancelled when it comes round again. A
            // job that finished meanwhile is taken in its new state (PostgreSQL checks a row
            // changed under it again), and its attempt is among those cleared below.
            let changed = sqlx::query(
                "UPDATE outbox_jobs
                    SET customer_erased_at = $2,
                        state = CASE WHEN state = 'in_flight' THEN state ELSE 'cancelled' END,
                        last_error = CASE WHEN state = 'in_flight' THEN last_error ELSE $3 END,
                        updated_at = CASE WHEN state = 'in_flight' THEN updated_at ELSE $2 END
                  WHERE order_no = $1
                    AND (state = 'in_flight'
                         OR (kind = 'order_completed' AND state IN ('pending', 'waiting', 'dead')))
              RETURNING state, kind",
            )
            .bind(order_no.to_owned())
            .bind(now)
            .bind(crate::outbox::CUSTOMER_ERASED)
            .fetch_all(&mut **tx)
            .await?;
            for job in &changed {
                let state: String = job.try_get("state")?;
                let kind: String = job.try_get("kind")?;
                match (state.as_str(), kind.as_str()) {
                    ("cancelled", _) => erased.cancelled_jobs += 1,
                    ("in_flight", "order_completed") => erased.under_way += 1,
                    _ => {}
                }
            }
            erased.recipients += sqlx::query(
                "UPDATE delivery_attempts SET recipient = NULL
                  WHERE recipient IS NOT NULL AND job_id IN (SELECT id FROM outbox_jobs WHERE order_no = $1)",
            )
            .bind(order_no.to_owned())
            .execute(&mut **tx)
            .await?
            .rows_affected();
            erased.recipients += sqlx::query(
                "UPDATE outbox_jobs SET recipient = NULL WHERE order_no = $1 AND recipient IS NOT NULL",
            )
            .bind(order_no.to_owned())
            .execute(&mut **tx)
            .await?
            .rows_affected();
        }
        Ok(erased)
    }

    /// The address `index` names where an operator's `resend --to` put it, on any order:
    /// the job's own recipient and its attempts'. Only such jobs hold a recipient of their
    /// own, so each is opened and compared (they are few: one per re-send to another
    /// address). One not yet sent is cancelled: without its recipient it would go to the
    /// order's customer. One being sent is marked, as an order's erasure marks its
    /// deliveries under way: that send cannot be called back, but its attempt is recorded
    /// without the address, its finish drops the job's recipient, and it is never sent again
    /// ([`Store::job_cancel_erased`]).
    async fn erase_sent_to(
        &self,
        tx: &mut Transaction<'_, Any>,
        index: &str,
        now: i64,
    ) -> Result<Erased, StoreError> {
        let mut erased = Erased::default();
        let jobs = sqlx::query(
            "SELECT id, order_no, state, recipient FROM outbox_jobs WHERE recipient IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut **tx)
        .await?;
        for job in &jobs {
            let id: i64 = job.try_get("id")?;
            let sealed: String = job.try_get("recipient")?;
            // One that does not open cannot be compared; `orders show` names it.
            let Ok(address) = self
                .keys
                .open_str(Field::JobRecipient, &id.to_string(), &sealed)
            else {
                continue;
            };
            if self.keys.email_index(&address) != index {
                continue;
            }
            // In one statement, as the order's erasure does: a job that changed state since
            // it was read is taken in its new one (the SET reads the row as it was).
            let state: String = sqlx::query(
                "UPDATE outbox_jobs
                    SET customer_erased_at = $3,
                        recipient = CASE WHEN state = 'in_flight' THEN recipient END,
                        state = CASE WHEN state IN ('in_flight', 'done', 'cancelled') THEN state
                                     ELSE 'cancelled' END,
                        last_error = CASE WHEN state IN ('in_flight', 'done', 'cancelled')
                                          THEN last_error ELSE $2 END,
                        updated_at = $3
                  WHERE id = $1
              RETURNING state",
            )
            .bind(id)
            .bind(crate::outbox::CUSTOMER_ERASED)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?
            .try_get("state")?;
            if state == "in_flight" {
                erased.under_way += 1;
            } else {
                erased.recipients += 1;
            }
            if state == "cancelled" && job.try_get::<String, _>("state")? != "cancelled" {
                erased.cancelled_jobs += 1;
            }
            erased.recipients += sqlx::query(
                "UPDATE delivery_attempts SET recipient = NULL WHERE job_id = $1 AND recipient IS NOT NULL",
            )
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
            erased
                .orders
                .extend(job.try_get::<Option<String>, _>("order_no")?);
        }
        Ok(erased)
    }

    /// Replaces a receipt's body with the sealed [`REDACTED_BODY`].
    async fn redact(
        &self,
        tx: &mut Transaction<'_, Any>,
        id: i64,
        order_no: Option<&str>,
        received_at: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let body = self.keys.seal(
            Field::ReceiptBody,
            &receipt_row(order_no, received_at),
            REDACTED_BODY,
        );
        Ok(sqlx::query("UPDATE webhook_receipts SET body = $1, redacted_at = $2 WHERE id = $3 AND redacted_at IS NULL")
            .bind(body.into_bytes())
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected())
    }
}
