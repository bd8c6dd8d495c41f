//! Group commit for SQLite: concurrent writes share one transaction and one WAL sync.
//!
//! With `synchronous=FULL`, every commit waits for the disk. Committing webhooks (and the
//! dispatcher's delivery outcomes) one by one caps the service at the disk's sync rate;
//! committing the ones that arrived together in a single transaction divides that cost among
//! them while keeping "2xx only after commit": each caller is answered after the commit that
//! includes its write. Each write runs in its own savepoint, so one failing write does not
//! fail its neighbours.

use esim_courier_core::OrderEvent;
use sqlx::{Any, AnyPool, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::intake::{intake_in, OwnedReceipt, Plan};
use crate::outbox::{finish_attempt, Attempt, ClaimedJob, Finish};
use crate::{Backend, IntakeOutcome, StoreError};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 128;

/// One write, and where its result goes.
enum Work {
    Intake {
        receipt: OwnedReceipt,
        event: OrderEvent,
        plan: Plan,
        reply: oneshot::Sender<Result<IntakeOutcome, StoreError>>,
    },
    Outcome {
        job: ClaimedJob,
        worker: String,
        started_at: i64,
        finished_at: i64,
        finish: Finish,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    },
}

/// A write done inside the batch, answered once the batch is committed.
enum Done {
    Intake(
        oneshot::Sender<Result<IntakeOutcome, StoreError>>,
        Result<IntakeOutcome, StoreError>,
    ),
    Outcome(
        oneshot::Sender<Result<bool, StoreError>>,
        Result<bool, StoreError>,
    ),
}

impl Done {
    fn answer(self, commit: Result<(), &StoreError>) {
        match (self, commit) {
            (Done::Intake(reply, result), Ok(())) => drop(reply.send(result)),
            (Done::Outcome(reply, result), Ok(())) => drop(reply.send(result)),
            (Done::Intake(reply, _), Err(e)) => drop(reply.send(Err(e.clone_for_caller()))),
            (Done::Outcome(reply, _), Err(e)) => drop(reply.send(Err(e.clone_for_caller()))),
        }
    }
}

/// The handle writes are submitted through.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Work>,
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

    pub(crate) async fn intake(
        &self,
        receipt: OwnedReceipt,
        event: OrderEvent,
        plan: Plan,
    ) -> Result<IntakeOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Work::Intake {
            receipt,
            event,
            plan,
            reply,
        })
        .await?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    pub(crate) async fn outcome(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        finish: Finish,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let work = Work::Outcome {
            job: job.clone(),
            worker: attempt.worker.to_owned(),
            started_at: attempt.started_at,
            finished_at: attempt.finished_at,
            finish,
            reply,
        };
        self.send(work).await?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    async fn send(&self, work: Work) -> Result<(), StoreError> {
        self.tx
            .send(work)
            .await
            .map_err(|_| StoreError::WriterStopped)
    }
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Work>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit_batch(&pool, &mut batch).await;
    }
}

async fn commit_batch(pool: &AnyPool, batch: &mut Vec<Work>) {
    let mut tx = match pool.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            let e = StoreError::from(e);
            for work in batch.drain(..) {
                pending(work).answer(Err(&e));
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    for work in batch.drain(..) {
        done.push(apply(&mut tx, work).await);
    }
    match tx.commit().await {
        Ok(()) => done.into_iter().for_each(|d| d.answer(Ok(()))),
        // Nothing of this batch is durable: every caller hears of it.
        Err(e) => {
            let e = StoreError::from(e);
            done.into_iter().for_each(|d| d.answer(Err(&e)));
        }
    }
}

/// Runs one write in its own savepoint.
async fn apply(tx: &mut Transaction<'static, Any>, work: Work) -> Done {
    let mut savepoint = match sqlx::Connection::begin(&mut **tx).await {
        Ok(sp) => sp,
        Err(e) => {
            let e = StoreError::from(e);
            let d = pending(work);
            return match d {
                Done::Intake(reply, _) => Done::Intake(reply, Err(e)),
                Done::Outcome(reply, _) => Done::Outcome(reply, Err(e)),
            };
        }
    };
    let (done, ok) = match work {
        Work::Intake {
            receipt,
            event,
            plan,
            reply,
        } => {
            let result = intake_in(&mut savepoint, Backend::Sqlite, &receipt, &event, plan).await;
            let ok = result.is_ok();
            (Done::Intake(reply, result), ok)
        }
        Work::Outcome {
            job,
            worker,
            started_at,
            finished_at,
            finish,
            reply,
        } => {
            let attempt = Attempt {
                worker: &worker,
                started_at,
                finished_at,
            };
            let result = finish_attempt(&mut savepoint, &job, &attempt, &finish).await;
            let ok = result.is_ok();
            (Done::Outcome(reply, result), ok)
        }
    };
    // Keep this write, or undo it alone; the others in the batch stay either way.
    let closed = if ok {
        savepoint.commit().await
    } else {
        savepoint.rollback().await
    };
    match (done, closed) {
        (d, Ok(())) => d,
        (Done::Intake(reply, _), Err(e)) => Done::Intake(reply, Err(e.into())),
        (Done::Outcome(reply, _), Err(e)) => Done::Outcome(reply, Err(e.into())),
    }
}

/// A write that never ran, to be answered with the batch's failure.
fn pending(work: Work) -> Done {
    match work {
        Work::Intake { reply, .. } => Done::Intake(reply, Err(StoreError::WriterStopped)),
        Work::Outcome { reply, .. } => Done::Outcome(reply, Err(StoreError::WriterStopped)),
    }
}
