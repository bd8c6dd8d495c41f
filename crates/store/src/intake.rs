//! The intake transaction: receipt, order, event and outbox jobs, committed together.

use esim_courier_core::{
    classify, plan, plan_alert, Alert, Delivery, Disposition, EventFingerprint, EventSource,
    OrderEvent, OrderResult, Plan, Routes,
};
use sqlx::{Any, Row, Transaction};

use crate::crypto::{event_row, receipt_row, Field, Keyring};
use crate::outbox::JobKind;
use crate::pg_batch::Batched;
use crate::pg_intake::FirstEvent;
use crate::{Store, StoreError};

// The intake's statements, shared by the sqlx path (PostgreSQL) and SQLite's group-commit
// writer (rusqlite). Each `$n` first appears in order, and both bind by number.

/// Creates the order with its first result counted (`$3`), if the order is new: SQLite's
/// [`IntakeSteps::create_with_first_result`]. Its state and count are what creating the
/// order then [`COUNT_ORDER_EVENT`] of an accepted event would leave.
pub(crate) const INSERT_ORDER_WITH_RESULT: &str =
    "INSERT INTO orders (order_no, created_at, updated_at, state, recorded_events)
     VALUES ($1, $2, $2, $3, 1)
     ON CONFLICT (order_no) DO NOTHING";
/// The events already recorded for an order: `result`, `fingerprint`, and `disposition`
/// (an event set aside as unverified still recognises its duplicates, [`classify`]).
pub(crate) const RECORDED_EVENTS: &str =
    "SELECT result, fingerprint, disposition FROM order_events WHERE order_no = $1";

/// A row of [`RECORDED_EVENTS`], as the intake rules compare a delivery with it.
pub(crate) fn recorded_event(result: &str, digest: String, disposition: &str) -> EventFingerprint {
    EventFingerprint {
        result: OrderResult::parse(result),
        digest,
        set_aside: disposition == "unverified",
    }
}

/// The receipt of an authenticated, parsed delivery.
pub(crate) const INSERT_RECEIPT: &str =
    "INSERT INTO webhook_receipts (received_at, remote_addr, order_no, outcome, http_status, body, source)
     VALUES ($1, $2, $3, $4, 200, $5, $6) RETURNING id";
/// A new (accepted or conflicting) event; the values come from [`EventColumns`].
pub(crate) const INSERT_EVENT: &str =
    "INSERT INTO order_events (order_no, receipt_id, received_at, result, disposition, fingerprint,
     iccid, lpa, package_code, package_name, currency, price, warnings, source)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id";
/// The order after a new event: one more recorded event and, when `$4` (accepted), the
/// event's result as its state. `$1` result, `$2` now, `$3` order.
pub(crate) const COUNT_ORDER_EVENT: &str =
    "UPDATE orders SET recorded_events = recorded_events + 1,
            state = CASE WHEN $4 THEN $1 ELSE state END,
            updated_at = CASE WHEN $4 THEN $2 ELSE updated_at END
      WHERE order_no = $3";
/// A job, unless one with the same key exists.
pub(crate) const INSERT_JOB: &str =
    "INSERT INTO outbox_jobs (dedup_key, notifier, kind, order_no, event_id, payload, state,
     attempts, created_at, updated_at, next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7, $7)
     ON CONFLICT (dedup_key) DO NOTHING";

/// The receipt's `outcome` for a disposition.
pub(crate) fn receipt_outcome(disposition: &Disposition) -> &'static str {
    match disposition {
        Disposition::Accepted => "accepted",
        Disposition::Duplicate => "duplicate",
        Disposition::Conflict(_) => "conflict",
    }
}

/// A job's deduplication key. An activation is keyed by order and ICCID: one per eSIM,
/// whatever events carried it. Everything else by event.
pub(crate) fn job_key(event: &OrderEvent, event_id: i64, job: &NewJob) -> String {
    order_job_key(event, job)
        .unwrap_or_else(|| format!("event:{event_id}:{}:{}", job.kind.as_str(), job.notifier))
}

/// The key of a job keyed by order (an activation), known before its event is written;
/// `None` for a job keyed by event. The first-result statement (pg_intake.rs) makes the
/// event's keys in SQL, in the same form as [`job_key`].
fn order_job_key(event: &OrderEvent, job: &NewJob) -> Option<String> {
    match job.kind {
        JobKind::OrderCompleted => Some(format!(
            "completed:{}:{}:{}",
            event.order_no,
            event.iccid_display(),
            job.notifier
        )),
        _ => None,
    }
}

/// An event's values for [`INSERT_EVENT`], in order from `result` (`$4`..`$13`; the order,
/// receipt and time come first).
#[derive(Debug, Clone, Default)]
pub(crate) struct EventColumns {
    pub(crate) result: String,
    pub(crate) disposition: &'static str,
    pub(crate) fingerprint: String,
    pub(crate) iccid: String,
    pub(crate) lpa: Option<String>,
    pub(crate) package_code: Option<String>,
    pub(crate) package_name: Option<String>,
    pub(crate) currency: Option<String>,
    pub(crate) price: Option<String>,
    pub(crate) warnings: String,
}

/// An event's secrets as stored: its keyed fingerprint and its sealed activation code. Made
/// by the caller before the write, off the SQLite writer's thread.
#[derive(Debug, Clone)]
pub(crate) struct SealedEvent {
    pub(crate) fingerprint: String,
    pub(crate) lpa: Option<String>,
}

impl SealedEvent {
    /// What the rules compare `event` by, as it would be recorded.
    pub(crate) fn as_recorded(&self, event: &OrderEvent) -> EventFingerprint {
        EventFingerprint {
            result: event.result.clone(),
            digest: self.fingerprint.clone(),
            set_aside: false,
        }
    }

    pub(crate) fn new(keys: &Keyring, event: &OrderEvent) -> Self {
        let fingerprint = keys.fingerprint(event.fingerprint());
        let lpa = event.usable_activation_code().map(|c| {
            keys.seal_str(
                Field::EventCode,
                &event_row(event.order_no.as_str(), &fingerprint),
                &c.qr_text(),
            )
        });
        Self { fingerprint, lpa }
    }
}

impl EventColumns {
    pub(crate) fn new(
        event: &OrderEvent,
        sealed: &SealedEvent,
        accepted: bool,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            result: event.result.as_str().to_owned(),
            disposition: if accepted { "accepted" } else { "conflict" },
            fingerprint: sealed.fingerprint.clone(),
            iccid: event.iccid_display().to_owned(),
            lpa: sealed.lpa.clone(),
            package_code: event.package_code.clone(),
            package_name: event.package_name.clone(),
            currency: event.currency.as_ref().map(|c| c.code().to_owned()),
            price: event
                .contract_price
                .as_ref()
                .map(|m| m.amount().to_string()),
            warnings: serde_json::to_string(&event.warnings)
                .map_err(|e| StoreError::Corrupt(format!("warnings do not serialise: {e}")))?,
        })
    }
}

/// A webhook delivery as received.
#[derive(Debug, Clone, Copy)]
pub struct NewReceipt<'a> {
    /// When it arrived (Unix milliseconds).
    pub received_at_ms: i64,
    /// The sender's address, as seen by the receiver.
    pub remote_addr: Option<&'a str>,
    /// The raw body, exactly as received (for reconciliation, the provider's record).
    pub body: &'a [u8],
    /// How it reached us.
    pub source: EventSource,
}

/// An outbox job to write with an event.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The notifier's configured name.
    pub notifier: String,
    /// What the job delivers.
    pub kind: JobKind,
    /// The alert, as JSON, for [`JobKind::Alert`] jobs.
    pub payload: Option<String>,
}

impl NewJob {
    /// The outbox jobs of a [`Plan`]. An alert that no route takes is logged as an error
    /// (then the only place it shows); one that does not serialise too (never expected).
    pub fn from_plan(plan: Plan) -> Vec<NewJob> {
        if let Some(alert) = &plan.unrouted {
            log_unrouted(alert);
        }
        Self::of_planned(plan.jobs)
    }

    fn of_planned(jobs: Vec<esim_courier_core::PlannedJob>) -> Vec<NewJob> {
        jobs.into_iter()
            .filter_map(|job| {
                let (kind, payload) = match &job.delivery {
                    Delivery::Activation => (JobKind::OrderCompleted, None),
                    Delivery::FailedOrder => (JobKind::OrderFailed, None),
                    Delivery::Alert(alert) => match serde_json::to_string(alert) {
                        Ok(json) => (JobKind::Alert, Some(json)),
                        Err(e) => {
                            tracing::error!(error = %e, alert = %alert.summary(), "an alert does not serialise; it is only logged");
                            return None;
                        }
                    },
                };
                Some(NewJob {
                    notifier: job.notifier,
                    kind,
                    payload,
                })
            })
            .collect()
    }

    /// One alert job per notifier routed for the alert's kind ([`plan_alert`]).
    pub fn alerts(routes: &Routes, alert: &Alert) -> Vec<NewJob> {
        Self::from_plan(plan_alert(routes, alert))
    }
}

/// What an intake's planner gives for the disposition found: the outbox jobs to write with
/// the event, and an alert that no route takes. The store logs that alert once the intake
/// that planned it has committed: the planner may run more than once (see [`Store::intake`]),
/// and a plan not written must not be reported.
#[derive(Debug, Clone, Default)]
pub struct Planned {
    /// The jobs to write.
    pub jobs: Vec<NewJob>,
    /// An alert raised with no notifier routed for its kind.
    pub unrouted: Option<Alert>,
}

impl Planned {
    /// The jobs of a [`Plan`], its unrouted alert kept for the store to log.
    pub fn from_plan(plan: Plan) -> Self {
        Planned {
            jobs: NewJob::of_planned(plan.jobs),
            unrouted: plan.unrouted,
        }
    }

    /// The planner of an intake routed by `routes` ([`plan()`] at the time it runs), for
    /// [`Store::intake`]. It shares the routes and is given the event, so it copies neither.
    pub fn routed(routes: Routes) -> impl Fn(&OrderEvent, &Disposition) -> Planned + Send {
        move |event, disposition| {
            Self::from_plan(plan(&routes, event, disposition, crate::now_ms()))
        }
    }
}

impl From<Vec<NewJob>> for Planned {
    fn from(jobs: Vec<NewJob>) -> Self {
        Planned {
            jobs,
            unrouted: None,
        }
    }
}

fn log_unrouted(alert: &Alert) {
    tracing::error!(alert = %alert.summary(), "no notifier is routed for this alert kind; it is only logged");
}

/// What the intake recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeOutcome {
    /// Accepted, duplicate or conflict.
    pub disposition: Disposition,
    /// The receipt's id.
    pub receipt_id: i64,
    /// The new event's id (none for a duplicate).
    pub event_id: Option<i64>,
    /// How many outbox jobs were written.
    pub jobs: usize,
    /// The alert this intake raised that no notifier is routed for (logged by the store).
    pub unrouted: Option<Alert>,
}

/// How the intake turns the event and its disposition into jobs: called inside the
/// transaction, once the disposition is known, and again if the transaction runs again.
pub type Planner = Box<dyn Fn(&OrderEvent, &Disposition) -> Planned + Send>;

impl Store {
    /// Records one webhook delivery in a single transaction: the raw receipt, the order row,
    /// the event (unless it is a duplicate) and the outbox jobs that `plan` routes for it.
    /// Returns only after the commit; wakes the dispatcher when jobs were written.
    ///
    /// On SQLite, concurrent intakes are committed together by one writer (group commit:
    /// one WAL sync for many webhooks; one failure does not fail the others). On PostgreSQL,
    /// an order's first result (nearly every webhook) goes through the intake writer: the
    /// ones arriving together share one statement and one commit (pg_intake.rs).
    ///
    /// `plan`, given `event` and its disposition, may be called twice: on PostgreSQL for an
    /// order's first result, then (when the order turned out to have results already) with
    /// the disposition the rules gave; on SQLite when another write of the same batch failed
    /// and the batch runs again. Only the plan written counts: its unrouted alert is logged
    /// after the commit, once.
    ///
    /// The webhook handler allocates this future, within its own, once per webhook, so it is
    /// kept small (BENCHMARKS.md, "An intake's future"): no tracing span of its own, whose
    /// attribute kept a second copy of the arguments (the alert it logs names its order), and
    /// PostgreSQL's part boxed apart.
    /// Whether `event` is on record for its order already (the same fingerprint, set aside
    /// as unverified or not): a read through the order's unique (order, fingerprint) index.
    /// A reconciliation sweep reads the provider's finished orders again each time; what is
    /// known is skipped with this read instead of an intake that writes a duplicate receipt,
    /// holding the provider's record, per order and per sweep.
    pub async fn knows_event(&self, event: &OrderEvent) -> Result<bool, StoreError> {
        let fingerprint = self.keys.fingerprint(event.fingerprint());
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM order_events WHERE order_no = $1 AND fingerprint = $2",
        )
        .bind(event.order_no.as_str().to_owned())
        .bind(fingerprint)
        .fetch_one(&self.read)
        .await?
        .try_get("n")?;
        Ok(n > 0)
    }

    pub async fn intake(
        &self,
        receipt: NewReceipt<'_>,
        event: &OrderEvent,
        plan: impl Fn(&OrderEvent, &Disposition) -> Planned + Send + 'static,
    ) -> Result<IntakeOutcome, StoreError> {
        let sealed = SealedEvent::new(&self.keys, event);
        let receipt = OwnedReceipt::sealed(&self.keys, receipt, Some(event.order_no.as_str()));
        let outcome = match &self.batcher {
            Some(batcher) => {
                batcher
                    .intake(receipt, event.clone(), sealed, Box::new(plan), self.now())
                    .await?
            }
            // Boxed: sqlx's futures are large, and inline they made every intake's future
            // 3.5 KiB, SQLite's too.
            None => Box::pin(self.intake_postgres(&receipt, event, &sealed, &plan)).await?,
        };
        if outcome.jobs > 0 {
            self.notify_jobs_changed();
        }
        if let Some(alert) = &outcome.unrouted {
            log_unrouted(alert);
        }
        Ok(outcome)
    }

    /// PostgreSQL's intake: the first-result statement, or else the whole intake in a
    /// transaction of its own.
    async fn intake_postgres(
        &self,
        receipt: &OwnedReceipt,
        event: &OrderEvent,
        sealed: &SealedEvent,
        plan: &(impl Fn(&OrderEvent, &Disposition) -> Planned + Send),
    ) -> Result<IntakeOutcome, StoreError> {
        let now = self.now();
        if let Some(outcome) = self
            .first_event_postgres(receipt, event, sealed, plan, now)
            .await?
        {
            return Ok(outcome);
        }
        let mut tx = self.begin_write().await?;
        let outcome = run_intake(
            &mut PostgresSteps { tx: &mut tx },
            receipt,
            event,
            sealed,
            plan,
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// PostgreSQL's first-result statement: records `event` as its order's first result, if
    /// the order has none; `None` (nothing written) otherwise. Through the intake writer, in
    /// one statement with the first results arriving meanwhile (pg_intake.rs).
    async fn first_event_postgres(
        &self,
        receipt: &OwnedReceipt,
        event: &OrderEvent,
        sealed: &SealedEvent,
        plan: &(impl Fn(&OrderEvent, &Disposition) -> Planned + Send),
        now: i64,
    ) -> Result<Option<IntakeOutcome>, StoreError> {
        // The rules, for an order with no recorded event (what the statement checks).
        let disposition = classify(&[], &sealed.as_recorded(event));
        if disposition != Disposition::Accepted {
            return Ok(None);
        }
        let Planned { jobs, unrouted } = plan(event, &disposition);
        let jobs_json = serde_json::Value::Array(
            jobs.iter()
                .map(|job| {
                    serde_json::json!({
                        "dedup_key": order_job_key(event, job),
                        "notifier": job.notifier,
                        "kind": job.kind.as_str(),
                        "payload": job.payload,
                    })
                })
                .collect(),
        )
        .to_string();
        let c = EventColumns::new(event, sealed, true)?;
        let row = FirstEvent {
            received_at: receipt.received_at_ms,
            remote_addr: receipt.remote_addr.clone(),
            order_no: event.order_no.as_str().to_owned(),
            body: receipt.body.clone(),
            source: receipt.source.as_str(),
            event: c,
            now,
            jobs: jobs_json,
        };
        let recorded = match &self.intakes {
            Some(intakes) => intakes.write(row).await?,
            None => <FirstEvent as Batched>::write_one(&self.write, &row).await?,
        };
        Ok(recorded.map(|(receipt_id, event_id)| IntakeOutcome {
            disposition,
            receipt_id,
            event_id: Some(event_id),
            jobs: jobs.len(),
            unrouted,
        }))
    }

    /// Keeps a rejected body from an authenticated sender, with the reason and the HTTP
    /// status it got, and writes the alert jobs `plan` gives for it, in one transaction.
    pub async fn quarantine(
        &self,
        receipt: NewReceipt<'_>,
        order_no: Option<&str>,
        http_status: u16,
        reason: &str,
        plan: impl FnOnce(i64) -> Vec<NewJob>,
    ) -> Result<i64, StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        let receipt_id: i64 = sqlx::query(
            "INSERT INTO webhook_receipts (received_at, remote_addr, order_no, outcome, http_status, reason, body)
             VALUES ($1, $2, $3, 'quarantined', $4, $5, $6) RETURNING id",
        )
        .bind(receipt.received_at_ms)
        .bind(receipt.remote_addr.map(str::to_owned))
        .bind(order_no.map(str::to_owned))
        .bind(i64::from(http_status))
        .bind(reason.to_owned())
        .bind(
            self.keys
                .seal(
                    Field::ReceiptBody,
                    &receipt_row(order_no, receipt.received_at_ms),
                    receipt.body,
                )
                .into_bytes(),
        )
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        if let Some(order_no) = order_no {
            // On record as awaiting a usable webhook (as a registration makes it), so that the
            // order and its refused body are found where operators look (the rejection
            // alert's `orders show`, the console, the order API) though no event came yet.
            sqlx::query(
                "INSERT INTO orders (order_no, created_at, updated_at, state)
                 VALUES ($1, $2, $2, 'awaiting_webhook') ON CONFLICT (order_no) DO NOTHING",
            )
            .bind(order_no.to_owned())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        let jobs = plan(receipt_id);
        let n = jobs.len();
        for job in jobs {
            let key = format!(
                "receipt:{receipt_id}:{}:{}",
                job.kind.as_str(),
                job.notifier
            );
            insert_job(&mut tx, &job, &key, order_no, None, now).await?;
        }
        tx.commit().await?;
        if n > 0 {
            self.notify_jobs_changed();
        }
        Ok(receipt_id)
    }
}

impl Store {
    /// Writes the jobs of an alert that belongs to no webhook (e.g. `auth_failures`),
    /// keyed `alert:{key}:{notifier}`: a job with that key is written once, so replicas
    /// raising the same alert under the same key (the same minute) make one.
    pub async fn raise_alert(&self, key: &str, jobs: Vec<NewJob>) -> Result<(), StoreError> {
        if jobs.is_empty() {
            return Ok(());
        }
        let now = self.now();
        let mut tx = self.begin_write().await?;
        for job in &jobs {
            let dedup = format!("alert:{key}:{}", job.notifier);
            insert_job(&mut tx, job, &dedup, None, None, now).await?;
        }
        tx.commit().await?;
        self.notify_jobs_changed();
        Ok(())
    }
}

/// A receipt that can travel to the group-commit writer.
#[derive(Debug, Clone)]
pub(crate) struct OwnedReceipt {
    pub(crate) received_at_ms: i64,
    pub(crate) remote_addr: Option<String>,
    pub(crate) body: Vec<u8>,
    pub(crate) source: EventSource,
}

impl OwnedReceipt {
    /// The receipt as stored: its body sealed for the row of `order_no` at its arrival.
    pub(crate) fn sealed(keys: &Keyring, r: NewReceipt<'_>, order_no: Option<&str>) -> Self {
        Self {
            received_at_ms: r.received_at_ms,
            remote_addr: r.remote_addr.map(str::to_owned),
            body: keys
                .seal(
                    Field::ReceiptBody,
                    &receipt_row(order_no, r.received_at_ms),
                    r.body,
                )
                .into_bytes(),
            source: r.source,
        }
    }
}

/// PostgreSQL: creates the order row, or locks it when it exists. The conflict arm's
/// no-op update takes the row lock that serialises concurrent deliveries of one order.
const LOCK_ORDER_PG: &str = "INSERT INTO orders (order_no, created_at, updated_at, state) VALUES ($1, $2, $2, 'awaiting_webhook')
     ON CONFLICT (order_no) DO UPDATE SET updated_at = orders.updated_at";

/// PostgreSQL: [`INSERT_RECEIPT`], [`INSERT_EVENT`] and [`COUNT_ORDER_EVENT`] (when `$16`,
/// a new event; accepted when `$17`) in one statement, one round trip. `$1`..`$5` as in `INSERT_RECEIPT` (`$3` the
/// order), `$6`..`$15` the event's columns from `result` on, `$18` now, `$19` the source.
const RECORD_EVENT_PG: &str = "WITH r AS (
         INSERT INTO webhook_receipts (received_at, remote_addr, order_no, outcome, http_status, body, source)
         VALUES ($1, $2, $3, $4, 200, $5, $19) RETURNING id),
     e AS (
         INSERT INTO order_events (order_no, receipt_id, received_at, result, disposition, fingerprint,
             iccid, lpa, package_code, package_name, currency, price, warnings, source)
         SELECT $3, r.id, $1, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $19 FROM r WHERE $16
         RETURNING id),
     o AS (UPDATE orders SET recorded_events = recorded_events + 1,
                  state = CASE WHEN $17 THEN $6 ELSE state END,
                  updated_at = CASE WHEN $17 THEN $18 ELSE updated_at END
            WHERE order_no = $3 AND $16)
     SELECT r.id AS receipt_id, (SELECT id FROM e) AS event_id FROM r";

/// What [`IntakeSteps::record`] writes: the receipt always; the event and (when accepted)
/// the order's state unless the delivery is a duplicate.
pub(crate) struct Record<'a> {
    pub(crate) receipt: &'a OwnedReceipt,
    pub(crate) order_no: &'a str,
    /// The receipt's `outcome`.
    pub(crate) outcome: &'static str,
    /// The event's columns; `None` for a duplicate.
    pub(crate) event: Option<EventColumns>,
    /// Whether the event is accepted (then the order takes its result as its state).
    pub(crate) accepted: bool,
    pub(crate) now: i64,
}

/// What [`IntakeSteps::insert_job`] writes: one job of an accepted event, under its key.
pub(crate) struct EventJob<'a> {
    pub(crate) job: &'a NewJob,
    pub(crate) key: &'a str,
    pub(crate) order_no: &'a str,
    pub(crate) event_id: i64,
    pub(crate) now: i64,
}

/// The steps of an intake on one engine: the statements differ (SQLite runs one per step on
/// its writer thread; PostgreSQL locks the order with an upsert and records receipt, event
/// and state in one statement), the algorithm ([`run_intake`]) is written once.
pub(crate) trait IntakeSteps {
    /// Creates the order with `result`, an accepted first event's, as its state and that
    /// event counted, if the order is new; `false`, nothing written, when its row exists. A
    /// new order has no event to read, and [`Self::record`] then counts none again.
    async fn create_with_first_result(
        &mut self,
        order_no: &str,
        result: &str,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// After [`Self::create_with_first_result`] made nothing: takes the order's row lock on
    /// PostgreSQL, creating the row if it is missing, which serialises concurrent deliveries
    /// of one order. SQLite has one writer, and its create found the row.
    async fn lock_order(&mut self, order_no: &str, now: i64) -> Result<(), StoreError>;
    /// The events already recorded for the order, those set aside as unverified included.
    async fn recorded_events(
        &mut self,
        order_no: &str,
    ) -> Result<Vec<EventFingerprint>, StoreError>;
    /// Writes the receipt, the event and the order's state; returns their ids.
    async fn record(&mut self, record: Record<'_>) -> Result<(i64, Option<i64>), StoreError>;
    /// Writes a job unless one with the same key exists.
    async fn insert_job(&mut self, job: EventJob<'_>) -> Result<(), StoreError>;
}

/// The intake, once for both engines, inside a transaction the caller commits: create or lock
/// the order, read its events, classify the delivery, record it, write the jobs `plan` gives.
pub(crate) async fn run_intake<S, P>(
    steps: &mut S,
    receipt: &OwnedReceipt,
    event: &OrderEvent,
    sealed: &SealedEvent,
    plan: &P,
    now: i64,
) -> Result<IntakeOutcome, StoreError>
where
    S: IntakeSteps,
    P: Fn(&OrderEvent, &Disposition) -> Planned + ?Sized,
{
    let order_no = event.order_no.as_str();
    // An order's first result (nearly every webhook) is accepted whatever it is: the order is
    // made with it, and has no event to read yet.
    let recorded = if steps
        .create_with_first_result(order_no, event.result.as_str(), now)
        .await?
    {
        Vec::new()
    } else {
        steps.lock_order(order_no, now).await?;
        steps.recorded_events(order_no).await?
    };
    let disposition = classify(&recorded, &sealed.as_recorded(event));
    let accepted = disposition == Disposition::Accepted;
    let new_event = disposition != Disposition::Duplicate;
    let columns = if new_event {
        Some(EventColumns::new(event, sealed, accepted)?)
    } else {
        None
    };
    let (receipt_id, event_id) = steps
        .record(Record {
            receipt,
            order_no,
            outcome: receipt_outcome(&disposition),
            event: columns,
            accepted,
            now,
        })
        .await?;
    let (jobs, unrouted) = match event_id {
        Some(event_id) => {
            let Planned { jobs, unrouted } = plan(event, &disposition);
            for job in &jobs {
                let key = job_key(event, event_id, job);
                steps
                    .insert_job(EventJob {
                        job,
                        key: &key,
                        order_no,
                        event_id,
                        now,
                    })
                    .await?;
            }
            (jobs.len(), unrouted)
        }
        None if new_event => {
            return Err(StoreError::Corrupt(format!(
                "the event of order {order_no} was not recorded"
            )))
        }
        None => (0, None),
    };
    Ok(IntakeOutcome {
        disposition,
        receipt_id,
        event_id,
        jobs,
        unrouted,
    })
}

/// PostgreSQL's intake steps, in the caller's transaction: four round trips and one per job.
pub(crate) struct PostgresSteps<'t, 'c> {
    pub(crate) tx: &'t mut Transaction<'c, Any>,
}

impl IntakeSteps for PostgresSteps<'_, '_> {
    /// Never creates: an order's first result took the first-result statement before this
    /// transaction ([`Store::intake`]); what reaches it is an order with a result already
    /// (or whose count disagreed with its events), read and locked by the steps below.
    async fn create_with_first_result(
        &mut self,
        _order_no: &str,
        _result: &str,
        _now: i64,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    async fn lock_order(&mut self, order_no: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(LOCK_ORDER_PG)
            .bind(order_no.to_owned())
            .bind(now)
            .execute(&mut **self.tx)
            .await?;
        Ok(())
    }

    /// A statement of its own, after the lock: in READ COMMITTED it sees every event that a
    /// concurrent delivery of this order committed before releasing the lock.
    async fn recorded_events(
        &mut self,
        order_no: &str,
    ) -> Result<Vec<EventFingerprint>, StoreError> {
        sqlx::query(RECORDED_EVENTS)
            .bind(order_no.to_owned())
            .fetch_all(&mut **self.tx)
            .await?
            .into_iter()
            .map(|row| {
                Ok(recorded_event(
                    &row.try_get::<String, _>("result")?,
                    row.try_get("fingerprint")?,
                    &row.try_get::<String, _>("disposition")?,
                ))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    async fn record(&mut self, r: Record<'_>) -> Result<(i64, Option<i64>), StoreError> {
        let new_event = r.event.is_some();
        let c = r.event.unwrap_or_default();
        let row = sqlx::query(RECORD_EVENT_PG)
            .bind(r.receipt.received_at_ms)
            .bind(r.receipt.remote_addr.clone())
            .bind(r.order_no.to_owned())
            .bind(r.outcome)
            .bind(r.receipt.body.clone())
            .bind(c.result)
            .bind(c.disposition)
            .bind(c.fingerprint)
            .bind(c.iccid)
            .bind(c.lpa)
            .bind(c.package_code)
            .bind(c.package_name)
            .bind(c.currency)
            .bind(c.price)
            .bind(c.warnings)
            .bind(new_event)
            .bind(r.accepted)
            .bind(r.now)
            .bind(r.receipt.source.as_str())
            .fetch_one(&mut **self.tx)
            .await?;
        Ok((row.try_get("receipt_id")?, row.try_get("event_id")?))
    }

    async fn insert_job(&mut self, j: EventJob<'_>) -> Result<(), StoreError> {
        insert_job(
            self.tx,
            j.job,
            j.key,
            Some(j.order_no),
            Some(j.event_id),
            j.now,
        )
        .await
    }
}

/// Writes a job unless one with the same key exists.
pub(crate) async fn insert_job(
    tx: &mut Transaction<'_, Any>,
    job: &NewJob,
    dedup_key: &str,
    order_no: Option<&str>,
    event_id: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(INSERT_JOB)
        .bind(dedup_key.to_owned())
        .bind(job.notifier.clone())
        .bind(job.kind.as_str())
        .bind(order_no.map(str::to_owned))
        .bind(event_id)
        .bind(job.payload.clone())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
