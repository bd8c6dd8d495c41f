//! Resident memory of a process, from `/proc/<pid>/status` (Linux).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

/// Resident memory now (`VmRSS`) and at its highest so far (`VmHWM`), in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Resident {
    /// `VmRSS`.
    pub now: u64,
    /// `VmHWM`, the high-water mark since the process started.
    pub peak: u64,
}

/// Reads the resident memory of process `pid`.
pub fn resident(pid: u32) -> anyhow::Result<Resident> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{path} has no {name}"))?;
        let kib: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("{path}: unreadable {line:?}"))?;
        Ok(kib * 1024)
    };
    Ok(Resident {
        now: field("VmRSS:")?,
        peak: field("VmHWM:")?,
    })
}

/// Samples `VmRSS` of a process every few milliseconds until stopped, keeping the highest.
#[derive(Debug)]
pub struct PeakSampler {
    stop: Arc<AtomicBool>,
    highest: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakSampler {
    /// Starts sampling process `pid`.
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let highest = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, highest) = (Arc::clone(&stop), Arc::clone(&highest));
            async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(r) = resident(pid) {
                        highest.fetch_max(r.now, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Self {
            stop,
            highest,
            task,
        }
    }

    /// Stops sampling; the highest `VmRSS` seen, in bytes.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.highest.load(Ordering::Relaxed)
    }
}

/// Bytes as MB (10^6 bytes, the unit of the targets).
pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
