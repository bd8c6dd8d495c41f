//! Orders esim-courier places with the provider (`POST /api/v1/placements`).
//!
//! One transaction records the placement, its customer and the outbox job that calls the
//! provider with `idempotentKey = reference`: a crash or a retry never buys a second eSIM.
//! The provider's answer binds the customer to its order number in one transaction with the
//! job's outcome, through the same rules as a registration ([`Store::bind_customer`]), so a
//! webhook that came first has its activation email woken at that commit.

use esim_courier_core::{Customer, OrderNo};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::crypto::Keyring;
use crate::intake::{insert_job, NewJob};
use crate::orders::{customer_columns, customer_from_row, CustomerOf};
use crate::outbox::{
    insert_alert_jobs, insert_scheduled, lookup_key, Attempt, AttemptOutcome, ClaimedJob, Ending,
    JobKind, JobState, RECONCILER,
};
use crate::{Store, StoreError};

/// Where a placement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlacementStatus {
    /// Being placed with the provider (or waiting to retry).
    Placing,
    /// The provider answered its order number.
    Placed,
    /// The provider refused it, or it was given up; `error` says why.
    Failed,
}

stored_names!(PlacementStatus, "placement status", {
    Placing => "placing",
    Placed => "placed",
    Failed => "failed",
});

/// A placement asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlacement {
    /// The caller's reference: the provider's `idempotentKey`.
    pub reference: String,
    /// The provider's package.
    pub package_code: String,
    /// Who gets the activation email.
    pub customer: Customer,
}

/// A placement as stored.
#[derive(Debug, Clone)]
pub struct PlacementRecord {
    /// The caller's reference.
    pub reference: String,
    /// The provider's package.
    pub package_code: String,
    /// Who gets the activation email; `None` once erased (retention, `customers forget`).
    pub customer: Option<Customer>,
    /// Where it stands.
    pub status: PlacementStatus,
    /// The provider's order number, once placed.
    pub order_no: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was asked for (Unix ms).
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
}

impl PlacementRecord {
    /// Whether `asked` is this placement asked again: same package and customer.
    pub fn is_same_request(&self, asked: &NewPlacement) -> bool {
        self.package_code == asked.package_code && self.customer.as_ref() == Some(&asked.customer)
    }
}

/// What asking for a placement did.
#[derive(Debug, Clone)]
pub enum Placement {
    /// A new placement: recorded with its job.
    Created(PlacementRecord),
    /// The same reference with the same request: the placement as it stands, nothing new.
    Existing(PlacementRecord),
    /// The same reference with another request: nothing written.
    Conflict(PlacementRecord),
}

const PLACEMENT_SELECT: &str = "SELECT reference, package_code, customer_email, customer_name, customer_locale,
        retail_price, retail_currency, status, order_no, error, created_at, updated_at FROM placements WHERE reference = $1";

fn placement_record(keys: &Keyring, r: &AnyRow) -> Result<PlacementRecord, StoreError> {
    Ok(PlacementRecord {
        reference: r.try_get("reference")?,
        package_code: r.try_get("package_code")?,
        customer: customer_from_row(keys, r, CustomerOf::Placement)?,
        status: PlacementStatus::parse(&r.try_get::<String, _>("status")?)?,
        order_no: r.try_get("order_no")?,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// Records a placement, its customer and its job in one transaction, unless its reference
    /// is known: then answers the placement as it stands ([`Placement::Existing`]) or, when
    /// the request differs, [`Placement::Conflict`]. Two requests with one reference at once
    /// write one placement and one job (the reference is the key of both).
    pub async fn place(&self, asked: &NewPlacement) -> Result<Placement, StoreError> {
        let now = self.now();
        let c = customer_columns(
            &self.keys,
            &asked.customer,
            CustomerOf::Placement,
            &asked.reference,
        );
        let mut tx = self.begin_write().await?;
        let created = sqlx::query(
            "INSERT INTO placements (reference, package_code, customer_email, customer_name, customer_locale,
                 retail_price, retail_currency, status, created_at, updated_at, customer_email_index)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'placing', $8, $8, $9)
             ON CONFLICT (reference) DO NOTHING",
        )
        .bind(asked.reference.clone())
        .bind(asked.package_code.clone())
        .bind(c.email)
        .bind(c.name)
        .bind(c.locale)
        .bind(c.price)
        .bind(c.currency)
        .bind(now)
        .bind(c.email_index)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if created {
            let job = NewJob {
                notifier: RECONCILER.to_owned(),
                kind: JobKind::PlaceOrder,
                payload: Some(asked.reference.clone()),
            };
            let key = format!("place_order:{}", asked.reference);
            insert_job(&mut tx, &job, &key, None, None, now).await?;
        }
        let record = placement_record(
            &self.keys,
            &sqlx::query(PLACEMENT_SELECT)
                .bind(asked.reference.clone())
                .fetch_one(&mut *tx)
                .await?,
        )?;
        tx.commit().await?;
        Ok(if created {
            self.notify_jobs_changed();
            Placement::Created(record)
        } else if record.is_same_request(asked) {
            Placement::Existing(record)
        } else {
            Placement::Conflict(record)
        })
    }

    /// The placement of `reference`, if any.
    pub async fn placement(&self, reference: &str) -> Result<Option<PlacementRecord>, StoreError> {
        sqlx::query(PLACEMENT_SELECT)
            .bind(reference.to_owned())
            .fetch_optional(&self.read)
            .await?
            .as_ref()
            .map(|r| placement_record(&self.keys, r))
            .transpose()
    }

    /// The provider placed `job`'s order as `order_no`: in one transaction, the job is done,
    /// the placement placed, its customer bound to the order as a registration binds one
    /// (jobs of a webhook that came first are woken), and, with `lookup_at`, the order's
    /// lookup scheduled. A placement given up earlier (its dead letter retried) is placed
    /// too. Returns false when the lease was lost (nothing written: the worker that holds
    /// the job now asks again, with the same key).
    pub async fn placement_placed(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        placement: &PlacementRecord,
        order_no: &OrderNo,
        lookup_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let now = attempt.finished_at;
        let mut tx = self.begin_write().await?;
        let receipt = format!("placed as order {order_no}");
        let ending = Ending {
            state: JobState::Done,
            error: None,
            next_attempt_at: None,
            outcome: AttemptOutcome::Delivered,
            receipt: Some(&receipt),
            locale: None,
        };
        if !self.end_job(&mut tx, job, attempt, ending).await? {
            return Ok(false);
        }
        // The job joins its order, so `orders show` lists the placement with its attempts.
        sqlx::query("UPDATE outbox_jobs SET order_no = $1 WHERE id = $2")
            .bind(order_no.as_str().to_owned())
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE placements SET status = 'placed', order_no = $1, error = NULL, updated_at = $2
              WHERE reference = $3",
        )
        .bind(order_no.as_str().to_owned())
        .bind(now)
        .bind(placement.reference.clone())
        .execute(&mut *tx)
        .await?;
        // The customer as stored now, under the placement row's lock, not as read before the
        // provider was asked: one forgotten meanwhile is not bound to the order
        // (`forget_customer` takes the same lock before it looks for the customer's orders).
        let customer = match sqlx::query(PLACEMENT_SELECT)
            .bind(placement.reference.clone())
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => placement_record(&self.keys, &row)?.customer,
            None => None,
        };
        let woken = match &customer {
            Some(customer) => {
                let (registration, woken) = self
                    .bind_customer(&mut tx, order_no.as_str(), customer, now)
                    .await?;
                if let crate::Registration::AlreadyDelivered { to } = registration {
                    tracing::warn!(order_no = %order_no, reference = %placement.reference, delivered_to = %to.masked(), "the placed order's activation email was already delivered to another address; the placement's customer was not bound");
                }
                woken
            }
            None => 0,
        };
        if let Some(at) = lookup_at {
            let key = lookup_key(order_no.as_str());
            let what = (
                JobKind::ReconcileLookup,
                key.as_str(),
                Some(order_no.as_str()),
            );
            insert_scheduled(&mut *tx, what, now, at).await?;
        }
        tx.commit().await?;
        if woken > 0 || lookup_at.is_some() {
            self.notify_jobs_changed();
        }
        Ok(true)
    }

    /// The placement behind `job` failed for good: in one transaction, the job is dead
    /// (`outcome`, `error`), the placement failed with `error`, and each alert's jobs in
    /// `alerts` are written.
    /// Retrying the dead letter places again, with the same key. Returns false when the
    /// lease was lost.
    pub async fn placement_failed(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        (outcome, error): (AttemptOutcome, &str),
        alerts: &[Vec<NewJob>],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let ending = Ending::failed(JobState::Dead, outcome, error);
        if !self.end_job(&mut tx, job, attempt, ending).await? {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE placements SET status = 'failed', error = $1, updated_at = $2 WHERE reference = $3",
        )
        .bind(error.to_owned())
        .bind(attempt.finished_at)
        .bind(job.payload.clone())
        .execute(&mut *tx)
        .await?;
        // The time makes it this failure's own: a retried dead letter that fails again alerts
        // again.
        for (i, alert_jobs) in alerts.iter().enumerate() {
            let prefix = format!("placement_failed:{}:{}:{i}", job.id, attempt.finished_at);
            insert_alert_jobs(&mut tx, (&prefix, alert_jobs), None, attempt.finished_at).await?;
        }
        tx.commit().await?;
        if alerts.iter().any(|jobs| !jobs.is_empty()) {
            self.notify_jobs_changed();
        }
        Ok(true)
    }

    /// Writes `alert_jobs` (an alert about `job`, raised while the job goes on, such as
    /// `provider_account`), once per `(job, cause)`: a job retried with the same cause does
    /// not raise it again (its attempts, counted again after a dead-letter retry, are not
    /// part of the key: the alert stands until the placement ends).
    pub async fn alert_once(
        &self,
        job: &ClaimedJob,
        cause: &str,
        alert_jobs: &[NewJob],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        let prefix = format!("about:{}:{cause}", job.id);
        // Under the job's order, if it has one: listed with the order it is about.
        insert_alert_jobs(
            &mut tx,
            (&prefix, alert_jobs),
            job.order_no.as_deref(),
            self.now(),
        )
        .await?;
        tx.commit().await?;
        if !alert_jobs.is_empty() {
            self.notify_jobs_changed();
        }
        Ok(())
    }
}
