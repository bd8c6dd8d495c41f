//! What the benchmark ran on, and how fast its disk makes data durable: the numbers a reader
//! needs to compare results across machines.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

/// The machine.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores available to this process.
    pub cores: usize,
    /// `model name` from `/proc/cpuinfo`.
    pub cpu: String,
    /// `MemTotal`, in GB.
    pub memory_gb: f64,
    /// The kernel release.
    pub kernel: String,
    /// File system type and device holding the SQLite database.
    pub disk: String,
    /// The share of all cores busy (or stolen by the hypervisor) during one second just
    /// before the run, in percent: other work on the machine (a build, another test suite)
    /// takes cores and disk from the measurement.
    pub busy_at_start_pct: f64,
}

impl Machine {
    /// Describes this machine; `data_dir` is where the SQLite database lives.
    pub fn describe(data_dir: &Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_gb = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kib| kib * 1024.0 / 1e9);
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            memory_gb,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            disk: file_system_of(data_dir),
            busy_at_start_pct: busy_percent(Duration::from_secs(1)),
        }
    }
}

/// The share of CPU time not idle (nor waiting for I/O) over `window`, from `/proc/stat`.
fn busy_percent(window: Duration) -> f64 {
    /// (busy, total) jiffies of all cores.
    fn sample() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|f| f.parse().ok())
            .collect();
        let total: u64 = fields.iter().take(8).sum();
        // user nice system idle iowait irq softirq steal
        let idle = fields.get(3)? + fields.get(4)?;
        Some((total - idle, total))
    }
    let Some((busy0, total0)) = sample() else {
        return 0.0;
    };
    std::thread::sleep(window);
    let Some((busy1, total1)) = sample() else {
        return 0.0;
    };
    let total = total1.saturating_sub(total0).max(1);
    100.0 * busy1.saturating_sub(busy0) as f64 / total as f64
}

/// `ext4 on /dev/vda (mounted at /)` for the mount holding `path`.
fn file_system_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && path.starts_with(f[1])).then(|| (f[1], f[0], f[2]))
        })
        .max_by_key(|(mount, _, _)| mount.len())
        .map_or_else(
            || "unknown".into(),
            |(mount, device, fs)| format!("{fs} on {device} (mounted at {mount})"),
        )
}

/// How fast the disk makes a small append durable.
#[derive(Debug, Clone, Serialize)]
pub struct SyncRate {
    /// `fdatasync` calls per second, each after a 4 KiB append (what a WAL commit does).
    pub per_second: f64,
    /// The median time of one, in milliseconds.
    pub p50_ms: f64,
    /// The 99th percentile, in milliseconds.
    pub p99_ms: f64,
    /// The slowest, in milliseconds.
    pub max_ms: f64,
    /// How many took longer than 50 ms.
    pub stalled: u64,
    /// When the slowest ended (`HH:MM:SS.mmm UTC`).
    pub slowest_at: String,
}

/// Appends 4 KiB and `fdatasync`s, over and over for `duration`, in a scratch file in `dir`.
pub fn measure_sync_rate(dir: &Path, duration: Duration) -> anyhow::Result<SyncRate> {
    sync_probe(dir, duration, None)
}

/// [`measure_sync_rate`], at most `rate` times a second when given (a lightly loaded
/// database's commits rather than the disk's limit).
pub fn sync_probe(dir: &Path, duration: Duration, rate: Option<f64>) -> anyhow::Result<SyncRate> {
    let path = dir.join("fsync-probe.bin");
    let mut file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let block = [0x5a_u8; 4096];
    let mut histogram = crate::load::new_histogram();
    let started = Instant::now();
    let mut count = 0_u64;
    let mut slowest = (Duration::ZERO, std::time::SystemTime::now());
    while started.elapsed() < duration {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(count as f64 / rate);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let one = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        let took = one.elapsed();
        crate::load::record(&mut histogram, took);
        if took > slowest.0 {
            slowest = (took, std::time::SystemTime::now());
        }
        count += 1;
    }
    let elapsed = started.elapsed();
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(SyncRate {
        per_second: count as f64 / elapsed.as_secs_f64(),
        p50_ms: histogram.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: histogram.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: histogram.max() as f64 / 1000.0,
        stalled: crate::load::stalled(&histogram),
        slowest_at: crate::load::utc_time(slowest.1),
    })
}
