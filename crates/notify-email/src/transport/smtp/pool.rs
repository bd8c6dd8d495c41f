//! The notifier's own pool of SMTP connections.
//!
//! It exists only because lettre's released pool opens its sockets without `TCP_NODELAY`
//! (each message then waits ~40 ms for a delayed ACK; see `connection.rs`). lettre fixed that
//! upstream (PR #1159, merged, not yet in a release): when a release carries the fix, this
//! pool and `connection::open` can give way to lettre's `AsyncSmtpTransport` pool.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use lettre::transport::smtp::client::AsyncSmtpConnection;

/// Connections at rest between attempts: at most `max_size`, each for at most `idle_timeout`.
/// Any number may be in use at once; those beyond `max_size` are closed when done.
pub(super) struct Pool {
    idle: Mutex<Vec<Idle>>,
    max_size: usize,
    idle_timeout: Duration,
    /// Whether the task that closes expired connections runs (started on first use: a notifier
    /// may be constructed outside a runtime, e.g. by `check`).
    sweeping: AtomicBool,
}

struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("max_size", &self.max_size)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub(super) fn new(max_size: usize, idle_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            max_size,
            idle_timeout,
            sweeping: AtomicBool::new(false),
        }
    }

    /// The most recently used connection still within its idle time; older ones are closed.
    pub(super) fn take(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(parked) = idle.pop() {
            if parked.since.elapsed() <= self.idle_timeout {
                return Some(parked.connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next attempt, or closes it if the pool is full.
    pub(super) fn put_back(&self, connection: AsyncSmtpConnection, deadline: Duration) {
        if connection.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_size {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        } else {
            drop(idle);
            tokio::spawn(quit(vec![connection], deadline));
        }
    }

    /// How many connections are at rest.
    #[cfg(test)]
    pub(super) fn idle_len(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub(super) fn take_all(&self) -> Vec<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.drain(..).map(|parked| parked.connection).collect()
    }

    fn take_expired(&self) -> Vec<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let (expired, kept) = idle
            .drain(..)
            .partition::<Vec<_>, _>(|parked| parked.since.elapsed() > self.idle_timeout);
        *idle = kept;
        expired
            .into_iter()
            .map(|parked| parked.connection)
            .collect()
    }

    /// Starts, once, the task that closes connections idle for longer than `idle_timeout`. It
    /// ends when the pool is dropped.
    pub(super) fn start_sweeping(self: &Arc<Self>, deadline: Duration) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool: Weak<Self> = Arc::downgrade(self);
        let every = self.idle_timeout.max(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                let expired = pool.take_expired();
                drop(pool);
                quit(expired, deadline).await;
            }
        });
    }
}

/// Says QUIT on each connection, for at most `deadline` in all.
pub(super) async fn quit(connections: Vec<AsyncSmtpConnection>, deadline: Duration) {
    if connections.is_empty() {
        return;
    }
    let all = futures_util::future::join_all(connections.into_iter().map(|mut c| async move {
        let _ = c.quit().await;
    }));
    let _ = tokio::time::timeout(deadline, all).await;
}
