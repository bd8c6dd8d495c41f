//! Orders as operators and the API see them: registration, details, dead letters.

use esim_courier_core::{
    ActivationCode, Currency, Customer, EmailAddress, EventSource, Locale, Money, OrderNo,
    OrderResult,
};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::audit::{self, AuditAction, AuditEntry};
use crate::columns::Columns;
use crate::crypto::{attempt_row, event_row, Field, Keyring};
use crate::outbox::{AttemptOutcome, JobState};
use crate::{Store, StoreError};

/// What a registration did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// The order had no customer before.
    Created,
    /// The order's customer was replaced (or registered again as it was).
    Updated,
    /// Nothing: the activation email was already delivered, to another address than the
    /// one given. Holds the address it went to last (for the caller to show masked).
    AlreadyDelivered {
        /// Where the activation email went.
        to: EmailAddress,
    },
}

/// A re-send that was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resend {
    /// The new jobs' ids.
    pub jobs: Vec<i64>,
    /// Where it goes as things stand: the address given, or the registered customer's;
    /// `None` when no customer is registered yet (it waits for the registration).
    pub recipient: Option<EmailAddress>,
}

/// An order row.
#[derive(Debug, Clone)]
pub struct OrderRecord {
    /// The order number.
    pub order_no: OrderNo,
    /// `awaiting_webhook` or the last accepted result.
    pub state: String,
    /// When the row was written.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// The registered customer.
    pub customer: Option<Customer>,
    /// When the customer was first registered (Unix ms).
    pub registered_at: Option<i64>,
}

/// An order event, as stored, read back into the types intake parsed it into.
#[derive(Debug, Clone)]
pub struct EventRecord {
    /// The event's id.
    pub id: i64,
    /// The order number.
    pub order_no: OrderNo,
    /// The receipt it came in.
    pub receipt_id: i64,
    /// When it arrived.
    pub received_at: i64,
    /// The result as received.
    pub result: OrderResult,
    /// `accepted` or `conflict`.
    pub disposition: String,
    /// The ICCID as shown.
    pub iccid: String,
    /// The usable activation code, if any. A secret: its `Debug` is redacted.
    pub activation_code: Option<ActivationCode>,
    /// The masked form of an activation code erased by retention or erasure.
    pub erased_code: Option<String>,
    /// Package id.
    pub package_code: Option<String>,
    /// Package name.
    pub package_name: Option<String>,
    /// Contract currency.
    pub currency: Option<Currency>,
    /// Contract price (operators only).
    pub contract_price: Option<Money>,
    /// Warnings found when parsing.
    pub warnings: Vec<String>,
    /// How it reached us: the webhook, or reconciliation.
    pub source: EventSource,
}

/// An outbox job, as operators see it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobRecord {
    /// The job's id (for `dead-letters retry ID`).
    pub id: i64,
    /// The notifier's name.
    pub notifier: String,
    /// What it delivers.
    pub kind: String,
    /// The order, if any.
    pub order_no: Option<String>,
    /// Where it is in its life.
    pub state: JobState,
    /// Attempts made.
    pub attempts: i64,
    /// When it was written.
    pub created_at: i64,
    /// When it last changed.
    pub updated_at: i64,
    /// When it is next due.
    pub next_attempt_at: i64,
    /// The last error.
    pub last_error: Option<String>,
    /// Every attempt, oldest first (filled by [`Store::order_details`]).
    pub attempt_log: Vec<AttemptRecord>,
}

/// One delivery attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AttemptRecord {
    /// 1 for the first attempt.
    pub attempt: i64,
    /// When the notifier was called.
    pub started_at: i64,
    /// When it answered.
    pub finished_at: i64,
    /// Delivered, or how it failed.
    pub outcome: AttemptOutcome,
    /// The error, if any.
    pub error: Option<String>,
    /// The channel's receipt id, if any.
    pub receipt: Option<String>,
    /// The worker that made it.
    pub worker: String,
    /// The customer's address it went to (customer notifiers). Serialised masked
    /// (`t***@example.com`): every view of the delivery log shows it so.
    #[serde(serialize_with = "serialize_masked")]
    pub recipient: Option<EmailAddress>,
    /// The language the message was written in, for a delivered activation email.
    pub locale: Option<String>,
}

fn serialize_masked<S: serde::Serializer>(
    address: &Option<EmailAddress>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match address {
        Some(a) => serializer.serialize_some(&a.masked()),
        None => serializer.serialize_none(),
    }
}

/// Everything known of an order.
#[derive(Debug, Clone)]
pub struct OrderDetails {
    /// The order row.
    pub order: OrderRecord,
    /// Its events, oldest first.
    pub events: Vec<EventRecord>,
    /// Its jobs with their attempts.
    pub jobs: Vec<JobRecord>,
    /// Its receipts: (id, received_at, outcome).
    pub receipts: Vec<(i64, i64, String)>,
    /// The reference of the placement that placed it, when esim-courier placed it.
    pub placement: Option<String>,
}

/// The columns of an event record, as `job_select!`.
macro_rules! event_select {
    () => {
        "SELECT id, order_no, receipt_id, received_at, result, disposition, fingerprint, iccid, lpa,
        lpa_masked, package_code, package_name, currency, price, warnings, source FROM order_events"
    };
}

/// The columns of a job record; a macro so each query is one `&'static str` (`concat!`).
macro_rules! job_select {
    () => {
        "SELECT id, notifier, kind, order_no, state, attempts, created_at, updated_at, next_attempt_at, last_error FROM outbox_jobs"
    };
}

impl Store {
    /// Registers (or replaces) the customer of an order. Jobs waiting for this customer
    /// become due at once.
    ///
    /// Once the activation email has been delivered, the order's activation code has gone to
    /// someone: a registration naming another address changes nothing and answers
    /// [`Registration::AlreadyDelivered`] (sending elsewhere is an operator's deliberate
    /// `resend --to`). Registering an address it was delivered to is fine.
    pub async fn register_customer(
        &self,
        order_no: &OrderNo,
        customer: &Customer,
    ) -> Result<Registration, StoreError> {
        let mut tx = self.begin_write().await?;
        let (registration, woken) = self
            .bind_customer(&mut tx, order_no.as_str(), customer, self.now())
            .await?;
        if matches!(registration, Registration::AlreadyDelivered { .. }) {
            // Dropping the transaction rolls back the order row it may have created.
            return Ok(registration);
        }
        tx.commit().await?;
        if woken > 0 {
            self.notify_jobs_changed();
        }
        Ok(registration)
    }

    /// A registration inside `tx`, the one place its rules are written (the registration API
    /// and a placement's answer both bind a customer so): creates the order row if needed,
    /// takes its lock, refuses another address once the activation email was delivered, and
    /// wakes the order's jobs parked for their customer. Returns what it did and how many jobs
    /// it woke (the caller notifies the dispatcher after its commit). On
    /// [`Registration::AlreadyDelivered`] nothing of the customer was written.
    pub(crate) async fn bind_customer(
        &self,
        tx: &mut Transaction<'_, Any>,
        order_no: &str,
        customer: &Customer,
        now: i64,
    ) -> Result<(Registration, u64), StoreError> {
        sqlx::query(
            "INSERT INTO orders (order_no, created_at, updated_at, state) VALUES ($1, $2, $2, 'awaiting_webhook')
             ON CONFLICT (order_no) DO NOTHING",
        )
        .bind(order_no.to_owned())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        let before: Option<String> = sqlx::query(self.locked_customer_email())
            .bind(order_no.to_owned())
            .fetch_one(&mut **tx)
            .await?
            .try_get("customer_email")?;
        let delivered_to = sqlx::query(
            "SELECT a.job_id, a.attempt, a.recipient FROM delivery_attempts a JOIN outbox_jobs j ON j.id = a.job_id
              WHERE j.order_no = $1 AND j.kind = 'order_completed' AND a.outcome = 'delivered'
                AND a.recipient IS NOT NULL
              ORDER BY a.id DESC",
        )
        .bind(order_no.to_owned())
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(|r| self.attempt_recipient(r))
        .collect::<Result<Vec<_>, _>>()?;
        if let Some(Some(last)) = delivered_to.first() {
            if !delivered_to
                .iter()
                .flatten()
                .any(|to| to.as_str().eq_ignore_ascii_case(customer.email.as_str()))
            {
                let to = last.clone();
                return Ok((Registration::AlreadyDelivered { to }, 0));
            }
        }
        let c = customer_columns(&self.keys, customer, CustomerOf::Order, order_no);
        sqlx::query(
            "UPDATE orders SET customer_email = $1, customer_name = $2, customer_locale = $3, retail_price = $4,
                    retail_currency = $5, registered_at = COALESCE(registered_at, $6), updated_at = $6,
                    customer_email_index = $8
              WHERE order_no = $7",
        )
        .bind(c.email)
        .bind(c.name)
        .bind(c.locale)
        .bind(c.price)
        .bind(c.currency)
        .bind(now)
        .bind(order_no.to_owned())
        .bind(c.email_index)
        .execute(&mut **tx)
        .await?;
        let woken = sqlx::query(
            "UPDATE outbox_jobs SET state = 'pending', next_attempt_at = $1, updated_at = $1, retry_from = $1
              WHERE order_no = $2 AND state = 'waiting'",
        )
        .bind(now)
        .bind(order_no.to_owned())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        let registration = if before.is_some() {
            Registration::Updated
        } else {
            Registration::Created
        };
        Ok((registration, woken))
    }

    /// Queues a deliberate re-send of an order's activation notification to `notifiers`: new
    /// jobs for its latest accepted COMPLETED event, with keys of their own (`resend:...`),
    /// so the once-only rule of the webhook path is untouched and the re-send is on record:
    /// the jobs and the audit row by `actor` are committed together. With `to`, the jobs
    /// go to that address instead of the registered customer's. `None` when the order has
    /// no accepted COMPLETED event with a usable activation code.
    pub async fn resend(
        &self,
        order_no: &str,
        notifiers: &[String],
        to: Option<&EmailAddress>,
        actor: &str,
    ) -> Result<Option<Resend>, StoreError> {
        let now = self.now();
        let mut tx = self.begin_write().await?;
        let event_id: Option<i64> = sqlx::query(
            "SELECT id FROM order_events WHERE order_no = $1 AND result = 'COMPLETED' AND disposition = 'accepted'
              AND lpa IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .bind(order_no.to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| r.try_get("id"))
        .transpose()?;
        let Some(event_id) = event_id else {
            return Ok(None);
        };
        // Under the order row's lock: two resends at once (a double click) are numbered one
        // after the other below, not both with the same key (a unique-key failure).
        let registered = sqlx::query(self.locked_customer_email())
            .bind(order_no.to_owned())
            .fetch_one(&mut *tx)
            .await?
            .try_get::<Option<String>, _>("customer_email")?;
        let recipient = match to {
            Some(to) => Some(to.clone()),
            None => registered
                .map(|e| {
                    let e = self.keys.open_str(Field::OrderEmail, order_no, &e)?;
                    email(&e, "the order's customer")
                })
                .transpose()?,
        };
        let mut jobs = Vec::new();
        for notifier in notifiers {
            let previous: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM outbox_jobs WHERE event_id = $1 AND notifier = $2",
            )
            .bind(event_id)
            .bind(notifier.clone())
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            let dedup_key = format!("resend:{event_id}:{notifier}:{previous}");
            let id: i64 = sqlx::query(
                "INSERT INTO outbox_jobs (dedup_key, notifier, kind, order_no, event_id, payload, state,
                     attempts, created_at, updated_at, next_attempt_at, recipient)
                 VALUES ($1, $2, 'order_completed', $3, $4, NULL, 'pending', 0, $5, $5, $5, $6) RETURNING id",
            )
            .bind(dedup_key)
            .bind(notifier.clone())
            .bind(order_no.to_owned())
            .bind(event_id)
            .bind(now)
            .bind(None::<String>)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
            if let Some(to) = to {
                // Sealed for the job's id, which only the insert gives.
                sqlx::query("UPDATE outbox_jobs SET recipient = $1 WHERE id = $2")
                    .bind(
                        self.keys
                            .seal_str(Field::JobRecipient, &id.to_string(), to.as_str()),
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            jobs.push(id);
        }
        let whom = match (&recipient, to) {
            (Some(r), Some(_)) => format!("to {} (given with --to)", r.masked()),
            (Some(r), None) => format!("to the registered customer {}", r.masked()),
            (None, _) => "to the customer once registered".to_owned(),
        };
        let ids = jobs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let entry = AuditEntry {
            actor: actor.to_owned(),
            action: AuditAction::Resend,
            order_no: Some(order_no.to_owned()),
            detail: format!("activation email queued again {whom} as job(s) {ids}"),
        };
        audit::record(&mut tx, &entry, now).await?;
        tx.commit().await?;
        self.notify_jobs_changed();
        Ok(Some(Resend { jobs, recipient }))
    }

    /// An order row, if the order is known.
    pub async fn order(&self, order_no: &str) -> Result<Option<OrderRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT order_no, state, created_at, updated_at, customer_email, customer_name, customer_locale,
                    retail_price, retail_currency, registered_at FROM orders WHERE order_no = $1",
        )
        .bind(order_no.to_owned())
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| order_record(&self.keys, &r)).transpose()
    }

    /// An event by id.
    pub async fn event(&self, id: i64) -> Result<Option<EventRecord>, StoreError> {
        let row = sqlx::query(concat!(event_select!(), " WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| event_record(&self.keys, &r)).transpose()
    }

    /// The order, its events, receipts, jobs and every attempt.
    pub async fn order_details(&self, order_no: &str) -> Result<Option<OrderDetails>, StoreError> {
        let Some(order) = self.order(order_no).await? else {
            return Ok(None);
        };
        let events = sqlx::query(concat!(event_select!(), " WHERE order_no = $1 ORDER BY id"))
            .bind(order_no.to_owned())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| event_record(&self.keys, r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut jobs = sqlx::query(concat!(job_select!(), " WHERE order_no = $1 ORDER BY id"))
            .bind(order_no.to_owned())
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(job_record)
            .collect::<Result<Vec<_>, _>>()?;
        for job in &mut jobs {
            job.attempt_log = self.attempts(job.id).await?;
        }
        let receipts = sqlx::query(
            "SELECT id, received_at, outcome FROM webhook_receipts WHERE order_no = $1 ORDER BY id",
        )
        .bind(order_no.to_owned())
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(|r| {
            Ok((
                r.try_get("id")?,
                r.try_get("received_at")?,
                r.try_get("outcome")?,
            ))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let placement = sqlx::query("SELECT reference FROM placements WHERE order_no = $1 LIMIT 1")
            .bind(order_no.to_owned())
            .fetch_optional(&self.read)
            .await?
            .map(|r| r.try_get("reference"))
            .transpose()?;
        Ok(Some(OrderDetails {
            order,
            events,
            jobs,
            receipts,
            placement,
        }))
    }

    /// The attempts of a job, oldest first.
    pub async fn attempts(&self, job_id: i64) -> Result<Vec<AttemptRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT job_id, attempt, started_at, finished_at, outcome, error, receipt, worker, recipient, locale
               FROM delivery_attempts WHERE job_id = $1 ORDER BY id",
        )
        .bind(job_id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AttemptRecord {
                    attempt: r.try_get("attempt")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    outcome: AttemptOutcome::parse(&r.try_get::<String, _>("outcome")?)?,
                    error: r.try_get("error")?,
                    receipt: r.try_get("receipt")?,
                    worker: r.try_get("worker")?,
                    recipient: self.attempt_recipient(r)?,
                    locale: r.try_get("locale")?,
                })
            })
            .collect()
    }

    /// Dead jobs, newest first.
    pub async fn dead_letters(&self) -> Result<Vec<JobRecord>, StoreError> {
        sqlx::query(concat!(
            job_select!(),
            " WHERE state = 'dead' ORDER BY updated_at DESC, id DESC"
        ))
        .fetch_all(&self.read)
        .await?
        .iter()
        .map(job_record)
        .collect()
    }

    /// When the longest-waiting registered order without a result was registered (Unix ms):
    /// the shop registered it, and neither its webhook nor reconciliation brought a result.
    pub async fn oldest_awaiting_result(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query(
            "SELECT MIN(registered_at) AS at FROM orders
              WHERE state = 'awaiting_webhook' AND registered_at IS NOT NULL",
        )
        .fetch_one(&self.read)
        .await?
        .try_get("at")?)
    }

    /// Counts of jobs by state, for health and metrics.
    pub async fn job_counts(&self) -> Result<Vec<(JobState, i64)>, StoreError> {
        sqlx::query("SELECT state, COUNT(*) AS n FROM outbox_jobs GROUP BY state ORDER BY state")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    JobState::parse(&r.try_get::<String, _>("state")?)?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }
}

impl Store {
    /// The address a delivery attempt went to, from a row with its `job_id`, `attempt` and
    /// `recipient`.
    pub(crate) fn attempt_recipient(&self, r: &AnyRow) -> Result<Option<EmailAddress>, StoreError> {
        let Some(sealed) = r.try_get::<Option<String>, _>("recipient")? else {
            return Ok(None);
        };
        let row = attempt_row(r.try_get("job_id")?, r.try_get("attempt")?);
        let address = self.keys.open_str(Field::AttemptRecipient, &row, &sealed)?;
        email(&address, "an attempt's recipient").map(Some)
    }
}

fn order_record(keys: &Keyring, r: &AnyRow) -> Result<OrderRecord, StoreError> {
    Ok(OrderRecord {
        order_no: order_no(&r.try_get::<String, _>("order_no")?)?,
        state: r.try_get("state")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        customer: customer_from_row(keys, r, CustomerOf::Order)?,
        registered_at: r.try_get("registered_at")?,
    })
}

/// A stored value that no longer parses: the row was written by something else, or by hand.
fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn order_no(text: &str) -> Result<OrderNo, StoreError> {
    OrderNo::parse(text).map_err(|e| corrupt("a stored order number", e))
}

pub(crate) fn email(text: &str, what: &str) -> Result<EmailAddress, StoreError> {
    EmailAddress::parse_stored(text).map_err(|e| corrupt(what, e))
}

/// A stored amount and currency code.
fn money(
    amount: Option<String>,
    code: Option<String>,
    what: &str,
) -> Result<Option<Money>, StoreError> {
    match (amount, code) {
        (Some(amount), Some(code)) => Money::parse(&amount, Currency::from_code(&code))
            .map(Some)
            .map_err(|e| corrupt(what, e)),
        _ => Ok(None),
    }
}

/// Which table's customer columns: an order's or a placement's.
#[derive(Debug, Clone, Copy)]
pub(crate) enum CustomerOf {
    /// `orders`, whose rows are named by `order_no`.
    Order,
    /// `placements`, whose rows are named by `reference`.
    Placement,
}

impl CustomerOf {
    fn fields(self) -> (Field, Field) {
        match self {
            CustomerOf::Order => (Field::OrderEmail, Field::OrderName),
            CustomerOf::Placement => (Field::PlacementEmail, Field::PlacementName),
        }
    }

    fn key_column(self) -> &'static str {
        match self {
            CustomerOf::Order => "order_no",
            CustomerOf::Placement => "reference",
        }
    }
}

/// A [`Customer`] as the `customer_*` and `retail_*` columns store it: address and name
/// sealed for the row, the address's blind index beside them.
pub(crate) struct CustomerColumns {
    pub(crate) email: String,
    pub(crate) email_index: String,
    pub(crate) name: Option<String>,
    pub(crate) locale: Option<String>,
    pub(crate) price: Option<String>,
    pub(crate) currency: Option<String>,
}

/// The columns of a customer of the row `row` (orders, placements): the inverse of
/// [`customer_from_row`].
pub(crate) fn customer_columns(
    keys: &Keyring,
    c: &Customer,
    of: CustomerOf,
    row: &str,
) -> CustomerColumns {
    let (email_field, name_field) = of.fields();
    CustomerColumns {
        email: keys.seal_str(email_field, row, c.email.as_str()),
        email_index: keys.email_index(c.email.as_str()),
        name: c.name.as_deref().map(|n| keys.seal_str(name_field, row, n)),
        locale: c.locale.as_ref().map(|l| l.as_str().to_owned()),
        price: c.retail_price.as_ref().map(|m| m.amount().to_string()),
        currency: c
            .retail_price
            .as_ref()
            .map(|m| m.currency().code().to_owned()),
    }
}

/// The registered customer in a row with the `customer_*` columns and the row's key
/// (`order_no` or `reference`): the one mapping of those columns to a [`Customer`].
pub(crate) fn customer_from_row<R: Columns>(
    keys: &Keyring,
    r: &R,
    of: CustomerOf,
) -> Result<Option<Customer>, StoreError> {
    // NULL: none registered; empty: a placement's customer, erased.
    let Some(address) = r
        .column::<Option<String>>("customer_email")?
        .filter(|a| !a.is_empty())
    else {
        return Ok(None);
    };
    let (email_field, name_field) = of.fields();
    let row: String = r.column(of.key_column())?;
    let address = keys.open_str(email_field, &row, &address)?;
    Ok(Some(Customer {
        email: email(&address, "the customer's stored address")?,
        name: r
            .column::<Option<String>>("customer_name")?
            .map(|n| keys.open_str(name_field, &row, &n))
            .transpose()?,
        locale: r
            .column::<Option<String>>("customer_locale")?
            .map(|l| Locale::parse(&l).map_err(|e| corrupt("the customer's stored locale", e)))
            .transpose()?,
        retail_price: money(
            r.column("retail_price")?,
            r.column("retail_currency")?,
            "the stored retail price",
        )?,
    }))
}

/// An `order_events` row: the one mapping of its columns to an [`EventRecord`].
pub(crate) fn event_record<R: Columns>(keys: &Keyring, r: &R) -> Result<EventRecord, StoreError> {
    let warnings: String = r.column("warnings")?;
    let currency: Option<String> = r.column("currency")?;
    let order: String = r.column("order_no")?;
    let row = event_row(&order, &r.column::<String>("fingerprint")?);
    Ok(EventRecord {
        id: r.column("id")?,
        order_no: order_no(&order)?,
        receipt_id: r.column("receipt_id")?,
        received_at: r.column("received_at")?,
        result: OrderResult::parse(&r.column::<String>("result")?),
        disposition: r.column("disposition")?,
        iccid: r.column("iccid")?,
        activation_code: r
            .column::<Option<String>>("lpa")?
            .map(|l| {
                let l = keys.open_str(Field::EventCode, &row, &l)?;
                ActivationCode::parse(&l).map_err(|e| corrupt("a stored activation code", e))
            })
            .transpose()?,
        erased_code: r.column("lpa_masked")?,
        package_code: r.column("package_code")?,
        package_name: r.column("package_name")?,
        contract_price: money(
            r.column("price")?,
            currency.clone(),
            "a stored contract price",
        )?,
        currency: currency.as_deref().map(Currency::from_code),
        warnings: serde_json::from_str(&warnings).map_err(|e| corrupt("event warnings", e))?,
        source: {
            let source: String = r.column("source")?;
            EventSource::parse(&source)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown event source {source:?}")))?
        },
    })
}

fn job_record(r: &AnyRow) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        id: r.try_get("id")?,
        notifier: r.try_get("notifier")?,
        kind: r.try_get("kind")?,
        order_no: r.try_get("order_no")?,
        state: JobState::parse(&r.try_get::<String, _>("state")?)?,
        attempts: r.try_get("attempts")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        attempt_log: Vec::new(),
    })
}
