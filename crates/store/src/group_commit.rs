//! Group commit for SQLite: concurrent writes share one transaction and one WAL sync.
//!
//! With `synchronous=FULL`, every commit waits for the disk. Committing webhooks (and the
//! dispatcher's claims and delivery outcomes) one by one caps the service at the disk's sync
//! rate; committing the ones that arrived together in a single transaction divides that cost
//! among them while keeping "2xx only after commit": each caller is answered after the commit
//! that includes its write. One failing write does not fail its neighbours: a batch in which
//! a write fails runs again with each write in its own savepoint ([`commit_batch`]).
//!
//! The writer is a thread of its own that owns a rusqlite connection and runs the batch's
//! statements itself, prepared once and cached. sqlx (still used for reads and the rarer
//! writes) runs each SQLite statement on a worker thread and waits for its answer: one
//! cross-thread round trip per statement, about 100 µs on a small VM, and an intake has
//! eight of them. Here a write costs two hand-offs whatever its statement count: submitting
//! it and hearing the answer. BENCHMARKS.md has the measurements.
//!
//! WAL checkpoints (copying committed pages into the database file, then syncing it) run on
//! a thread of their own, `sqlite-checkpoint`, nudged after each commit. SQLite's automatic
//! checkpoint would run inside the writer's commit, every 1,000 pages: the batch that
//! triggered it, and every write queued behind it, waited for the database file's sync, which
//! on a busy virtual disk took up to 0.2 s (BENCHMARKS.md, "The stalls"). The writer still
//! checkpoints by itself if the WAL ever reaches [`WRITER_CHECKPOINT_PAGES`], so the WAL stays
//! bounded even if the checkpoint thread cannot keep up.
//!
//! Under steady load that writer checkpoint is the only one that lets the WAL start over: the
//! WAL is reused from its beginning only once all of it is in the database file and that file
//! is synced, and SQLite syncs the database file only at the end of a checkpoint that copied
//! the whole WAL, which a background checkpoint never does while commits keep arriving. So
//! the writer's checkpoint used to flush every page copied since the WAL last started over:
//! 4.3–4.8 ms, four times a second at 20,000 intakes a second, while every write waited. The
//! checkpoint thread therefore syncs the database file itself after each checkpoint
//! ([`checkpoint_once`]), so the writer's checkpoint finds little left to flush
//! (BENCHMARKS.md, "SQLite: the WAL starting over").

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use esim_courier_core::{Disposition, EventFingerprint, OrderEvent};
use futures_util::FutureExt;
use rusqlite::config::DbConfig;
use rusqlite::trace::{TraceEvent, TraceEventCodes};
use rusqlite::{Connection, OpenFlags, Row, ToSql, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::columns::{ContextRow, OwnedRow};
use crate::intake::{
    recorded_event, run_intake, EventJob, IntakeSteps, OwnedReceipt, Planner, Record, SealedEvent,
    COUNT_ORDER_EVENT, INSERT_EVENT, INSERT_JOB, INSERT_ORDER_WITH_RESULT, INSERT_RECEIPT,
    RECORDED_EVENTS,
};
use crate::outbox::{
    unreadable_job, Attempt, ClaimRequest, ClaimedJob, DueClaim, Finish, BURY_JOB, CLAIMED_JOB,
    CLAIM_JOB, FINISH_JOB, JOB_CONTEXT, JOB_CONTEXT_COLUMNS, NEXT_DUE_SQLITE, RECORD_ATTEMPT,
};
use crate::{IntakeOutcome, Planned, StoreError};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 128;

/// The WAL size (pages) at which the writer checkpoints by itself, as SQLite's automatic
/// checkpoint does at 1,000: only when the checkpoint thread fell far behind (about 40 MB).
const WRITER_CHECKPOINT_PAGES: u32 = 10_000;

/// The pause after each background checkpoint: commits in between are copied by the next.
/// Short, so that what the writer's own checkpoint still has to copy and flush stays small;
/// each background checkpoint costs two syncs that find little to write (BENCHMARKS.md,
/// "SQLite: the WAL starting over"). On a disk slow to sync, [`checkpoint_pause`] waits
/// longer.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(20);

/// The pause after a checkpoint that took `took`: [`CHECKPOINT_PAUSE`], or five times the
/// checkpoint if that is longer, so that checkpoints never take more than a sixth of the
/// time, and of the disk, from the writer's syncs. On this project's development disk a
/// checkpoint with its syncs takes a few milliseconds, so the pause is 20 ms; on a disk
/// whose syncs take 10 ms or more, checkpoints come further apart by themselves.
fn checkpoint_pause(took: Duration) -> Duration {
    CHECKPOINT_PAUSE.max(took.saturating_mul(5))
}

/// How long a write waits for a lock held by another connection (a CLI command, or this
/// process's own sqlx write pool) before failing as "unavailable".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One write, and where its result goes. It goes through the channel boxed ([`Message`]).
#[allow(clippy::large_enum_variant)]
enum Work {
    Intake(Pending<IntakeWrite>),
    Outcome(Pending<OutcomeWrite>),
    Claim(Pending<ClaimRequest>),
}

/// A write the writer runs in a batch's transaction. It reads its input only: a batch in
/// which one write fails is rolled back and runs again, each write in its own savepoint
/// ([`commit_batch`]).
trait Write {
    type Output: Send + 'static;
    fn run(&self, conn: &Connection) -> Result<Self::Output, StoreError>;
}

/// A write, its result once it ran, and its caller, who hears the result once the batch's
/// fate is known: the result itself after a commit, the batch's failure otherwise.
struct Pending<W: Write> {
    write: W,
    result: Option<Result<W::Output, StoreError>>,
    reply: oneshot::Sender<Result<W::Output, StoreError>>,
}

impl<W: Write> Pending<W> {
    fn new(write: W, reply: oneshot::Sender<Result<W::Output, StoreError>>) -> Self {
        Self {
            write,
            result: None,
            reply,
        }
    }

    /// Runs the write straight in the transaction; whether it succeeded. A failed write may
    /// have left part of its rows: the caller rolls the transaction back.
    fn run(&mut self, conn: &Connection) -> bool {
        let result = self.write.run(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    /// Runs the write in its own savepoint, and keeps it or undoes it alone: the others in
    /// the batch stay either way. The error is the savepoint's, which fails only when SQLite
    /// has ended the whole transaction itself (disk full, I/O error).
    fn run_in_savepoint(&mut self, conn: &Connection) -> Result<(), StoreError> {
        if let Err(e) = execute(conn, "SAVEPOINT write", &[]) {
            let e = StoreError::from(e);
            let closed = Err(e.clone_for_caller());
            self.result = Some(Err(e));
            return closed;
        }
        let result = self.write.run(conn);
        let closed = if result.is_ok() {
            execute(conn, "RELEASE write", &[])
        } else {
            execute(conn, "ROLLBACK TO write", &[])
                .and_then(|_| execute(conn, "RELEASE write", &[]))
        };
        let closed = closed.map(drop).map_err(|e| match &result {
            // SQLite rolled the whole transaction back on the write's failure (so the
            // savepoint is gone): that failure, not "no such savepoint", is the batch's.
            Err(write) if conn.is_autocommit() => write.clone_for_caller(),
            _ => StoreError::from(e),
        });
        self.result = Some(result);
        closed
    }

    /// Tells the caller: its result, or `failed`, the batch's failure.
    fn answer(self, failed: Option<&StoreError>) {
        let result = match (failed, self.result) {
            (Some(e), _) => Err(e.clone_for_caller()),
            (None, Some(result)) => result,
            // A committed batch ran every write; this arm only keeps the caller from waiting.
            (None, None) => Err(StoreError::WriterStopped),
        };
        // The caller may have gone (a client that hung up): nothing to tell then.
        drop(self.reply.send(result));
    }
}

impl Work {
    fn run(&mut self, conn: &Connection) -> bool {
        match self {
            Work::Intake(w) => w.run(conn),
            Work::Outcome(w) => w.run(conn),
            Work::Claim(w) => w.run(conn),
        }
    }

    fn run_in_savepoint(&mut self, conn: &Connection) -> Result<(), StoreError> {
        match self {
            Work::Intake(w) => w.run_in_savepoint(conn),
            Work::Outcome(w) => w.run_in_savepoint(conn),
            Work::Claim(w) => w.run_in_savepoint(conn),
        }
    }

    fn answer(self, failed: Option<&StoreError>) {
        match self {
            Work::Intake(w) => w.answer(failed),
            Work::Outcome(w) => w.answer(failed),
            Work::Claim(w) => w.answer(failed),
        }
    }
}

struct IntakeWrite {
    receipt: OwnedReceipt,
    event: OrderEvent,
    sealed: SealedEvent,
    plan: Planner,
    /// The store's time for the rows it writes.
    now: i64,
}

impl Write for IntakeWrite {
    type Output = IntakeOutcome;
    fn run(&self, conn: &Connection) -> Result<IntakeOutcome, StoreError> {
        intake(
            conn,
            &self.receipt,
            &self.event,
            &self.sealed,
            &*self.plan,
            self.now,
        )
    }
}

struct OutcomeWrite {
    job: ClaimedJob,
    worker: String,
    started_at: i64,
    finished_at: i64,
    recipient: Option<String>,
    finish: Finish,
}

impl Write for OutcomeWrite {
    type Output = bool;
    fn run(&self, conn: &Connection) -> Result<bool, StoreError> {
        let attempt = Attempt {
            worker: &self.worker,
            started_at: self.started_at,
            finished_at: self.finished_at,
            recipient: self.recipient.as_deref(),
        };
        finish_attempt(conn, &self.job, &attempt, &self.finish)
    }
}

impl Write for ClaimRequest {
    type Output = DueClaim;
    fn run(&self, conn: &Connection) -> Result<DueClaim, StoreError> {
        claim(conn, self)
    }
}

/// What the writer thread receives.
enum Message {
    /// Boxed before its caller waits: a write held inline (700 bytes) made each caller's
    /// future as large, and the webhook's futures are allocated once per request. At 1 KiB
    /// and above each such allocation made glibc's malloc merge its free chunks, 1–2 % of
    /// the process's CPU under load (BENCHMARKS.md, "An intake's future").
    Write(Box<Work>),
    /// Commit what came before, close the connection and stop; later writes fail with
    /// [`StoreError::WriterStopped`].
    Close(oneshot::Sender<()>),
}

/// How long the statements of one SQL text took, summed over its runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementTiming {
    /// The statement, its whitespace collapsed.
    pub sql: String,
    /// How many times it ran.
    pub runs: u64,
    /// Their time, as SQLite measures it (wall clock: a `COMMIT` includes its wait for the
    /// disk).
    pub total: Duration,
}

/// The statements timed so far by every SQLite writer of this process opened with
/// [`StoreOptions::statement_timings`](crate::StoreOptions), slowest in total first. Read
/// it before and after a measurement and subtract.
#[doc(hidden)]
pub fn sqlite_statement_timings() -> Vec<StatementTiming> {
    let timings = TIMINGS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut all: Vec<StatementTiming> = timings
        .iter()
        .map(|(sql, &(runs, total))| StatementTiming {
            sql: sql.clone(),
            runs,
            total,
        })
        .collect();
    all.sort_by_key(|s| std::cmp::Reverse(s.total));
    all
}

/// The statement timings: SQLite's callback is a plain function, so they live here.
static TIMINGS: Mutex<BTreeMap<String, (u64, Duration)>> = Mutex::new(BTreeMap::new());

fn time_statement(event: TraceEvent<'_>) {
    if let TraceEvent::Profile(statement, took) = event {
        let sql = statement
            .sql()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut timings = TIMINGS.lock().unwrap_or_else(PoisonError::into_inner);
        let (runs, total) = timings.entry(sql).or_default();
        *runs += 1;
        *total += took;
    }
}

/// The handle writes are submitted through.
#[derive(Clone)]
pub(crate) struct Batcher {
    tx: mpsc::Sender<Message>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Batcher")
    }
}

impl Batcher {
    /// Opens the writer connection to the SQLite file at `path` (which must exist) and starts
    /// the writer thread. It stops when the last handle is dropped.
    ///
    /// With `timings`, each statement the writer runs is timed ([`sqlite_statement_timings`]).
    pub(crate) fn start(path: &Path, timings: bool) -> Result<Self, StoreError> {
        let conn = open(path).map_err(|e| {
            StoreError::Config(format!(
                "cannot open the SQLite database {} for writing: {e}",
                path.display()
            ))
        })?;
        if timings {
            conn.trace_v2(TraceEventCodes::SQLITE_TRACE_PROFILE, Some(time_statement));
        }
        let checkpoints = open(path).map_err(|e| {
            StoreError::Config(format!(
                "cannot open the SQLite database {} for checkpoints: {e}",
                path.display()
            ))
        })?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel(1);
        let checkpointer = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint(&checkpoints, &nudged))
            .map_err(|e| StoreError::Config(format!("cannot start the SQLite checkpoints: {e}")))?;
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let closed = run(conn, rx, &nudge);
                // The checkpoint thread stops once it hears no writer is left; a close is
                // answered once both connections are closed.
                drop(nudge);
                let _ = checkpointer.join();
                if let Some(done) = closed {
                    let _ = done.send(());
                }
            })
            .map_err(|e| StoreError::Config(format!("cannot start the SQLite writer: {e}")))?;
        Ok(Self { tx })
    }

    /// Not `async`: the write is boxed before anything waits, so the future holds a pointer
    /// to it instead of its arguments ([`Message::Write`]).
    pub(crate) fn intake(
        &self,
        receipt: OwnedReceipt,
        event: OrderEvent,
        sealed: SealedEvent,
        plan: Planner,
        now: i64,
    ) -> impl std::future::Future<Output = Result<IntakeOutcome, StoreError>> + Send + '_ {
        let (reply, answer) = oneshot::channel();
        let write = IntakeWrite {
            receipt,
            event,
            sealed,
            plan,
            now,
        };
        let work = Box::new(Work::Intake(Pending::new(write, reply)));
        async move {
            self.send(work).await?;
            answer.await.map_err(|_| StoreError::WriterStopped)?
        }
    }

    pub(crate) async fn outcome(
        &self,
        job: &ClaimedJob,
        attempt: &Attempt<'_>,
        finish: Finish,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        let write = OutcomeWrite {
            job: job.clone(),
            worker: attempt.worker.to_owned(),
            started_at: attempt.started_at,
            finished_at: attempt.finished_at,
            recipient: attempt.recipient.map(str::to_owned),
            finish,
        };
        self.send(Box::new(Work::Outcome(Pending::new(write, reply))))
            .await?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    pub(crate) async fn claim(&self, request: ClaimRequest) -> Result<DueClaim, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Box::new(Work::Claim(Pending::new(request, reply))))
            .await?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Commits the writes already submitted, then closes the connection and stops the thread.
    pub(crate) async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.tx.send(Message::Close(done)).await.is_ok() {
            // An error means the writer had already stopped.
            let _ = closed.await;
        }
    }

    async fn send(&self, work: Box<Work>) -> Result<(), StoreError> {
        self.tx
            .send(Message::Write(work))
            .await
            .map_err(|_| StoreError::WriterStopped)
    }
}

/// The writer connection, with the same settings as sqlx's connections (connect.rs).
fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted and rewritten content is overwritten with zeros, not left in free pages: a
    // value erased or re-encrypted leaves no plaintext behind in the file.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // A write's savepoint (when its batch runs again after a failure) keeps the original of
    // every page it changes, for a rollback of that write alone. In memory, not in a
    // temporary file: with the file, the copies were half of this thread's time (write system
    // calls and file-system work, per savepoint).
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(32);
    // Plans made once, whatever values are bound later (the query planner stability
    // guarantee). Without it SQLite prepares a statement anew each time a parameter it could
    // plan with is bound, e.g. `LIMIT $4`: every claim was parsed and planned again, 8 % of
    // this thread's time at 3,000 webhooks a second. The statements here are written for
    // their plans (the claim reads each kind of due job through its index), not for values.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    // Checkpoints are the checkpoint thread's work (see the module's documentation).
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
    Ok(conn)
}

/// One background checkpoint: copies what it can without blocking the writer (`PASSIVE`),
/// then syncs the database file if the WAL held anything. Returns whether it synced the
/// file.
///
/// SQLite syncs the file itself only when no commit came while it copied, and the
/// statement's answer cannot tell: it counts the frames as of the checkpoint's start, so a
/// checkpoint overtaken by commits reports everything copied. When SQLite did sync, this
/// second sync finds nothing left to write.
fn checkpoint_once(conn: &Connection) -> rusqlite::Result<bool> {
    // The row is (busy, frames in the WAL, frames copied so far), -1 when nothing ran.
    let copied: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(2))?;
    if copied > 0 {
        sync_database_file(conn)
    } else {
        Ok(false)
    }
}

/// Syncs the database file of `conn` (its `main` database) through SQLite's own file handle.
/// Returns `false` when that database has no file (in memory).
///
/// SQLite has no statement for this, and a second file descriptor of our own would not do:
/// closing it would release every POSIX lock this process holds on the file, SQLite's
/// included ("How To Corrupt An SQLite Database File", 2.2). So this asks SQLite for its
/// file object (`SQLITE_FCNTL_FILE_POINTER`) and calls that object's own sync, as SQLite
/// does at the end of a checkpoint. The only `unsafe` code of the workspace.
#[allow(unsafe_code)]
fn sync_database_file(conn: &Connection) -> rusqlite::Result<bool> {
    use rusqlite::ffi;
    let failed = |code| rusqlite::Error::SqliteFailure(ffi::Error::new(code), None);
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `conn.handle()` is the open connection that `conn` owns, used on this thread
    // only (no other thread has this connection). SQLITE_FCNTL_FILE_POINTER writes one
    // `sqlite3_file*` through the pointer it is given, which points to `file`.
    let code = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&raw mut file).cast(),
        )
    };
    if code != ffi::SQLITE_OK {
        return Err(failed(code));
    }
    if file.is_null() {
        return Ok(false);
    }
    // SAFETY: `file` is the database's file object, owned by the connection, which stays
    // open (and borrowed) for this whole call. A file that is not open has no methods.
    let sync = unsafe { (*file).pMethods.as_ref() }.and_then(|methods| methods.xSync);
    let Some(sync) = sync else {
        return Ok(false);
    };
    // SAFETY: `sync` is that file's own xSync, called with its own file object, as SQLite
    // calls it. Syncing needs no lock: it only asks the system to write what the file
    // already holds.
    let code = unsafe { sync(file, ffi::SQLITE_SYNC_NORMAL) };
    if code != ffi::SQLITE_OK {
        return Err(failed(code));
    }
    Ok(true)
}

/// The checkpoint thread: after a nudge (a commit), copies what the WAL holds into the
/// database file without blocking the writer (`PASSIVE`), syncs the database file
/// ([`checkpoint_once`]), then pauses, remembering whether more commits came meanwhile.
/// Returns as soon as the writer has stopped.
fn checkpoint(conn: &Connection, nudged: &std::sync::mpsc::Receiver<()>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut committed = false;
    loop {
        if !committed && nudged.recv().is_err() {
            return;
        }
        let started = std::time::Instant::now();
        // A failure is retried after the next commit; the writer's own checkpoint bounds the
        // WAL and syncs the database file meanwhile.
        if let Err(e) = checkpoint_once(conn) {
            tracing::warn!(error = %e, "a background WAL checkpoint failed; retrying after the next commit");
        }
        committed = false;
        let until = std::time::Instant::now() + checkpoint_pause(started.elapsed());
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            match nudged.recv_timeout(left) {
                Ok(()) => committed = true,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Takes what is queued (at most [`MAX_BATCH`]), commits it, answers, and waits for more.
/// Returns when the store closes (with the close request to answer) or every handle is gone.
fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Message>,
    nudge: &std::sync::mpsc::SyncSender<()>,
) -> Option<oneshot::Sender<()>> {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Write(work) => batch.push(*work),
                Message::Close(done) => {
                    commit_batch(&mut conn, &mut batch);
                    drop(conn);
                    // Writes still queued are dropped with the channel: their callers hear
                    // that the writer stopped.
                    drop(rx);
                    return Some(done);
                }
            }
            next = if batch.len() < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        commit_batch(&mut conn, &mut batch);
        // A nudge already waiting covers this commit too.
        let _ = nudge.try_send(());
    }
    None
}

/// Commits `batch` in one transaction and answers each write's caller.
///
/// Nearly every batch has no failing write, so it first runs whole, with no savepoint per
/// write: without them this thread spends about a quarter less CPU per intake
/// (BENCHMARKS.md, "SQLite: savepoints only when a write fails"). If a write fails, that
/// transaction is rolled back and the batch runs again with each write in its own
/// savepoint, so that the failure is that write's alone: its neighbours are committed as if
/// it had never come.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<Work>) {
    if batch.is_empty() {
        return;
    }
    let failed = match commit_whole(conn, batch) {
        Whole::Ended(failed) => failed,
        Whole::WriteFailed => commit_each_in_savepoint(conn, batch),
    };
    // Nothing of a failed batch is durable (its transaction rolled back): every caller hears
    // of it.
    for work in batch.drain(..) {
        work.answer(failed.as_ref());
    }
}

/// How a batch's first run ended.
enum Whole {
    /// Every write ran; the batch's failure, if it could not begin or commit.
    Ended(Option<StoreError>),
    /// A write failed, and the transaction was rolled back.
    WriteFailed,
}

/// The batch's first run: every write straight in one transaction, then the commit.
fn commit_whole(conn: &mut Connection, batch: &mut [Work]) -> Whole {
    let tx = match begin(conn) {
        Ok(tx) => tx,
        Err(e) => return Whole::Ended(Some(e)),
    };
    for work in batch.iter_mut() {
        // A panic (a bug) counts as a failure here; the run with savepoints tells which write
        // it was.
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| work.run(&tx)));
        if !matches!(ran, Ok(true)) {
            // Dropping the transaction rolls it back (if SQLite has not already).
            return Whole::WriteFailed;
        }
    }
    Whole::Ended(tx.commit().err().map(StoreError::from))
}

/// The batch's run after a write failed: each write in its own savepoint, then the commit;
/// the batch's failure, if it has one.
fn commit_each_in_savepoint(conn: &mut Connection, batch: &mut [Work]) -> Option<StoreError> {
    let tx = match begin(conn) {
        Ok(tx) => tx,
        Err(e) => return Some(e),
    };
    for work in batch.iter_mut() {
        // A panic in one write (a bug) must not end the writer, and with it every later write.
        // The whole batch is undone, since the panicked write's savepoint was left open.
        match std::panic::catch_unwind(AssertUnwindSafe(|| work.run_in_savepoint(&tx))) {
            Ok(Ok(())) => {}
            // A savepoint that could not be closed leaves the transaction in doubt: undo all
            // of it.
            Ok(Err(e)) => return Some(e),
            Err(_) => {
                tracing::error!("a database write panicked; its batch is rolled back");
                return Some(StoreError::Batch {
                    message: "another write of the same batch failed unexpectedly".to_owned(),
                    unavailable: true,
                });
            }
        }
    }
    tx.commit().err().map(StoreError::from)
}

/// IMMEDIATE: takes the write lock now, waiting for another writer if need be.
fn begin(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    Ok(conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// SQLite's intake steps, on the writer thread: one cached statement each. None of them ever
/// waits, so [`run_intake`] over them completes on its first poll.
struct SqliteSteps<'c> {
    conn: &'c Connection,
    /// The order was made with this event's result counted (`create_with_first_result`).
    created: bool,
}

impl IntakeSteps for SqliteSteps<'_> {
    /// Whether the order's row is new tells its events apart: every event references its
    /// order (`foreign_keys` is on), so an order made now has none. One statement where an
    /// existing order takes three (create, read its events, count the new one).
    async fn create_with_first_result(
        &mut self,
        order_no: &str,
        result: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.created = execute(
            self.conn,
            INSERT_ORDER_WITH_RESULT,
            &[&order_no, &now, &result],
        )? == 1;
        Ok(self.created)
    }

    /// Nothing to do: `create_with_first_result` found the order's row, and this
    /// transaction holds the database's only write lock until it commits.
    async fn lock_order(&mut self, _order_no: &str, _now: i64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn recorded_events(
        &mut self,
        order_no: &str,
    ) -> Result<Vec<EventFingerprint>, StoreError> {
        query(self.conn, RECORDED_EVENTS, &[&order_no], |row| {
            Ok(recorded_event(
                &row.get::<_, String>(0)?,
                row.get(1)?,
                &row.get::<_, String>(2)?,
            ))
        })
    }

    async fn record(&mut self, r: Record<'_>) -> Result<(i64, Option<i64>), StoreError> {
        let receipt_id = insert_id(
            self.conn,
            INSERT_RECEIPT,
            &[
                &r.receipt.received_at_ms,
                &r.receipt.remote_addr,
                &r.order_no,
                &r.outcome,
                &r.receipt.body,
                &r.receipt.source.as_str(),
            ],
        )?;
        let Some(c) = r.event else {
            return Ok((receipt_id, None));
        };
        let event_id = insert_id(
            self.conn,
            INSERT_EVENT,
            &[
                &r.order_no,
                &receipt_id,
                &r.receipt.received_at_ms,
                &c.result,
                &c.disposition,
                &c.fingerprint,
                &c.iccid,
                &c.lpa,
                &c.package_code,
                &c.package_name,
                &c.currency,
                &c.price,
                &c.warnings,
                &r.receipt.source.as_str(),
            ],
        )?;
        if !self.created {
            execute(
                self.conn,
                COUNT_ORDER_EVENT,
                &[&c.result, &r.now, &r.order_no, &r.accepted],
            )?;
        }
        Ok((receipt_id, Some(event_id)))
    }

    async fn insert_job(&mut self, j: EventJob<'_>) -> Result<(), StoreError> {
        execute(
            self.conn,
            INSERT_JOB,
            &[
                &j.key,
                &j.job.notifier,
                &j.job.kind.as_str(),
                &j.order_no,
                &j.event_id,
                &j.job.payload,
                &j.now,
            ],
        )?;
        Ok(())
    }
}

/// The intake on SQLite: [`run_intake`] over the writer's connection.
fn intake(
    conn: &Connection,
    receipt: &OwnedReceipt,
    event: &OrderEvent,
    sealed: &SealedEvent,
    plan: &dyn Fn(&OrderEvent, &Disposition) -> Planned,
    now: i64,
) -> Result<IntakeOutcome, StoreError> {
    run_intake(
        &mut SqliteSteps {
            conn,
            created: false,
        },
        receipt,
        event,
        sealed,
        plan,
        now,
    )
    .now_or_never()
    .unwrap_or_else(|| {
        Err(StoreError::Corrupt(
            "the SQLite intake waited for something, which its steps never do".into(),
        ))
    })
}

/// An attempt's outcome: the job's new state and, if this claim still held the lease, its
/// delivery-log entry (PostgreSQL does both in one statement, `FINISH_ATTEMPT_PG`).
fn finish_attempt(
    conn: &Connection,
    job: &ClaimedJob,
    attempt: &Attempt<'_>,
    finish: &Finish,
) -> Result<bool, StoreError> {
    let e = finish.ending();
    let owned = execute(
        conn,
        FINISH_JOB,
        &[
            &e.state.as_str(),
            &e.error,
            &e.next_attempt_at,
            &attempt.finished_at,
            &job.id,
            &job.lease,
        ],
    )? == 1;
    if owned {
        execute(
            conn,
            RECORD_ATTEMPT,
            &[
                &job.id,
                &job.attempts,
                &attempt.started_at,
                &attempt.finished_at,
                &e.outcome.as_str(),
                &e.error,
                &e.receipt,
                &attempt.worker,
                &attempt.recipient,
                &e.locale,
            ],
        )?;
    }
    Ok(owned)
}

/// Leases the due jobs `request` chooses: their ids first, then each job by its id
/// ([`CLAIM_JOB`]), then its row as leased. Then, if it asks and took fewer than its limit,
/// reads when the next job falls due.
fn claim(conn: &Connection, request: &ClaimRequest) -> Result<DueClaim, StoreError> {
    let chosen: Vec<i64> = query(
        conn,
        &request.chosen_sql(),
        &[
            &request.lease_until,
            &request.lease,
            &request.now,
            &request.limit,
            &request.notifier(),
        ],
        |row| Ok(row.get(0)?),
    )?;
    let taken = chosen.len();
    let mut jobs = Vec::with_capacity(taken);
    for id in chosen {
        execute(
            conn,
            CLAIM_JOB,
            &[&request.lease_until, &request.lease, &request.now, &id],
        )?;
        let job = query(conn, &CLAIMED_JOB, &[&id], |row| {
            Ok((|| Ok(crate::outbox::claimed_job_from_row!(row, get)))())
        })?
        .pop()
        .ok_or_else(|| StoreError::Corrupt(format!("outbox job {id} vanished while leased")))?;
        match job {
            Ok(mut job) => {
                job.context = job_context(conn, &job)?.map(|row| Arc::new(ContextRow::Owned(row)));
                jobs.push(job);
            }
            // One unreadable row must not fail the claim: the job would stay first in line
            // and stop every delivery behind it.
            Err(e) => {
                let reason = unreadable_job(id, &e);
                execute(conn, BURY_JOB, &[&reason, &request.now, &id])?;
            }
        }
    }
    let next_due_at = if request.next_due && (taken as i64) < request.limit {
        query(conn, NEXT_DUE_SQLITE, &[], |row| Ok(row.get(0)?))?
            .pop()
            .flatten()
    } else {
        None
    };
    Ok(DueClaim { jobs, next_due_at })
}

/// An order job's event and customer, read with its claim: here the pages are in this
/// connection's cache, which only its own writes change, whereas a read on another
/// connection finds the cache stale after every commit and reads them again, on a thread of
/// its own (BENCHMARKS.md, "The dispatcher's reads, in SQLite's writer"). Copied out as
/// stored, so that opening the sealed values is left to the delivery's task.
fn job_context(conn: &Connection, job: &ClaimedJob) -> Result<Option<OwnedRow>, StoreError> {
    let (Some(event_id), Some(order_no)) = (job.event_id, &job.order_no) else {
        return Ok(None);
    };
    let mut rows = query(conn, &JOB_CONTEXT, &[&event_id, order_no], |row| {
        Ok(OwnedRow::read(row, JOB_CONTEXT_COLUMNS)?)
    })?;
    Ok(rows.pop())
}

/// The `$n` parameter names, by position.
const PARAMS: [&str; 16] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16",
];

/// Prepares (or takes from the cache) `sql` and binds `values[i]` to `$(i + 1)`. The
/// statements are shared with the sqlx path, which numbers its parameters; a statement may
/// leave some out (a claim without a notifier has no `$5`).
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    values: &[&dyn ToSql],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut stmt = conn.prepare_cached(sql)?;
    debug_assert!(
        stmt.parameter_count() <= values.len() && values.len() <= PARAMS.len(),
        "{sql}: {} parameters, {} values",
        stmt.parameter_count(),
        values.len()
    );
    for (value, name) in values.iter().zip(PARAMS) {
        if let Some(index) = stmt.parameter_index(name)? {
            stmt.raw_bind_parameter(index, value)?;
        }
    }
    Ok(stmt)
}

/// Runs a statement; returns the rows it changed.
fn execute(conn: &Connection, sql: &str, values: &[&dyn ToSql]) -> rusqlite::Result<usize> {
    prepare(conn, sql, values)?.raw_execute()
}

/// How the `INSERT`s both engines share end: PostgreSQL's driver reads the new id from it.
const RETURNING_ID: &str = " RETURNING id";

/// Runs an `INSERT … RETURNING id` of one row without its `RETURNING`, and gives the new
/// row's id (its rowid) as SQLite reports it. SQLite runs a `RETURNING` as a trigger: each
/// such statement opened a temporary table for the rows it returns, and a statement journal
/// that copied every page the insert touched into memory, so that the statement alone could
/// be undone. Those took about a sixth of this thread's time (BENCHMARKS.md, "SQLite: inserts
/// without `RETURNING`"). Without them, a one-row insert that fails a constraint stops
/// before it writes.
fn insert_id(conn: &Connection, sql: &str, values: &[&dyn ToSql]) -> Result<i64, StoreError> {
    let plain = sql
        .strip_suffix(RETURNING_ID)
        .ok_or_else(|| StoreError::Corrupt(format!("{sql:?} does not end in {RETURNING_ID:?}")))?;
    match execute(conn, plain, values)? {
        1 => Ok(conn.last_insert_rowid()),
        n => Err(StoreError::Corrupt(format!(
            "{n} rows inserted by {plain:?}, where one was meant"
        ))),
    }
}

/// Runs a statement and maps each row it returns.
fn query<T>(
    conn: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
    mut map: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = prepare(conn, sql, values)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use esim_courier_core::{CurrencyTable, EventSource, WebhookPayload};

    use crate::{Keyring, NewReceipt, Planned, Store, StoreOptions};

    /// A migrated store on a new SQLite file at `file`.
    async fn migrated(file: &std::path::Path) -> Store {
        let store = Store::connect(&StoreOptions::new(
            format!("sqlite://{}", file.display()),
            Arc::new(Keyring::random()),
        ))
        .await
        .expect("connects");
        store.migrate().await.expect("migrates");
        store
    }

    /// The writer's connection to a migrated SQLite file in `dir`.
    async fn migrated_writer(dir: &tempfile::TempDir) -> rusqlite::Connection {
        let file = dir.path().join("writer.db");
        migrated(&file).await.close().await;
        super::open(&file).expect("opens")
    }

    /// The body of a FAILED webhook of `order_no`, and its event.
    fn failed(order_no: &str) -> (String, esim_courier_core::OrderEvent) {
        let body = format!(r#"{{"orderNo":"{order_no}","result":"FAILED","iccid":"","lpa":""}}"#);
        let event = WebhookPayload::from_slice(body.as_bytes())
            .expect("parses")
            .into_event(&CurrencyTable::default())
            .expect("an event");
        (body, event)
    }

    /// A FAILED webhook of `order_no` as the writer receives it, with one job for its event;
    /// and where its answer arrives.
    fn intake_work(
        keys: &Keyring,
        order_no: &str,
    ) -> (
        super::Work,
        tokio::sync::oneshot::Receiver<Result<crate::IntakeOutcome, crate::StoreError>>,
    ) {
        let (body, event) = failed(order_no);
        let receipt = NewReceipt {
            received_at_ms: 1,
            remote_addr: None,
            body: body.as_bytes(),
            source: EventSource::Webhook,
        };
        let write = super::IntakeWrite {
            receipt: super::OwnedReceipt::sealed(keys, receipt, Some(order_no)),
            sealed: super::SealedEvent::new(keys, &event),
            event,
            plan: Box::new(|_, _| {
                vec![crate::NewJob {
                    notifier: "ops".into(),
                    kind: crate::JobKind::OrderFailed,
                    payload: None,
                }]
                .into()
            }),
            now: 1,
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        (
            super::Work::Intake(super::Pending::new(write, reply)),
            answer,
        )
    }

    /// The writer inserts receipts and events without `RETURNING` and takes their ids from
    /// SQLite: each intake of a batch hears the ids of its own rows, a retry its receipt's
    /// and no event's.
    #[tokio::test]
    async fn each_intake_of_a_batch_hears_the_ids_of_its_own_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = migrated_writer(&dir).await;
        let keys = Keyring::random();
        let orders = ["ID-1", "ID-2", "ID-1", "ID-3"];
        let (mut batch, answers): (Vec<_>, Vec<_>) =
            orders.iter().map(|order| intake_work(&keys, order)).unzip();
        super::commit_batch(&mut conn, &mut batch);
        let mut seen = Vec::new();
        for (order, mut answer) in orders.into_iter().zip(answers) {
            let outcome = answer.try_recv().expect("answered").expect("recorded");
            let receipt: (String, String) = conn
                .query_row(
                    "SELECT order_no, outcome FROM webhook_receipts WHERE id = ?1",
                    [outcome.receipt_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .expect("the receipt");
            assert_eq!(receipt.0, order, "receipt {}", outcome.receipt_id);
            match outcome.event_id {
                Some(event_id) => {
                    let (event_order, event_receipt): (String, i64) = conn
                        .query_row(
                            "SELECT order_no, receipt_id FROM order_events WHERE id = ?1",
                            [event_id],
                            |row| Ok((row.get(0)?, row.get(1)?)),
                        )
                        .expect("the event");
                    assert_eq!(event_order, order);
                    assert_eq!(event_receipt, outcome.receipt_id);
                }
                None => assert_eq!(receipt.1, "duplicate", "{order}: only a retry has no event"),
            }
            seen.push((outcome.receipt_id, outcome.event_id));
        }
        let receipts: Vec<i64> = seen.iter().map(|s| s.0).collect();
        assert_eq!(receipts, [1, 2, 3, 4], "one receipt per delivery, in order");
        let events: Vec<Option<i64>> = seen.iter().map(|s| s.1).collect();
        assert_eq!(events, [Some(1), Some(2), None, Some(3)]);
    }

    /// How many savepoints the writers that time their statements have opened so far.
    fn savepoints() -> u64 {
        super::sqlite_statement_timings()
            .iter()
            .filter(|s| s.sql == "SAVEPOINT write")
            .map(|s| s.runs)
            .sum()
    }

    /// A batch runs whole, with no savepoint per write. When one of its writes fails, it runs
    /// again with a savepoint per write: every row of the failed write is undone, its caller
    /// hears its error, and the others are committed and hear their own answers, including a
    /// retry that follows its first delivery in the same batch.
    #[tokio::test]
    async fn a_failing_write_is_undone_alone_and_the_rest_of_its_batch_commits() {
        use crate::IntakeOutcome;
        use esim_courier_core::Disposition;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = migrated_writer(&dir).await;
        // The outbox refuses the job of one order: the last row its intake writes.
        conn.execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON outbox_jobs WHEN NEW.order_no = 'REFUSED' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .expect("creates the trigger");
        // No other test of this process times its statements.
        conn.trace_v2(
            rusqlite::trace::TraceEventCodes::SQLITE_TRACE_PROFILE,
            Some(super::time_statement),
        );
        let keys = Keyring::random();
        let accepted = |answer: Result<IntakeOutcome, crate::StoreError>| {
            answer.expect("recorded").disposition
        };

        // Commits one batch of intakes of `orders`: the savepoints it opened, and the answers.
        let mut commit = |orders: &[&str]| {
            let (mut batch, answers): (Vec<_>, Vec<_>) =
                orders.iter().map(|order| intake_work(&keys, order)).unzip();
            let before = savepoints();
            super::commit_batch(&mut conn, &mut batch);
            let answers: Vec<_> = answers
                .into_iter()
                .map(|mut a| a.try_recv().expect("answered"))
                .collect();
            (savepoints() - before, answers)
        };

        let (opened, answers) = commit(&["A-1", "A-2", "A-3"]);
        assert_eq!(opened, 0, "a batch with no failure has no savepoint");
        for answer in answers {
            assert_eq!(accepted(answer), Disposition::Accepted);
        }

        let (opened, answers) = commit(&["B-1", "REFUSED", "B-2", "B-1"]);
        assert_eq!(opened, 4, "the batch ran again, a savepoint per write");
        let mut answers = answers.into_iter();
        assert_eq!(
            accepted(answers.next().expect("B-1")),
            Disposition::Accepted
        );
        let refused = answers.next().expect("REFUSED").expect_err("refused");
        assert!(
            format!("{refused:?}").contains("refused by the test"),
            "{refused:?}"
        );
        assert_eq!(
            accepted(answers.next().expect("B-2")),
            Disposition::Accepted
        );
        assert_eq!(
            accepted(answers.next().expect("B-1 again")),
            Disposition::Duplicate
        );

        let count = |sql: &str, order: &str| -> i64 {
            conn.query_row(sql, [order], |r| r.get(0)).expect("counts")
        };
        for (order, receipts) in [
            ("A-1", 1),
            ("A-3", 1),
            ("B-1", 2),
            ("B-2", 1),
            ("REFUSED", 0),
        ] {
            let rows = i64::from(receipts > 0);
            assert_eq!(
                count(
                    "SELECT count(*) FROM webhook_receipts WHERE order_no = ?1",
                    order
                ),
                receipts,
                "{order}'s receipts"
            );
            for table in ["orders", "order_events", "outbox_jobs"] {
                let sql = format!("SELECT count(*) FROM {table} WHERE order_no = ?1");
                assert_eq!(count(&sql, order), rows, "{order} in {table}");
            }
        }
    }

    /// A checkpoint that copies pages syncs the database file, also when it leaves part of
    /// the WAL behind (here for a reader's snapshot), which SQLite does not sync; one that
    /// finds an empty WAL syncs nothing.
    #[test]
    fn a_checkpoint_that_copies_pages_syncs_the_database_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("partial.db");
        // An empty file is an empty database; the writer's `open` expects the file to exist.
        std::fs::File::create(&file).expect("creates the file");
        let writer = super::open(&file).expect("opens");
        writer
            .execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('first');")
            .expect("writes");
        let mut reader = super::open(&file).expect("opens");
        let snapshot = reader.transaction().expect("a read transaction");
        let seen: i64 = snapshot
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("reads");
        assert_eq!(seen, 1);
        writer
            .execute("INSERT INTO t VALUES ('after the snapshot')", [])
            .expect("writes");
        let checkpoints = super::open(&file).expect("opens");
        assert!(
            super::checkpoint_once(&checkpoints).expect("checkpoints"),
            "the frames up to the reader's snapshot were copied, and the file synced here"
        );
        snapshot.finish().expect("ends the read");
        assert!(
            super::checkpoint_once(&checkpoints).expect("checkpoints"),
            "the rest was copied, and the file synced"
        );
        checkpoints
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("empties the WAL");
        assert!(
            !super::checkpoint_once(&checkpoints).expect("checkpoints"),
            "an empty WAL: nothing copied, nothing to sync"
        );
    }

    /// The writer prepares each statement once: binding new values does not make SQLite
    /// prepare it again. (By default SQLite prepares a statement with `LIMIT $4` anew each time
    /// `$4` is bound, to plan with its value; every claim did.) The choice's plan stays the
    /// same: each kind of due job through the due-jobs index, and no scan of the outbox. Each
    /// claimed job comes back leased to its claim.
    #[tokio::test]
    async fn claims_are_prepared_once_whatever_they_bind() {
        use crate::outbox::{ClaimFilter, ClaimRequest, CLAIMED_JOB, CLAIM_JOB};
        use rusqlite::StatementStatus;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = migrated_writer(&dir).await;
        let keys = Keyring::random();
        let (mut batch, _answers): (Vec<_>, Vec<_>) = (0..6)
            .map(|i| intake_work(&keys, &format!("C-{i}")))
            .unzip();
        super::commit_batch(&mut conn, &mut batch);

        let request = |filter: ClaimFilter, at: i64, limit: i64| ClaimRequest {
            filter,
            lease: format!("lease-{at}"),
            now: at,
            lease_until: at + 1_000,
            limit,
            next_due: true,
        };
        let mut claimed = Vec::new();
        for (at, limit) in [(10, 1), (20, 2), (30, 3)] {
            let claim = super::claim(&conn, &request(ClaimFilter::Due, at, limit)).expect("claims");
            assert_eq!(
                claim.next_due_at, None,
                "it took its limit: more may be due"
            );
            let jobs = claim.jobs;
            assert_eq!(jobs.len(), limit as usize, "as many jobs as it asked for");
            for job in jobs {
                assert_eq!(job.lease, format!("lease-{at}"), "leased to this claim");
                assert_eq!(job.attempts, 1, "its first attempt");
                claimed.push(job.id);
            }
            super::claim(
                &conn,
                &request(ClaimFilter::Notifier("grouping".into()), at, limit),
            )
            .expect("claims");
        }
        claimed.sort_unstable();
        claimed.dedup();
        assert_eq!(claimed.len(), 6, "no job leased twice");
        let rest = super::claim(&conn, &request(ClaimFilter::Due, 40, 10)).expect("claims");
        assert!(rest.jobs.is_empty(), "every job is leased");
        assert_eq!(
            rest.next_due_at,
            Some(1_010),
            "the next due is the first lease's end"
        );
        let statements = [ClaimFilter::Due, ClaimFilter::Notifier("grouping".into())]
            .map(|filter| request(filter, 0, 0).chosen_sql());
        for sql in statements
            .iter()
            .map(String::as_str)
            .chain([CLAIM_JOB, &CLAIMED_JOB])
        {
            let statement = conn.prepare_cached(sql).expect("the cached statement");
            assert_eq!(
                statement.get_status(StatementStatus::RePrepare),
                0,
                "prepared again: {sql}"
            );
        }

        let sql = request(ClaimFilter::Due, 0, 0).chosen_sql();
        let mut plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explains");
        let plan: Vec<String> = plan
            .query_map(&[("$3", &0_i64), ("$4", &1_i64)], |row| row.get(3))
            .expect("the plan")
            .collect::<Result<_, _>>()
            .expect("its rows");
        let due = plan
            .iter()
            .filter(|step| {
                step.starts_with("SEARCH outbox_jobs USING")
                    && step.contains("INDEX outbox_jobs_due")
            })
            .count();
        assert_eq!(due, 3, "each kind of due job through the index: {plan:#?}");
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN outbox_jobs")),
            "no scan of the outbox: {plan:#?}"
        );
    }

    /// Checkpoints come every 20 ms, or further apart when they take longer than 4 ms, so
    /// that they keep at most a sixth of the time.
    #[test]
    fn checkpoints_pause_longer_when_they_take_longer() {
        use std::time::Duration;
        assert_eq!(
            super::checkpoint_pause(Duration::from_micros(300)),
            super::CHECKPOINT_PAUSE
        );
        assert_eq!(
            super::checkpoint_pause(Duration::from_millis(4)),
            Duration::from_millis(20)
        );
        assert_eq!(
            super::checkpoint_pause(Duration::from_millis(30)),
            Duration::from_millis(150)
        );
    }

    /// A database in memory has no file to sync.
    #[test]
    fn a_database_in_memory_has_no_file_to_sync() {
        let conn = rusqlite::Connection::open_in_memory().expect("opens");
        conn.execute_batch("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('x');")
            .expect("writes");
        assert!(!super::sync_database_file(&conn).expect("no error"));
    }

    /// The database file only grows when a checkpoint copies the WAL into it. The writer
    /// checkpoints by itself only past [`super::WRITER_CHECKPOINT_PAGES`], far more than
    /// these writes, so the file growing shows the checkpoint thread at work.
    #[tokio::test]
    async fn commits_reach_the_database_file_through_the_checkpoint_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("checkpoints.db");
        let store = migrated(&file).await;
        let before = std::fs::metadata(&file).expect("the file").len();
        for i in 0..20 {
            let (body, event) = failed(&format!("CK-{i}"));
            store
                .intake(
                    NewReceipt {
                        received_at_ms: 1,
                        remote_addr: None,
                        body: body.as_bytes(),
                        source: EventSource::Webhook,
                    },
                    &event,
                    |_, _| Planned::default(),
                )
                .await
                .expect("recorded");
        }
        let mut after = before;
        // Given up after 10 s: the checkpoint thread would have run a hundred times by then.
        for _ in 0..200 {
            after = std::fs::metadata(&file).expect("the file").len();
            if after > before {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            after > before,
            "the database file stayed at {before} bytes: nothing was checkpointed"
        );
        store.close().await;
    }
}
