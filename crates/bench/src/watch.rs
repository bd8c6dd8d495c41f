//! A witness of what the machine did during the run, so that each stall the benchmark
//! reports comes with what happened around it outside the server under test:
//!
//! - a thread that only sleeps, 10 ms at a time: a wake-up far later than asked means the
//!   machine ran no waiting thread for that long (every core busy, or the VM not scheduled);
//! - a 4 KiB append and `fdatasync` twenty times a second, in a file of this process on the
//!   run's disk: a slow one means the disk held every durable write for that long, whoever
//!   made it (esim-courier's commits wait for exactly this call);
//! - `/proc/pressure/cpu` and `/proc/pressure/io` every 100 ms: how long tasks waited for a
//!   CPU and for I/O.
//!
//! It costs 100 wake-ups and 20 small syncs a second, against the thousands of requests and
//! hundreds of commits a second it watches.

use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use serde::Serialize;

use crate::load::{Outcome, STALL_MS};

/// How long the sleeping thread asks to sleep each time.
const TICK: Duration = Duration::from_millis(10);
/// How often the pressure files are read, in ticks.
const PRESSURE_EVERY: u32 = 10;
/// How often the disk is asked for a durable append.
const SYNC_EVERY: Duration = Duration::from_millis(50);
/// How long samples are kept: longer than any single measurement of the run.
const KEEP: Duration = Duration::from_secs(120);

/// What one sample measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// How much later than asked the sleeping thread woke up.
    LateWakeUp,
    /// One append and `fdatasync`.
    Sync,
    /// `/proc/pressure/cpu` "some" over the sample's window.
    CpuWait,
    /// `/proc/pressure/io` "some" over the sample's window.
    IoWait,
}

/// One sample: what `kind` measured over `[start, end]`, in milliseconds.
#[derive(Debug, Clone, Copy)]
struct Sample {
    start: SystemTime,
    end: SystemTime,
    kind: Kind,
    ms: f64,
}

/// What the machine did while one slow request was in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Around {
    /// The span looked at: the slowest request's latency, ending when it was answered.
    pub span_ms: f64,
    /// The latest wake-up of the sleeping thread, beyond the 10 ms it asked for.
    pub late_wake_up_ms: f64,
    /// The slowest 4 KiB append and `fdatasync`.
    pub slowest_sync_ms: f64,
    /// Time some task waited for a CPU, over the 100 ms windows that overlap the span.
    pub cpu_wait_ms: f64,
    /// Time some task waited for I/O, over the same windows.
    pub io_wait_ms: f64,
}

impl Around {
    /// The machine's stall while the request was in flight, if it had one: the disk, or no
    /// CPU for anyone. A coincidence, not a proof: a request that waits for neither (one of
    /// the raw baseline's, queued behind others) can be in flight during a disk stall too.
    /// For a request answered only after a durable commit, a disk stall through most of its
    /// time is what held it.
    pub fn cause(&self) -> &'static str {
        let stall = STALL_MS as f64;
        if self.slowest_sync_ms >= stall {
            "the disk stalled meanwhile (outside the server)"
        } else if self.late_wake_up_ms >= stall {
            "the machine ran no waiting thread meanwhile (outside the server)"
        } else {
            "no stall of the machine meanwhile"
        }
    }
}

impl std::fmt::Display for Around {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "in its {:.0} ms: a separate 4 KiB sync took up to {:.1} ms, a sleeping thread woke up to {:.1} ms late, \
             tasks waited {:.0} ms for I/O and {:.0} ms for a CPU: {}",
            self.span_ms,
            self.slowest_sync_ms,
            self.late_wake_up_ms,
            self.io_wait_ms,
            self.cpu_wait_ms,
            self.cause()
        )
    }
}

/// Summarises the samples that overlap `[from, to]`.
fn around(samples: &VecDeque<Sample>, from: SystemTime, to: SystemTime) -> Around {
    let span_ms = to
        .duration_since(from)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    let mut around = Around {
        span_ms,
        ..Around::default()
    };
    for s in samples.iter().filter(|s| s.end >= from && s.start <= to) {
        match s.kind {
            Kind::LateWakeUp => around.late_wake_up_ms = around.late_wake_up_ms.max(s.ms),
            Kind::Sync => around.slowest_sync_ms = around.slowest_sync_ms.max(s.ms),
            Kind::CpuWait => around.cpu_wait_ms += s.ms,
            Kind::IoWait => around.io_wait_ms += s.ms,
        }
    }
    around
}

/// The running witness; stops when dropped.
#[derive(Debug)]
pub struct Watch {
    samples: Arc<Mutex<VecDeque<Sample>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Watch {
    /// Starts the two threads; the sync probe's file is created in `dir`.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let samples = Arc::new(Mutex::new(VecDeque::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let path = dir.join("watch-sync.bin");
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let sleeper = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::Builder::new()
                .name("watch-sleep".into())
                .spawn(move || sleep_and_read_pressure(&samples, &stop))?
        };
        let syncer = {
            let (samples, stop) = (samples.clone(), stop.clone());
            std::thread::Builder::new()
                .name("watch-sync".into())
                .spawn(move || sync_now_and_then(file, &samples, &stop))?
        };
        Ok(Self {
            samples,
            stop,
            threads: vec![sleeper, syncer],
        })
    }

    /// What the machine did while `outcome`'s slowest request was in flight, if it stalled.
    pub fn around_slowest(&self, outcome: &Outcome) -> Option<Around> {
        let at = outcome.slowest_at.filter(|_| outcome.stalled() > 0)?;
        let latency = Duration::from_micros(outcome.latency.max());
        let from = at.checked_sub(latency).unwrap_or(at);
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        Some(around(&samples, from, at))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn push(samples: &Mutex<VecDeque<Sample>>, sample: Sample) {
    let mut samples = samples.lock().unwrap_or_else(PoisonError::into_inner);
    while samples
        .front()
        .is_some_and(|s| sample.end.duration_since(s.end).unwrap_or_default() > KEEP)
    {
        samples.pop_front();
    }
    samples.push_back(sample);
}

/// The sleeping thread; it also reads the pressure files every [`PRESSURE_EVERY`] ticks.
fn sleep_and_read_pressure(samples: &Mutex<VecDeque<Sample>>, stop: &AtomicBool) {
    let mut pressure = (SystemTime::now(), stalled_us());
    let mut ticks = 0_u32;
    while !stop.load(Ordering::Relaxed) {
        let (start, asked) = (SystemTime::now(), Instant::now());
        std::thread::sleep(TICK);
        let late = asked.elapsed().saturating_sub(TICK);
        let end = SystemTime::now();
        push(
            samples,
            Sample {
                start,
                end,
                kind: Kind::LateWakeUp,
                ms: late.as_secs_f64() * 1000.0,
            },
        );
        ticks += 1;
        if ticks.is_multiple_of(PRESSURE_EVERY) {
            let now = stalled_us();
            if let (Some((cpu0, io0)), Some((cpu, io))) = (pressure.1, now) {
                for (kind, us) in [
                    (Kind::CpuWait, cpu.saturating_sub(cpu0)),
                    (Kind::IoWait, io.saturating_sub(io0)),
                ] {
                    #[allow(clippy::cast_precision_loss)]
                    let ms = us as f64 / 1000.0;
                    push(
                        samples,
                        Sample {
                            start: pressure.0,
                            end,
                            kind,
                            ms,
                        },
                    );
                }
            }
            pressure = (end, now);
        }
    }
}

/// The sync probe's thread.
fn sync_now_and_then(
    mut file: std::fs::File,
    samples: &Mutex<VecDeque<Sample>>,
    stop: &AtomicBool,
) {
    let block = [0x5a_u8; 4096];
    let mut written = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(SYNC_EVERY);
        // Kept small: start again at the beginning every 4 MB.
        if written >= 4 << 20 {
            if file.set_len(0).is_err() || file.seek(SeekFrom::Start(0)).is_err() {
                return;
            }
            written = 0;
        }
        let (start, began) = (SystemTime::now(), Instant::now());
        if file
            .write_all(&block)
            .and_then(|()| file.sync_data())
            .is_err()
        {
            // Without a disk to probe there is nothing to witness; the rest goes on.
            return;
        }
        written += block.len() as u64;
        push(
            samples,
            Sample {
                start,
                end: SystemTime::now(),
                kind: Kind::Sync,
                ms: began.elapsed().as_secs_f64() * 1000.0,
            },
        );
    }
}

/// The "some" totals of `/proc/pressure/cpu` and `/proc/pressure/io`, in microseconds;
/// `None` on a kernel without pressure stall information.
fn stalled_us() -> Option<(u64, u64)> {
    fn some_total(path: &str) -> Option<u64> {
        std::fs::read_to_string(path)
            .ok()?
            .lines()
            .find(|l| l.starts_with("some"))?
            .split_whitespace()
            .find_map(|f| f.strip_prefix("total="))?
            .parse()
            .ok()
    }
    Some((
        some_total("/proc/pressure/cpu")?,
        some_total("/proc/pressure/io")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_000_000 + ms)
    }

    fn sample(kind: Kind, start: u64, end: u64, ms: f64) -> Sample {
        Sample {
            start: at(start),
            end: at(end),
            kind,
            ms,
        }
    }

    #[test]
    fn only_the_samples_overlapping_the_span_count() {
        let samples: VecDeque<Sample> = [
            // Before the span: a slow sync that must not be blamed.
            sample(Kind::Sync, 0, 300, 300.0),
            sample(Kind::LateWakeUp, 380, 395, 5.0),
            // Overlapping it.
            sample(Kind::Sync, 420, 520, 97.0),
            sample(Kind::Sync, 560, 561, 0.3),
            sample(Kind::LateWakeUp, 500, 512, 2.0),
            sample(Kind::IoWait, 400, 500, 99.0),
            sample(Kind::IoWait, 500, 600, 40.0),
            sample(Kind::CpuWait, 400, 500, 1.0),
            sample(Kind::CpuWait, 500, 600, 60.0),
            // After it.
            sample(Kind::IoWait, 600, 700, 80.0),
            sample(Kind::LateWakeUp, 650, 700, 40.0),
        ]
        .into_iter()
        .collect();
        let seen = around(&samples, at(410), at(590));
        assert_eq!(
            seen,
            Around {
                span_ms: 180.0,
                late_wake_up_ms: 2.0,
                slowest_sync_ms: 97.0,
                cpu_wait_ms: 61.0,
                io_wait_ms: 139.0,
            }
        );
        assert_eq!(
            seen.cause(),
            "the disk stalled meanwhile (outside the server)"
        );
    }

    #[test]
    fn the_cause_names_the_disk_first_then_the_cpu_then_nothing() {
        let quiet = Around {
            span_ms: 120.0,
            late_wake_up_ms: 3.0,
            slowest_sync_ms: 0.4,
            cpu_wait_ms: 80.0,
            io_wait_ms: 5.0,
        };
        assert_eq!(quiet.cause(), "no stall of the machine meanwhile");
        let starved = Around {
            late_wake_up_ms: 90.0,
            ..quiet
        };
        assert_eq!(
            starved.cause(),
            "the machine ran no waiting thread meanwhile (outside the server)"
        );
        let both = Around {
            slowest_sync_ms: 60.0,
            ..starved
        };
        assert_eq!(
            both.cause(),
            "the disk stalled meanwhile (outside the server)"
        );
    }

    /// The running watch records all four kinds of sample (the pressure ones where the
    /// kernel has them).
    #[test]
    fn the_watch_records_wake_ups_syncs_and_pressure() {
        let dir = tempfile::tempdir().unwrap();
        let watch = Watch::start(dir.path()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let kinds = loop {
            std::thread::sleep(Duration::from_millis(50));
            let kinds: Vec<Kind> = watch
                .samples
                .lock()
                .unwrap()
                .iter()
                .map(|s| s.kind)
                .collect();
            let has = |k| kinds.contains(&k);
            let pressure = stalled_us().is_none() || (has(Kind::CpuWait) && has(Kind::IoWait));
            if (has(Kind::LateWakeUp) && has(Kind::Sync) && pressure) || Instant::now() > deadline {
                break kinds;
            }
        };
        assert!(kinds.contains(&Kind::LateWakeUp), "{kinds:?}");
        assert!(kinds.contains(&Kind::Sync), "{kinds:?}");
        if stalled_us().is_some() {
            assert!(kinds.contains(&Kind::CpuWait), "{kinds:?}");
            assert!(kinds.contains(&Kind::IoWait), "{kinds:?}");
        }
        drop(watch);
    }

    #[test]
    fn samples_older_than_the_window_are_dropped() {
        let samples = Mutex::new(VecDeque::new());
        push(&samples, sample(Kind::Sync, 0, 1, 0.2));
        push(&samples, sample(Kind::Sync, 100, 101, 0.2));
        let later = 1 + u64::try_from(KEEP.as_millis()).unwrap() + 50;
        push(&samples, sample(Kind::Sync, later, later + 1, 0.2));
        let kept: Vec<SystemTime> = samples.lock().unwrap().iter().map(|s| s.end).collect();
        assert_eq!(kept, vec![at(101), at(later + 1)]);
    }
}
