//! What each engine can do at best on this machine, measured in the same run as (b) and (c):
//!
//! - **s**: esim-courier's store alone on SQLite, in this process: the same intake, the same
//!   rows, encryption on, but no HTTP and no dispatcher (as `esim-courier-bench store`);
//! - **p**: the minimal durable write on PostgreSQL ([`crate::minimal::record`]) through the
//!   same driver and pool size as (c).
//!
//! Both run 32 tasks (the load generator's connection count) in a closed loop and give the
//! same [`Outcome`] as an HTTP measurement.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::load::{new_histogram, record, Outcome};
use crate::payload::Orders;

/// Runs `op(seq)` from `concurrency` tasks for `duration`, each task starting its next call
/// when the previous one finished; counts and times every call. A failed call is counted,
/// not fatal, as a failed request is in the HTTP measurements.
pub async fn closed_loop<F, Fut>(
    concurrency: usize,
    duration: Duration,
    op: F,
) -> anyhow::Result<Outcome>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, next) = (Arc::clone(&op), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut latencies = new_histogram();
            let (mut errors, mut first_error) = (0_u64, None);
            let mut slowest = (Duration::ZERO, None);
            while Instant::now() < deadline {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                match op(seq).await {
                    Ok(()) => {
                        let took = sent.elapsed();
                        record(&mut latencies, took);
                        if took > slowest.0 {
                            slowest = (took, Some(std::time::SystemTime::now()));
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (latencies, errors, first_error, slowest)
        }));
    }
    let mut latency = new_histogram();
    let (mut errors, mut first_error) = (0, None);
    let mut slowest = (Duration::ZERO, None);
    for task in tasks {
        let (histogram, e, first, task_slowest) = task.await?;
        if task_slowest.0 > slowest.0 {
            slowest = task_slowest;
        }
        latency.add(histogram)?;
        errors += e;
        if first_error.is_none() {
            first_error = first;
        }
    }
    Ok(Outcome {
        ok: latency.len(),
        errors,
        unsent: 0,
        elapsed: started.elapsed(),
        latency,
        first_error,
        slowest_at: slowest.1,
        sent: Vec::new(),
    })
}

/// p: the minimal durable write on the PostgreSQL database at `url` (a fresh one): 2 s of
/// warm-up, then `duration` measured.
pub async fn postgres_minimal(
    url: &str,
    concurrency: usize,
    duration: Duration,
    orders: Orders,
) -> anyhow::Result<Outcome> {
    let pool = crate::minimal::pool(url, crate::minimal::POOL_SIZE).await?;
    let orders = Arc::new(orders);
    let write = move |seq: u64| {
        let (pool, orders) = (pool.clone(), Arc::clone(&orders));
        async move {
            let body = orders.webhook_body(seq);
            let text = std::str::from_utf8(&body)?;
            crate::minimal::record(&pool, &orders.order_no(seq), text).await?;
            anyhow::Ok(())
        }
    };
    let write = Arc::new(write);
    let warm = Arc::clone(&write);
    // The warm-up writes sequence numbers far above the measured ones.
    closed_loop(concurrency, Duration::from_secs(2), move |seq| {
        warm(seq + 1_000_000_000)
    })
    .await?;
    closed_loop(concurrency, duration, move |seq| write(seq)).await
}
