//! Group commit for SQLite: concurrent intakes share one transaction and one WAL sync.
//!
//! With `synchronous=FULL`, every commit waits for the disk. Committing webhooks one by one
//! caps intake at the disk's sync rate; committing the ones that arrived together in a
//! single transaction divides that cost among them while keeping "2xx only after commit":
//! each caller is answered after the commit that includes its webhook. Each intake runs in
//! its own savepoint, so one failing intake does not fail its neighbours.

use esim_courier_core::OrderEvent;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::intake::{intake_in, OwnedReceipt, Plan};
use crate::{Backend, IntakeOutcome, StoreError};

/// The most intakes one transaction takes.
const MAX_BATCH: usize = 128;

struct Request {
    receipt: OwnedReceipt,
    event: OrderEvent,
    plan: Plan,
    reply: oneshot::Sender<Result<IntakeOutcome, StoreError>>,
}

/// The handle intakes are submitted through.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batcher")
    }
}

impl Batcher {
    /// Starts the writer task on `pool` (the single SQLite writer connection).
    pub(crate) fn start(pool: AnyPool) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(pool, rx));
        Self { tx }
    }

    pub(crate) async fn submit(
        &self,
        receipt: OwnedReceipt,
        event: OrderEvent,
        plan: Plan,
    ) -> Result<IntakeOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request {
                receipt,
                event,
                plan,
                reply,
            })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Request>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_batch(&pool, &mut batch).await;
    }
}

async fn commit_batch(pool: &AnyPool, batch: &mut Vec<Request>) {
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let e = StoreError::from(e);
            for r in batch.drain(..) {
                let _ = r.reply.send(Err(e.clone_for_caller()));
            }
            return;
        }
    };
    let mut results = Vec::with_capacity(batch.len());
    for r in batch.drain(..) {
        let outcome = match sqlx::Connection::begin(&mut *tx).await {
            Ok(mut savepoint) => match intake_in(
                &mut savepoint,
                Backend::Sqlite,
                &r.receipt,
                &r.event,
                r.plan,
            )
            .await
            {
                Ok(outcome) => savepoint
                    .commit()
                    .await
                    .map(|()| outcome)
                    .map_err(StoreError::from),
                Err(e) => {
                    // Undo this intake only; the others in the batch stay.
                    let _ = savepoint.rollback().await;
                    Err(e)
                }
            },
            Err(e) => Err(StoreError::from(e)),
        };
        results.push((r.reply, outcome));
    }
    match tx.commit().await {
        Ok(()) => {
            for (reply, outcome) in results {
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            // Nothing of this batch is durable: every caller must answer 503.
            let e = StoreError::from(e);
            for (reply, _) in results {
                let _ = reply.send(Err(e.clone_for_caller()));
            }
        }
    }
}
