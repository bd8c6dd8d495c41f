//! The load generator: exactly N keep-alive HTTP/1.1 connections (hyper), every latency in an
//! HDR histogram (microseconds).
//!
//! - [`closed_loop`]: each connection sends its next request as soon as the previous answer
//!   arrived. Measures throughput; latency is per request.
//! - [`open_loop`]: requests are due at a fixed rate whatever the server does; a request's
//!   latency runs from its *intended* send time, so a stalled server is charged for the
//!   requests it delayed (no coordinated omission). A pacing thread releases the due requests
//!   (`std::thread::sleep` is precise to tens of microseconds, tokio's timer only to 1 ms);
//!   whichever connection is free sends the next one.
//!
//! The generator runs on its own single-threaded tokio runtime: it never takes more than one
//! core from the server under test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Mutex};

/// The request body of sequence number `seq`.
pub type Bodies = Arc<dyn Fn(u64) -> Bytes + Send + Sync>;

/// Where requests go: `POST http://<addr><path>` with a JSON body.
#[derive(Clone)]
pub struct Target {
    /// The server's address (loopback).
    pub addr: SocketAddr,
    /// The request path, e.g. `/webhooks/order/bench-token`.
    pub path: String,
    /// The body of each request, by sequence number.
    pub bodies: Bodies,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What one measurement saw.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Answers with status 200.
    pub ok: u64,
    /// Other answers and failed requests.
    pub errors: u64,
    /// Requests due but never sent (open loop: the server fell too far behind).
    pub unsent: u64,
    /// From the first send to the last answer.
    pub elapsed: Duration,
    /// Latency of the 200 answers, microseconds.
    pub latency: Histogram<u64>,
    /// When request 0 was due (open loop) or the measurement began (closed loop).
    pub started: Instant,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// When the slowest answer arrived (wall clock), to set a stall beside the database
    /// server's log and the machine's other work.
    pub slowest_at: Option<std::time::SystemTime>,
}

impl Outcome {
    /// Successful requests per second.
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at `quantile` (0..=1), in milliseconds.
    pub fn latency_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    /// The highest latency, in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }

    /// Answers slower than [`STALL_MS`]: the stalls the benchmark counts in every run.
    pub fn stalled(&self) -> u64 {
        stalled(&self.latency)
    }

    /// `", slowest answered at 12:34:56.789 UTC"` when a request stalled, else nothing.
    pub fn stall_time(&self) -> String {
        match self.slowest_at {
            Some(at) if self.stalled() > 0 => format!(", slowest answered at {}", utc_time(at)),
            _ => String::new(),
        }
    }
}

/// `at` as `HH:MM:SS.mmm UTC` (the form of PostgreSQL's log lines).
pub fn utc_time(at: std::time::SystemTime) -> String {
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let day_ms = ms % 86_400_000;
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        day_ms / 3_600_000,
        day_ms / 60_000 % 60,
        day_ms / 1000 % 60,
        day_ms % 1000
    )
}

/// A request slower than this many milliseconds counts as stalled.
pub const STALL_MS: u64 = 50;

/// The latencies of `histogram` (µs) above [`STALL_MS`].
pub fn stalled(histogram: &Histogram<u64>) -> u64 {
    let above = STALL_MS * 1000;
    if histogram.max() <= above {
        return 0;
    }
    // Counted from the first bucket wholly above the threshold (3 significant digits).
    histogram.count_between(histogram.highest_equivalent(above) + 1, histogram.max())
}

/// A latency histogram in microseconds, from 1 µs to 10 minutes, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` in microseconds (saturating at the histogram's top).
pub fn record(histogram: &mut Histogram<u64>, d: Duration) {
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
    histogram.saturating_record(micros);
}

/// Sends requests `0..` over `connections` connections for `duration`, each connection
/// waiting for its answer before sending again.
pub async fn closed_loop(
    target: Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    on_own_runtime(move || closed_loop_inner(target, connections, duration)).await
}

/// Sends `rate` requests per second for `duration` over `connections` connections, numbered
/// `0..`; latency counts from each request's intended send time. Requests not sent `grace`
/// after the last one was due are counted as unsent.
pub async fn open_loop(
    target: Target,
    connections: usize,
    rate: f64,
    duration: Duration,
    grace: Duration,
) -> anyhow::Result<Outcome> {
    on_own_runtime(move || async move {
        anyhow::ensure!(rate > 0.0, "the request rate must be positive");
        let all = open_all(&target, connections).await?;
        let count = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
        let interval = Duration::from_secs_f64(1.0 / rate);
        // Leave the pacer a moment to start, so request 0 is not late by construction.
        let started = Instant::now() + Duration::from_millis(20);
        let give_up = started + duration + grace;

        let (tx, rx) = mpsc::unbounded_channel::<Due>();
        let pacer = std::thread::Builder::new()
            .name("bench-pacer".into())
            .spawn(move || {
                for i in 0..count {
                    let at = started + interval.mul_f64(i as f64);
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    if tx.send(Due { seq: i, at }).is_err() {
                        break;
                    }
                }
            })
            .context("cannot start the pacing thread")?;

        let rx = Arc::new(Mutex::new(rx));
        let tasks: Vec<_> = all
            .into_iter()
            .map(|mut connection| {
                let rx = Arc::clone(&rx);
                tokio::spawn(async move {
                    let mut tally = Tally::new();
                    loop {
                        let due = rx.lock().await.recv().await;
                        let Some(due) = due else { break };
                        if Instant::now() >= give_up {
                            // Far behind: stop rather than run for ever; the rest count as unsent.
                            rx.lock().await.close();
                            break;
                        }
                        let result = connection.send(due.seq).await;
                        tally.count(result, due.at.elapsed());
                    }
                    tally
                })
            })
            .collect();
        let mut tallies = Vec::with_capacity(tasks.len());
        for task in tasks {
            tallies.push(task.await.context("a load connection panicked")?);
        }
        let _ = pacer.join();
        let answered: u64 = tallies.iter().map(|t| t.ok + t.errors).sum();
        Ok(Tally::merge(
            tallies,
            started,
            count.saturating_sub(answered),
        ))
    })
    .await
}

/// Runs `make()` to completion on a new current-thread runtime on a blocking thread.
async fn on_own_runtime<F, Fut>(make: F) -> anyhow::Result<Outcome>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<Outcome>>,
{
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot build the load generator's runtime")?;
        runtime.block_on(make())
    })
    .await
    .context("the load generator panicked")?
}

/// One keep-alive connection, reopened after a failure.
struct Connection {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    async fn open(target: Target) -> anyhow::Result<Self> {
        let mut connection = Self {
            target,
            sender: None,
        };
        connection.connect().await?;
        Ok(connection)
    }

    async fn connect(&mut self) -> anyhow::Result<()> {
        let stream = TcpStream::connect(self.target.addr)
            .await
            .with_context(|| format!("cannot connect to {}", self.target.addr))?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; errors show up on send.
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends request `seq` and reads the whole answer.
    async fn send(&mut self, seq: u64) -> Result<(), String> {
        // A connection left idle past the server's keep-alive timeout is closed by the server:
        // reconnect before sending, as any HTTP client does (the time counts as latency).
        let usable = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.connect().await.map_err(|e| format!("{e:#}"))?;
        }
        let sender = self.sender.as_mut().expect("connected above");
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.target.path.as_str())
            .header(header::HOST, self.target.addr.to_string())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new((self.target.bodies)(seq)))
            .map_err(|e| e.to_string())?;
        let result = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        match result {
            Ok((StatusCode::OK, _)) => Ok(()),
            Ok((status, body)) => Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            )),
            Err(e) => {
                self.sender = None;
                Err(format!("request failed: {e}"))
            }
        }
    }
}

/// What one connection's task counted.
struct Tally {
    ok: u64,
    errors: u64,
    latency: Histogram<u64>,
    last_answer: Option<Instant>,
    first_error: Option<String>,
    slowest: (Duration, Option<std::time::SystemTime>),
}

impl Tally {
    fn new() -> Self {
        Self {
            ok: 0,
            errors: 0,
            latency: new_histogram(),
            last_answer: None,
            first_error: None,
            slowest: (Duration::ZERO, None),
        }
    }

    fn count(&mut self, result: Result<(), String>, latency: Duration) {
        self.last_answer = Some(Instant::now());
        match result {
            Ok(()) => {
                self.ok += 1;
                record(&mut self.latency, latency);
                if latency > self.slowest.0 {
                    self.slowest = (latency, Some(std::time::SystemTime::now()));
                }
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(tallies: Vec<Tally>, started: Instant, unsent: u64) -> Outcome {
        let mut latency = new_histogram();
        let (mut ok, mut errors, mut last, mut first_error) = (0, 0, started, None);
        let mut slowest = (Duration::ZERO, None);
        for t in tallies {
            if t.slowest.0 > slowest.0 {
                slowest = t.slowest;
            }
            ok += t.ok;
            errors += t.errors;
            latency
                .add(&t.latency)
                .expect("histograms with the same bounds");
            last = last.max(t.last_answer.unwrap_or(started));
            if first_error.is_none() {
                first_error = t.first_error;
            }
        }
        Outcome {
            ok,
            errors,
            unsent,
            elapsed: last.saturating_duration_since(started),
            latency,
            started,
            first_error,
            slowest_at: slowest.1,
        }
    }
}

async fn open_all(target: &Target, connections: usize) -> anyhow::Result<Vec<Connection>> {
    let mut all = Vec::with_capacity(connections);
    for _ in 0..connections {
        all.push(Connection::open(target.clone()).await?);
    }
    Ok(all)
}

async fn closed_loop_inner(
    target: Target,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<Outcome> {
    let all = open_all(&target, connections).await?;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = all
        .into_iter()
        .map(|mut connection| {
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut tally = Tally::new();
                while Instant::now() < deadline {
                    let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let sent = Instant::now();
                    let result = connection.send(seq).await;
                    tally.count(result, sent.elapsed());
                }
                tally
            })
        })
        .collect();
    let mut tallies = Vec::with_capacity(tasks.len());
    for task in tasks {
        tallies.push(task.await.context("a load connection panicked")?);
    }
    Ok(Tally::merge(tallies, started, 0))
}

/// A request that is due.
struct Due {
    seq: u64,
    at: Instant,
}
