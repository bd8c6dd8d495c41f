//! Keeping the stored values sealed: the checks at start-up, the encryption of a database
//! from before encryption, and key rotation.
//!
//! Both the upgrade and `keys rotate` walk every encrypted column in pages of the table's key,
//! each page its own transaction, and rewrite a value only where it still holds what was read
//! (`WHERE key = .. AND column = ..`): a run killed half-way leaves every page it committed
//! done, the next run finds only the rest, and a value `serve` rewrote meanwhile is left as
//! `serve` wrote it.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
// The statements built here name only the fixed tables and columns of `Field`.
use sqlx::{AssertSqlSafe, Row};

use crate::crypto::{self, event_row, Field};
use crate::{Store, StoreError};

/// How many values the stored data holds under each key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// Values per key id.
    pub by_key: BTreeMap<String, u64>,
    /// Values still in plaintext (from before encryption).
    pub plaintext: u64,
    /// Values that do not open (named in the log as they were met).
    pub unreadable: u64,
    /// Values rewritten by this run.
    pub rewritten: u64,
}

/// Where a walk over the stored values has got to: the column, and values seen of the
/// table's total.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The column being walked.
    pub field: Field,
    /// Rows seen so far in it.
    pub done: u64,
    /// Its rows.
    pub total: u64,
}

/// What a walk does to each value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// Count only.
    Count,
    /// Seal plaintext and re-seal values of other keys with the active key.
    Reseal,
}

/// A page's cursor: the table's key, a number or text.
#[derive(Debug, Clone)]
enum Cursor {
    Id(i64),
    Text(String),
}

const PAGE: i64 = 500;

/// What a key's check value says (`encryption_keys.key_check`).
const KEY_CHECK: &[u8] = b"esim-courier key check";

/// `encryption_state.index_check` while a `keys reindex` is under way (or was interrupted),
/// followed by the new key's check value.
const REINDEXING: &str = "reindexing:";

impl Store {
    /// What every process does before it reads or writes sealed values:
    ///
    /// - refuses an index key other than the one the blind indexes were made with;
    /// - refuses to start when a key that sealed stored values is not configured, naming it
    ///   and how many values need it;
    /// - records its active key as in use;
    /// - encrypts a database from before encryption (once; resumable), reporting progress.
    pub async fn prepare_encryption(
        &self,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(), StoreError> {
        // The first start records its index key's check value; a second process starting at
        // the same moment with another index key finds that one when it reads it back.
        sqlx::query(
            "UPDATE encryption_state SET index_check = $1 WHERE id = 1 AND index_check IS NULL",
        )
        .bind(self.keys.index_check())
        .execute(&self.write)
        .await?;
        let upgraded = self.accept_keys().await?;
        sqlx::query(
            "INSERT INTO encryption_keys (key_id, first_used, key_check) VALUES ($1, $2, $3)
             ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(self.keys.active().to_owned())
        .bind(self.now())
        .bind(
            self.keys
                .seal(Field::KeyCheck, self.keys.active(), KEY_CHECK),
        )
        .execute(&self.write)
        .await?;
        if !upgraded {
            let usage = self.walk(Walk::Reseal, PAGE, progress).await?;
            if usage.unreadable > 0 {
                return Err(StoreError::Config(format!(
                    "{} stored value(s) could not be opened while encrypting the database (each is named in the log)",
                    usage.unreadable
                )));
            }
            sqlx::query("UPDATE encryption_state SET upgraded = 1 WHERE id = 1")
                .execute(&self.write)
                .await?;
            if self.backend == crate::Backend::Sqlite && usage.rewritten > 0 {
                // The rewritten pages are in the WAL, and the file still holds the plaintext
                // ones until a checkpoint copies them over; pages freed before `secure_delete`
                // was on may hold older plaintext still. A checkpoint, then VACUUM (which
                // rewrites the file without free pages), then a checkpoint of that.
                for statement in [
                    "PRAGMA wal_checkpoint(TRUNCATE)",
                    "VACUUM",
                    "PRAGMA wal_checkpoint(TRUNCATE)",
                ] {
                    sqlx::query(statement).execute(&self.write).await?;
                }
            }
            if usage.rewritten > 0 {
                tracing::info!(
                    values = usage.rewritten,
                    key = self.keys.active(),
                    "encrypted the values stored before encryption"
                );
            }
        }
        Ok(())
    }

    /// The checks of [`Store::prepare_encryption`] without its writes, for `check`: the same
    /// refusals, as errors. `Some(n)` for a database from before encryption, whose `n` values
    /// in plaintext the next start encrypts (a read of every encrypted column); `None` once
    /// it is encrypted. A database no process has started on yet has no index key recorded:
    /// the first start records its own.
    pub async fn verify_encryption(&self) -> Result<Option<u64>, StoreError> {
        if self.accept_keys().await? {
            return Ok(None);
        }
        Ok(Some(self.walk(Walk::Count, PAGE, &|_| {}).await?.plaintext))
    }

    /// Refuses keys that do not match what the database was sealed and indexed with; whether
    /// the database is encrypted (`false`: from before encryption). Reads only.
    async fn accept_keys(&self) -> Result<bool, StoreError> {
        let state = sqlx::query("SELECT upgraded, index_check FROM encryption_state WHERE id = 1")
            .fetch_one(&self.write)
            .await?;
        let upgraded: i64 = state.try_get("upgraded")?;
        let check: Option<String> = state.try_get("index_check")?;
        if check.as_deref().is_some_and(|c| c.starts_with(REINDEXING)) {
            return Err(StoreError::Config(
                "a `keys reindex` was interrupted: some blind-index entries are made under the new \
                 index key and some under the old one, so neither key is accepted. Run \
                 `esim-courier keys reindex` again with the new index_key; a start is accepted once \
                 it has finished"
                    .into(),
            ));
        }
        if check
            .as_deref()
            .is_some_and(|c| c != self.keys.index_check().as_str())
        {
            return Err(StoreError::Config(
                "encryption.index_key is not the key this database's blind indexes were made with: \
                 configure the index key it was started with before, or stop every process and run \
                 `esim-courier keys reindex` to make them again under the new one"
                    .into(),
            ));
        }
        let recorded = sqlx::query("SELECT key_id, key_check FROM encryption_keys ORDER BY key_id")
            .fetch_all(&self.read)
            .await?;
        let mut missing = Vec::new();
        for r in &recorded {
            let id: String = r.try_get("key_id")?;
            if !self.keys.has(&id) {
                missing.push(id);
                continue;
            }
            // The key's check value, sealed by that key when it was first used: configured
            // under its id but with other key material, it does not open.
            if let Some(sealed) = r.try_get::<Option<String>, _>("key_check")? {
                if self.keys.open(Field::KeyCheck, &id, &sealed).is_err() {
                    return Err(StoreError::Config(format!(
                        "encryption key {id:?} is not the key that encrypted this database's values \
                         (its check value does not decrypt): configure the key {id:?} was first used with"
                    )));
                }
            }
        }
        if !missing.is_empty() {
            let usage = self.walk(Walk::Count, PAGE, &|_| {}).await?;
            let named: Vec<String> = missing
                .iter()
                .filter_map(|id| {
                    usage.by_key.get(id).map(|n| {
                        format!(
                            "{n} stored value(s) are sealed with key {id:?}, which is not configured: \
                             add it to [encryption] keys (by environment: ESIM_COURIER__ENCRYPTION__KEYS__{})",
                            id.to_uppercase()
                        )
                    })
                })
                .collect();
            if !named.is_empty() {
                return Err(StoreError::Config(named.join("; ")));
            }
            // Recorded, but no value needs it now: `keys rotate` takes it off the record.
        }
        Ok(upgraded != 0)
    }

    /// How many stored values each key sealed (a read of every encrypted column).
    pub async fn key_usage(&self) -> Result<KeyUsage, StoreError> {
        self.walk(Walk::Count, PAGE, &|_| {}).await
    }

    /// Re-seals every stored value with the active key (`keys rotate`), in pages, safe beside
    /// running processes and resumable after a kill. Keys that no value needs any more are
    /// removed from the keys in use. Returns what the data holds afterwards.
    pub async fn rotate_keys(
        &self,
        batch: u32,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<KeyUsage, StoreError> {
        let batch = i64::from(batch.max(1));
        self.walk(Walk::Reseal, batch, progress).await?;
        // A second read counts what the data holds now, values `serve` wrote meanwhile
        // included.
        let usage = self.walk(Walk::Count, PAGE, &|_| {}).await?;
        // Off the record: the keys no value needs any more. (A replica still running with
        // such a key active would seal with it again: rotate once every replica runs with
        // the new active key.)
        let recorded: Vec<String> = sqlx::query("SELECT key_id FROM encryption_keys")
            .fetch_all(&self.read)
            .await?
            .iter()
            .map(|r| r.try_get("key_id"))
            .collect::<Result<_, _>>()?;
        for id in recorded {
            if id != self.keys.active() && !usage.by_key.contains_key(&id) {
                sqlx::query("DELETE FROM encryption_keys WHERE key_id = $1")
                    .bind(id)
                    .execute(&self.write)
                    .await?;
            }
        }
        Ok(usage)
    }

    /// Walks every encrypted column.
    async fn walk(
        &self,
        walk: Walk,
        page: i64,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<KeyUsage, StoreError> {
        let mut usage = KeyUsage::default();
        if walk == Walk::Reseal {
            self.rekey_legacy_fingerprints(progress).await?;
        }
        for field in Field::ALL {
            self.walk_field(field, walk, page, &mut usage, progress)
                .await?;
        }
        Ok(usage)
    }

    async fn walk_field(
        &self,
        field: Field,
        walk: Walk,
        page: i64,
        usage: &mut KeyUsage,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(), StoreError> {
        let (table, column) = field.column();
        let key = field.key_sql();
        // An erased placement's address is the empty text (the column cannot be NULL): no
        // value, nothing to seal. (The body is bytes: the comparison is for text columns.)
        let erased = if field == Field::ReceiptBody {
            String::new()
        } else {
            format!(" AND {column} <> ''")
        };
        let total: i64 = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {table} WHERE {column} IS NOT NULL{erased}"
        )))
        .fetch_one(&self.read)
        .await?
        .try_get("n")?;
        let total = u64::try_from(total).unwrap_or(0);
        let select = format!(
            "SELECT {key} AS k, {row} AS r, {column} AS v FROM {table}
              WHERE {column} IS NOT NULL{erased} AND {key} > $1 ORDER BY {key} LIMIT $2",
            row = field.row_sql()
        );
        let update = match field {
            Field::OrderEmail | Field::PlacementEmail => format!(
                "UPDATE {table} SET {column} = $1, customer_email_index = COALESCE($4, customer_email_index)
                  WHERE {key} = $2 AND {column} = $3"
            ),
            _ => format!("UPDATE {table} SET {column} = $1 WHERE {key} = $2 AND {column} = $3"),
        };
        let mut cursor = if key == "id" {
            Cursor::Id(i64::MIN)
        } else {
            Cursor::Text(String::new())
        };
        let mut done = 0u64;
        loop {
            let query = sqlx::query(AssertSqlSafe(select.clone()));
            let query = match &cursor {
                Cursor::Id(id) => query.bind(*id),
                Cursor::Text(t) => query.bind(t.clone()),
            };
            let rows = query.bind(page).fetch_all(&self.read).await?;
            let Some(last) = rows.last() else { break };
            cursor = match cursor {
                Cursor::Id(_) => Cursor::Id(last.try_get("k")?),
                Cursor::Text(_) => Cursor::Text(last.try_get("k")?),
            };
            let mut changes = Vec::new();
            for r in &rows {
                if let Some(change) = self.visit(field, walk, r, usage)? {
                    changes.push(change);
                }
            }
            if !changes.is_empty() {
                let mut tx = self.begin_write().await?;
                for (k, old, new, index) in changes {
                    let q = sqlx::query(AssertSqlSafe(update.clone()));
                    // The body is bytes (BLOB, BYTEA), the other columns text.
                    let q = if field == Field::ReceiptBody {
                        q.bind(new.into_bytes())
                    } else {
                        q.bind(new)
                    };
                    let q = match k {
                        Cursor::Id(id) => q.bind(id),
                        Cursor::Text(t) => q.bind(t),
                    };
                    let q = if field == Field::ReceiptBody {
                        q.bind(old)
                    } else {
                        q.bind(String::from_utf8(old).unwrap_or_default())
                    };
                    let q = match field {
                        Field::OrderEmail | Field::PlacementEmail => q.bind(index),
                        _ => q,
                    };
                    let rewritten = q.execute(&mut *tx).await?.rows_affected();
                    usage.rewritten += rewritten;
                }
                tx.commit().await?;
            }
            done += rows.len() as u64;
            progress(Progress { field, done, total });
            if rows.len() < usize::try_from(page).unwrap_or(usize::MAX) {
                break;
            }
        }
        Ok(())
    }

    /// Looks at one value: counts it, and says how to rewrite it when it must be: the row's
    /// key, the value read, the value to write, and the blind index of an address sealed
    /// from plaintext.
    #[allow(clippy::type_complexity)]
    fn visit(
        &self,
        field: Field,
        walk: Walk,
        r: &AnyRow,
        usage: &mut KeyUsage,
    ) -> Result<Option<(Cursor, Vec<u8>, String, Option<String>)>, StoreError> {
        let row: String = r.try_get("r")?;
        let stored: Vec<u8> = if field == Field::ReceiptBody {
            r.try_get("v")?
        } else {
            r.try_get::<String, _>("v")?.into_bytes()
        };
        let key = if field.key_sql() == "id" {
            Cursor::Id(r.try_get("k")?)
        } else {
            Cursor::Text(r.try_get("k")?)
        };
        let sealed = std::str::from_utf8(&stored)
            .ok()
            .filter(|s| crypto::is_sealed(s));
        let (plaintext, index) = match sealed {
            Some(text) => {
                let envelope = match crypto::parse(text) {
                    Ok(e) => e,
                    Err(reason) => {
                        usage.unreadable += 1;
                        tracing::error!(%field, row, reason, "a stored value cannot be decrypted");
                        return Ok(None);
                    }
                };
                let id = envelope.key_id().to_owned();
                if walk == Walk::Count || id == self.keys.active() {
                    *usage.by_key.entry(id).or_default() += 1;
                    return Ok(None);
                }
                match self.keys.open(field, &row, text) {
                    Ok(plain) => (plain, None),
                    Err(e) => {
                        *usage.by_key.entry(id).or_default() += 1;
                        usage.unreadable += 1;
                        tracing::error!(error = %e, "a stored value cannot be decrypted");
                        return Ok(None);
                    }
                }
            }
            None => {
                usage.plaintext += 1;
                if walk == Walk::Count {
                    return Ok(None);
                }
                let index = matches!(field, Field::OrderEmail | Field::PlacementEmail)
                    .then(|| self.keys.email_index(&String::from_utf8_lossy(&stored)));
                (stored.clone(), index)
            }
        };
        let new = self.keys.seal(field, &row, &plaintext);
        *usage
            .by_key
            .entry(self.keys.active().to_owned())
            .or_default() += 1;
        Ok(Some((key, stored, new, index)))
    }

    /// Before encryption an event's fingerprint was an unkeyed SHA-256 digest: it becomes the
    /// keyed one (which the event's sealed code is bound to), together with the code, which
    /// is then still plaintext and is sealed for the event's new identity.
    async fn rekey_legacy_fingerprints(
        &self,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<(), StoreError> {
        let mut after = i64::MIN;
        let mut done = 0u64;
        loop {
            let rows = sqlx::query(
                "SELECT id, order_no, fingerprint, lpa FROM order_events
                  WHERE id > $1 AND fingerprint NOT LIKE 'h%' ORDER BY id LIMIT $2",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(&self.read)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("id")?;
            let mut tx = self.begin_write().await?;
            for r in &rows {
                let id: i64 = r.try_get("id")?;
                let order_no: String = r.try_get("order_no")?;
                let digest: String = r.try_get("fingerprint")?;
                let lpa: Option<String> = r.try_get("lpa")?;
                let fingerprint = self.keys.fingerprint(&digest);
                let lpa = lpa.map(|l| {
                    if crypto::is_sealed(&l) {
                        l
                    } else {
                        self.keys.seal_str(
                            Field::EventCode,
                            &event_row(&order_no, &fingerprint),
                            &l,
                        )
                    }
                });
                sqlx::query(
                    "UPDATE order_events SET fingerprint = $1, lpa = $2 WHERE id = $3 AND fingerprint = $4",
                )
                .bind(fingerprint)
                .bind(lpa)
                .bind(id)
                .bind(digest)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            done += rows.len() as u64;
            progress(Progress {
                field: Field::EventCode,
                done,
                total: done,
            });
        }
        Ok(())
    }
}

/// What `keys reindex` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reindexed {
    /// Event fingerprints keyed again (their sealed codes re-sealed for the new identity).
    pub events: u64,
    /// Addresses indexed again (orders and placements).
    pub addresses: u64,
    /// Events whose code was erased (retention, erasure): their fingerprint cannot be
    /// recomputed and is left as it was; a provider retry of such an event, long after,
    /// would be recorded again instead of answered `duplicate`.
    pub kept: u64,
}

impl Store {
    /// Makes every blind-index entry again under this store's index key (`keys reindex`):
    /// the address index of orders and placements, and event fingerprints (from the stored
    /// result, ICCID and code; without a stored code, from the receipt's body). The database
    /// accepts the new index key only once all are done, and the old one no more once this
    /// has begun (a run killed half-way is run again). Every process must be stopped
    /// meanwhile: one still running with the old key would write entries the new one does
    /// not match.
    pub async fn reindex(
        &self,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<Reindexed, StoreError> {
        let upgraded: i64 = sqlx::query("SELECT upgraded FROM encryption_state WHERE id = 1")
            .fetch_one(&self.read)
            .await?
            .try_get("upgraded")?;
        if upgraded == 0 {
            return Err(StoreError::Config(
                "this database still holds values from before encryption: start esim-courier once with its old index key first".into(),
            ));
        }
        // From the first entry made again until the last, neither key matches every entry: no
        // start is accepted meanwhile, nor after an interruption until a run finishes.
        sqlx::query("UPDATE encryption_state SET index_check = $1 WHERE id = 1")
            .bind(format!("{REINDEXING}{}", self.keys.index_check()))
            .execute(&self.write)
            .await?;
        let mut done = Reindexed::default();
        for (table, key, field) in [
            ("orders", "order_no", Field::OrderEmail),
            ("placements", "reference", Field::PlacementEmail),
        ] {
            let mut after = String::new();
            loop {
                let rows = sqlx::query(AssertSqlSafe(format!(
                    "SELECT {key} AS k, customer_email FROM {table}
                      WHERE {key} > $1 AND customer_email IS NOT NULL AND customer_email <> ''
                      ORDER BY {key} LIMIT $2"
                )))
                .bind(after.clone())
                .bind(PAGE)
                .fetch_all(&self.read)
                .await?;
                let Some(last) = rows.last() else { break };
                after = last.try_get("k")?;
                let mut tx = self.begin_write().await?;
                for r in &rows {
                    let k: String = r.try_get("k")?;
                    let email = self.keys.open_str(
                        field,
                        &k,
                        &r.try_get::<String, _>("customer_email")?,
                    )?;
                    sqlx::query(AssertSqlSafe(format!(
                        "UPDATE {table} SET customer_email_index = $1 WHERE {key} = $2"
                    )))
                    .bind(self.keys.email_index(&email))
                    .bind(k)
                    .execute(&mut *tx)
                    .await?;
                    done.addresses += 1;
                }
                tx.commit().await?;
                progress(Progress {
                    field,
                    done: done.addresses,
                    total: done.addresses,
                });
            }
        }
        let mut after = i64::MIN;
        loop {
            let rows = sqlx::query(
                "SELECT e.id, e.order_no, e.result, e.iccid, e.fingerprint, e.lpa, e.lpa_masked,
                        r.order_no AS receipt_order, r.received_at AS receipt_at, r.body, r.redacted_at
                   FROM order_events e JOIN webhook_receipts r ON r.id = e.receipt_id
                  WHERE e.id > $1 ORDER BY e.id LIMIT $2",
            )
            .bind(after)
            .bind(PAGE)
            .fetch_all(&self.read)
            .await?;
            let Some(last) = rows.last() else { break };
            after = last.try_get("id")?;
            let mut tx = self.begin_write().await?;
            for r in &rows {
                let order_no: String = r.try_get("order_no")?;
                let old: String = r.try_get("fingerprint")?;
                let lpa = r
                    .try_get::<Option<String>, _>("lpa")?
                    .map(|l| {
                        self.keys
                            .open_str(Field::EventCode, &event_row(&order_no, &old), &l)
                    })
                    .transpose()?;
                let digest = match &lpa {
                    Some(code) => esim_courier_core::domain::event_digest(
                        &r.try_get::<String, _>("result")?,
                        &r.try_get::<String, _>("iccid")?,
                        code,
                    ),
                    None if r.try_get::<Option<String>, _>("lpa_masked")?.is_some() => {
                        done.kept += 1;
                        continue;
                    }
                    None => self.digest_from_receipt(r)?,
                };
                let fingerprint = self.keys.fingerprint(&digest);
                let sealed = lpa.map(|code| {
                    self.keys
                        .seal_str(Field::EventCode, &event_row(&order_no, &fingerprint), &code)
                });
                sqlx::query("UPDATE order_events SET fingerprint = $1, lpa = $2 WHERE id = $3")
                    .bind(fingerprint)
                    .bind(sealed)
                    .bind(r.try_get::<i64, _>("id")?)
                    .execute(&mut *tx)
                    .await?;
                done.events += 1;
            }
            tx.commit().await?;
            progress(Progress {
                field: Field::EventCode,
                done: done.events,
                total: done.events,
            });
        }
        sqlx::query("UPDATE encryption_state SET index_check = $1 WHERE id = 1")
            .bind(self.keys.index_check())
            .execute(&self.write)
            .await?;
        Ok(done)
    }

    /// The digest of an event stored without a usable code (a FAILED order, a code that did
    /// not parse), from its receipt: a webhook body parsed as at intake; otherwise (a
    /// provider's record, a redacted body) its result and ICCID with no code, as such an
    /// event was fingerprinted.
    fn digest_from_receipt(&self, r: &sqlx::any::AnyRow) -> Result<String, StoreError> {
        let result: String = r.try_get("result")?;
        let iccid: String = r.try_get("iccid")?;
        if r.try_get::<Option<i64>, _>("redacted_at")?.is_none() {
            let order: Option<String> = r.try_get("receipt_order")?;
            let row = crate::crypto::receipt_row(order.as_deref(), r.try_get("receipt_at")?);
            let body: Vec<u8> = r.try_get("body")?;
            let body = String::from_utf8(body).unwrap_or_default();
            let body = self.keys.open(Field::ReceiptBody, &row, &body)?;
            if let Ok(event) = esim_courier_core::WebhookPayload::from_slice(&body)
                .and_then(|p| p.into_event(&esim_courier_core::CurrencyTable::default()))
            {
                if event.result.as_str() == result {
                    return Ok(event.fingerprint().to_owned());
                }
            }
        }
        Ok(esim_courier_core::domain::event_digest(&result, &iccid, ""))
    }
}
