//! The load generator: exactly N keep-alive HTTP/1.1 connections (hyper), every latency in an
//! HDR histogram (microseconds).
//!
//! - [`closed_loop`]: each connection sends its next request as soon as the previous answer
//!   arrived. Measures throughput; latency is per request.
//! - [`open_loop`]: requests are due at a fixed rate whatever the server does; a request's
//!   latency runs from its *intended* send time, so a stalled server is charged for the
//!   requests it delayed (no coordinated omission). Whichever connection is free takes the
//!   next request and waits for its time on tokio's timer, aimed one 1 ms tick early; a
//!   request sent early counts from its sending, one sent late from its due time, so the
//!   generator's own lateness is charged to the server, never credited to it. (A pacing
//!   thread that slept until each request's time and handed it over cost two thread
//!   wake-ups per request: 20–32 µs of CPU each, against 14–19 µs now and 12 µs in the
//!   closed loop, taken from the two cores the server runs on; BENCHMARKS.md, "The load
//!   generator's own cost".)
//!
//! The generator runs on its own single-threaded tokio runtime: it never takes more than one
//! core from the server under test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    /// When the slowest answer arrived (wall clock), to set a stall beside the database
    /// server's log and the machine's other work.
    pub slowest_at: Option<std::time::SystemTime>,
    /// Open loop: every request sent. Empty otherwise.
    pub sent: Vec<Sent>,
}

/// A request the open loop sent.
#[derive(Debug, Clone, Copy)]
pub struct Sent {
    /// Its sequence number.
    pub seq: u64,
    /// When it was due.
    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "the tests check the pacing against it")
    )]
    pub due: Instant,
    /// Where its latency counts from: its sending, or its due time when it went out late.
    pub counted_from: Instant,
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

/// The resolution of tokio's timer.
const TIMER_TICK: Duration = Duration::from_millis(1);

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
        // Leave the connections a moment to start, so request 0 is not late by construction.
        let started = Instant::now() + Duration::from_millis(20);
        let give_up = started + duration + grace;
        let next = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = all
            .into_iter()
            .map(|mut connection| {
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    let mut tally = Tally::new();
                    loop {
                        let seq = next.fetch_add(1, Ordering::Relaxed);
                        if seq >= count {
                            break;
                        }
                        let due = started + interval.mul_f64(seq as f64);
                        // The timer fires on the first tick after its deadline: aimed a
                        // tick early, the request goes out by its due time.
                        let aim = due.checked_sub(TIMER_TICK).unwrap_or(due);
                        if aim > Instant::now() {
                            tokio::time::sleep_until(aim.into()).await;
                        }
                        // Sent early, it counts from its sending; sent late, from its due
                        // time, so a late generator is charged to the server, never
                        // credited to it.
                        let from = due.min(Instant::now());
                        if Instant::now() >= give_up {
                            // Far behind: stop rather than run for ever; the rest count as
                            // unsent. Every connection sees the same deadline.
                            break;
                        }
                        tally.sent.push(Sent {
                            seq,
                            due,
                            counted_from: from,
                        });
                        let result = connection.send(seq).await;
                        tally.count(result, from.elapsed());
                    }
                    tally
                })
            })
            .collect();
        let mut tallies = Vec::with_capacity(tasks.len());
        for task in tasks {
            tallies.push(task.await.context("a load connection panicked")?);
        }
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
    sent: Vec<Sent>,
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
            sent: Vec::new(),
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
        let mut sent = Vec::new();
        for mut t in tallies {
            sent.append(&mut t.sent);
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
            first_error,
            slowest_at: slowest.1,
            sent,
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
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = all
        .into_iter()
        .map(|mut connection| {
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                let mut tally = Tally::new();
                while Instant::now() < deadline {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use esim_courier_test_support::http_peer::{Peer, Reply};

    use super::{open_loop, Sent, Target, TIMER_TICK};

    fn target(peer: &Peer) -> Target {
        let addr: SocketAddr = peer
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("the peer's address");
        Target {
            addr,
            path: "/".to_owned(),
            bodies: Arc::new(|seq| Bytes::from(seq.to_string())),
        }
    }

    /// Each request the peer received: its sequence number and when it arrived.
    fn arrivals(peer: &Peer) -> Vec<(u64, Instant)> {
        peer.received()
            .iter()
            .map(|r| {
                let seq = std::str::from_utf8(&r.raw).unwrap().parse().unwrap();
                (seq, r.at)
            })
            .collect()
    }

    #[tokio::test]
    async fn the_open_loop_sends_each_request_once_and_never_before_its_time() {
        let peer = Peer::start(Reply::new(200, ""));
        let rate = 400.0;
        let outcome = open_loop(
            target(&peer),
            4,
            rate,
            Duration::from_millis(500),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!((outcome.ok, outcome.errors, outcome.unsent), (200, 0, 0));
        let arrivals = arrivals(&peer);
        let mut seqs: Vec<u64> = arrivals.iter().map(|(seq, _)| *seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..200).collect::<Vec<_>>());
        let sent: std::collections::HashMap<u64, Sent> =
            outcome.sent.iter().map(|s| (s.seq, *s)).collect();
        assert_eq!(sent.len(), 200);
        let step = Duration::from_secs_f64(1.0 / rate);
        for (seq, at) in arrivals.iter() {
            let s = sent[seq];
            // Due one interval after the one before it.
            if let Some(before) = seq.checked_sub(1).map(|b| sent[&b]) {
                let gap = s.due - before.due;
                assert!(gap.abs_diff(step) < Duration::from_micros(10), "{gap:?}");
            }
            // Aimed one timer tick early at most: it arrives no sooner than that before it
            // is due.
            assert!(
                *at + TIMER_TICK >= s.due,
                "request {seq} arrived {:?} before it was due",
                s.due - *at
            );
            // Its latency counts from no later than it was due, and from before it reached
            // the server.
            assert!(s.counted_from <= s.due && s.counted_from <= *at);
        }
    }

    #[tokio::test]
    async fn requests_due_while_the_server_stalls_count_from_their_due_time() {
        // One connection, a request due every 10 ms, and the answer to the first (request 0)
        // held for 300 ms: the requests due meanwhile wait for the connection. Counted from
        // their due time (no coordinated omission), the ones due in the first 150 ms of the
        // stall took 150 ms or more; counted from their sending, only the first would.
        let peer = Peer::start(Reply::new(200, ""));
        peer.then(Reply::new(200, "").after(Duration::from_millis(300)));
        let outcome = open_loop(
            target(&peer),
            1,
            100.0,
            Duration::from_millis(600),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        assert_eq!((outcome.ok, outcome.unsent), (60, 0));
        let slow = outcome
            .latency
            .count_between(150_000, outcome.latency.max().max(150_000));
        assert!(
            slow >= 15,
            "{slow} requests counted 150 ms or more; the stall delayed at least 15 by that much"
        );
    }
}
