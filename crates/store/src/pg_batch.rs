//! PostgreSQL: writes that arrive together are written together.
//!
//! PostgreSQL already shares a WAL flush among concurrent commits, but each write in a
//! statement and a commit of its own still pays the statement's executor start-up, its
//! commit, the round trip and a turn at the connection pool. Under load those fixed costs
//! took a large share of the server's CPU, which the two cores of a small machine share
//! with the service (BENCHMARKS.md, "PostgreSQL: one statement for the webhooks that arrive
//! together").
//!
//! A [`BatchWriter`] runs a few writer tasks. Each takes every write queued when it is free
//! (up to a batch) and writes them in one statement ([`Batched::write_many`]): one commit.
//! A write that finds a writer idle goes at once, alone ([`Batched::write_one`]), so a quiet
//! service waits for nobody. Each caller hears only after the commit that holds its write,
//! and only its own result. A batch the database refuses for a reason other than being
//! unavailable is written again one write at a time, so that one bad write fails alone.
//! SQLite's writes share commits through its own group-commit writer (group_commit.rs).

use std::future::Future;
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::StoreError;

/// A kind of write that can be batched.
pub(crate) trait Batched: Send + Sync + Sized + 'static {
    /// What its caller hears.
    type Out: Send + 'static;
    /// What the writes are, for the log.
    const WHAT: &'static str;
    /// The most writes one statement takes.
    const MAX_BATCH: usize;

    /// One write, in a statement and a commit of its own.
    fn write_one(
        pool: &AnyPool,
        row: &Self,
    ) -> impl Future<Output = Result<Self::Out, StoreError>> + Send;

    /// Several writes: one result per row, in their order. An `Err` means that nothing was
    /// written (the rows are then written again one by one, or all get the error); a write
    /// that may have been written must get its own result in the `Ok`.
    fn write_many(
        pool: &AnyPool,
        rows: &[&Self],
    ) -> impl Future<Output = Result<Vec<Result<Self::Out, StoreError>>, StoreError>> + Send;
}

type Reply<R> = oneshot::Sender<Result<<R as Batched>::Out, StoreError>>;

enum Message<R: Batched> {
    Write(R, Reply<R>),
    /// Write what came before, then stop this writer.
    Close(oneshot::Sender<()>),
}

/// The handle of a set of writer tasks. They stop on [`BatchWriter::close`], or when the
/// last handle is dropped.
pub(crate) struct BatchWriter<R: Batched> {
    tx: mpsc::Sender<Message<R>>,
    writers: usize,
}

impl<R: Batched> Clone for BatchWriter<R> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            writers: self.writers,
        }
    }
}

impl<R: Batched> std::fmt::Debug for BatchWriter<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BatchWriter({}, {} writers)", R::WHAT, self.writers)
    }
}

impl<R: Batched> BatchWriter<R> {
    /// Starts `writers` writer tasks on the current runtime, writing through `pool`.
    pub(crate) fn start(pool: AnyPool, writers: usize) -> Self {
        let writers = writers.max(1);
        let (tx, rx) = mpsc::channel(4 * R::MAX_BATCH * writers);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..writers {
            tokio::spawn(run(pool.clone(), Arc::clone(&rx)));
        }
        Self { tx, writers }
    }

    /// Writes `row`, with any others queued meanwhile; returns its own result.
    pub(crate) async fn write(&self, row: R) -> Result<R::Out, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Message::Write(row, reply))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Writes what is queued, then stops the writers.
    pub(crate) async fn close(&self) {
        let mut closed = Vec::with_capacity(self.writers);
        for _ in 0..self.writers {
            let (done, stopped) = oneshot::channel();
            if self.tx.send(Message::Close(done)).await.is_err() {
                return; // the writers had already stopped
            }
            closed.push(stopped);
        }
        for stopped in closed {
            let _ = stopped.await;
        }
    }
}

async fn run<R: Batched>(pool: AnyPool, rx: Arc<Mutex<mpsc::Receiver<Message<R>>>>) {
    let mut messages = Vec::with_capacity(R::MAX_BATCH);
    loop {
        // One writer waits for work at a time; the others are writing meanwhile.
        if rx.lock().await.recv_many(&mut messages, R::MAX_BATCH).await == 0 {
            return; // every handle is gone
        }
        let mut batch = Vec::with_capacity(messages.len());
        let mut closes = Vec::new();
        for message in messages.drain(..) {
            match message {
                Message::Write(row, reply) => batch.push((row, reply)),
                Message::Close(done) => closes.push(done),
            }
        }
        if !batch.is_empty() {
            write_batch(&pool, batch).await;
        }
        if !closes.is_empty() {
            for done in closes {
                let _ = done.send(());
            }
            return;
        }
    }
}

/// Writes `batch` and answers each caller.
async fn write_batch<R: Batched>(pool: &AnyPool, mut batch: Vec<(R, Reply<R>)>) {
    if batch.len() == 1 {
        if let Some((row, reply)) = batch.pop() {
            let _ = reply.send(R::write_one(pool, &row).await);
        }
        return;
    }
    let rows: Vec<&R> = batch.iter().map(|(row, _)| row).collect();
    let written = R::write_many(pool, &rows).await;
    let written = match written {
        Ok(outs) if outs.len() == batch.len() => outs,
        Ok(outs) => {
            let e = StoreError::Corrupt(format!(
                "a batch of {} {} gave {} results",
                batch.len(),
                R::WHAT,
                outs.len()
            ));
            for (_, reply) in batch {
                let _ = reply.send(Err(e.clone_for_caller()));
            }
            return;
        }
        // A deadlock or serialization conflict is not the database being away: the batch
        // met another transaction's rows (an erasure marking the same jobs, a stale lease's
        // outcome), and each write on its own, below, waits for it instead.
        Err(e) if e.is_unavailable() && !e.is_lock_conflict() => {
            for (_, reply) in batch {
                let _ = reply.send(Err(e.clone_for_caller()));
            }
            return;
        }
        Err(e) => {
            tracing::warn!(
                writes = batch.len(),
                error = %e.clone_for_caller(),
                "a batch of {} was refused; writing them one at a time",
                R::WHAT
            );
            for (row, reply) in batch {
                let _ = reply.send(R::write_one(pool, &row).await);
            }
            return;
        }
    };
    for ((_, reply), out) in batch.into_iter().zip(written) {
        let _ = reply.send(out);
    }
}

/// Writes `rows` one at a time, each with its own result: a batch its statement cannot take.
pub(crate) async fn one_at_a_time<R: Batched>(
    pool: &AnyPool,
    rows: &[&R],
) -> Vec<Result<R::Out, StoreError>> {
    let mut written = Vec::with_capacity(rows.len());
    for row in rows {
        written.push(R::write_one(pool, row).await);
    }
    written
}

/// The rows a batched statement returned, each put at its write's position (its `n` column,
/// from 0) among `len` writes: `None` where none came back.
pub(crate) fn by_position<T>(
    returned: &[AnyRow],
    len: usize,
    value: impl Fn(&AnyRow) -> Result<T, StoreError>,
) -> Result<Vec<Option<T>>, StoreError> {
    let mut placed: Vec<Option<T>> = std::iter::repeat_with(|| None).take(len).collect();
    for r in returned {
        let n: i64 = r.try_get("n")?;
        let slot = usize::try_from(n)
            .ok()
            .and_then(|n| placed.get_mut(n))
            .ok_or_else(|| StoreError::Corrupt(format!("a batched statement returned row {n}")))?;
        *slot = Some(value(r)?);
    }
    Ok(placed)
}

/// The `VALUES` rows of a batched statement: row `n` is `(n, $a::t1, $b::t2, ...)` with the
/// types of `types`, its parameters following the previous row's.
pub(crate) fn values_rows(rows: usize, types: &[&str]) -> String {
    (0..rows)
        .map(|n| {
            let params: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, ty)| format!("${}::{ty}", n * types.len() + i + 1))
                .collect();
            format!("({n}, {})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_binds_its_own_parameters() {
        let sql = values_rows(2, &["text", "bigint", "text"]);
        assert_eq!(
            sql,
            "(0, $1::text, $2::bigint, $3::text), (1, $4::text, $5::bigint, $6::text)"
        );
    }
}
