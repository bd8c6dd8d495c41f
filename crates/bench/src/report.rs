//! The results: what was measured, the targets they are held to, the table printed at the end
//! and `results.json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::load::Outcome;
use crate::machine::{Machine, SyncRate};

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The machine.
    pub machine: Machine,
    /// The disk's durable-append rate where the SQLite file lives.
    pub disk_sync: SyncRate,
    /// How the run was set up.
    pub settings: Settings,
    /// Intake throughput and latency: a (baseline), b (SQLite), c (PostgreSQL).
    pub intake: Vec<Intake>,
    /// Latency against offered rate, one curve per system (the plot).
    pub curves: Vec<Curve>,
    /// Webhook to accepted email.
    pub end_to_end: Vec<EndToEnd>,
    /// Activation emails per second.
    pub emails: Option<EmailRates>,
    /// What was skipped or went wrong, in sentences.
    pub notes: Vec<String>,
}

/// The run's settings.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Concurrent connections of the throughput runs.
    pub connections: usize,
    /// Seconds of each throughput run.
    pub duration_s: f64,
    /// Seconds of each step of the latency curve.
    pub step_s: f64,
    /// HTTP workers of both esim-courier and the baseline.
    pub workers: usize,
}

/// One system's closed-loop intake.
#[derive(Debug, Clone, Serialize)]
pub struct Intake {
    /// `a`, `b` or `c`.
    pub key: &'static str,
    /// What was measured.
    pub name: String,
    /// Answers 200 per second.
    pub throughput: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Highest latency, milliseconds.
    pub max_ms: f64,
    /// Requests answered 200.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Resident memory after start, idle, MB.
    pub rss_idle_mb: f64,
    /// Highest resident memory during the run, MB.
    pub rss_peak_mb: f64,
}

impl Intake {
    /// Summarises a closed-loop outcome.
    pub fn new(key: &'static str, name: &str, outcome: &Outcome, rss: (f64, f64)) -> Self {
        Self {
            key,
            name: name.to_owned(),
            throughput: outcome.throughput(),
            p50_ms: outcome.latency_ms(0.5),
            p99_ms: outcome.latency_ms(0.99),
            max_ms: outcome.max_ms(),
            requests: outcome.ok,
            errors: outcome.errors,
            rss_idle_mb: rss.0,
            rss_peak_mb: rss.1,
        }
    }
}

/// Latency against offered rate for one system.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// The system.
    pub name: String,
    /// One point per rate, in increasing order.
    pub points: Vec<CurvePoint>,
}

/// Open-loop latency at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// Requests per second asked for.
    pub offered_rate: f64,
    /// Answers 200 per second obtained.
    pub achieved_rate: f64,
    /// Median latency from intended send time, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Highest, milliseconds.
    pub max_ms: f64,
    /// Failed requests plus requests never sent.
    pub lost: u64,
}

impl CurvePoint {
    /// Summarises an open-loop outcome at `rate`.
    pub fn new(rate: f64, outcome: &Outcome) -> Self {
        Self {
            offered_rate: rate,
            achieved_rate: outcome.throughput(),
            p50_ms: outcome.latency_ms(0.5),
            p99_ms: outcome.latency_ms(0.99),
            max_ms: outcome.max_ms(),
            lost: outcome.errors + outcome.unsent,
        }
    }
}

/// End-to-end latency at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct EndToEnd {
    /// Webhooks per second.
    pub rate: f64,
    /// Webhooks accepted.
    pub webhooks: u64,
    /// Emails that arrived for them.
    pub emails: u64,
    /// Webhook sent to email received, median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Highest, milliseconds.
    pub max_ms: f64,
    /// The webhook's own answer, median, milliseconds.
    pub intake_p50_ms: f64,
}

/// Activation emails per second.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EmailRates {
    /// Emails sent in the timed batch.
    pub count: u64,
    /// Rendered and accepted by the SMTP server, per second.
    pub sent_per_second: f64,
    /// Rendered only, one thread, per second.
    pub rendered_per_second: f64,
}

/// One target and whether it was met.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    /// The target, in words.
    pub target: String,
    /// The measured value, in words.
    pub measured: String,
    /// Met or not.
    pub met: bool,
}

impl Results {
    /// The system `key`'s intake, if it was measured.
    pub fn intake(&self, key: &str) -> Option<&Intake> {
        self.intake.iter().find(|i| i.key == key)
    }

    /// Throughput of `key` over the baseline's.
    pub fn ratio(&self, key: &str) -> Option<f64> {
        Some(self.intake(key)?.throughput / self.intake("a")?.throughput)
    }

    /// The targets of the issue, checked against what was measured.
    pub fn targets(&self) -> Vec<TargetCheck> {
        let mut checks = Vec::new();
        if let Some(ratio) = self.ratio("b") {
            checks.push(TargetCheck {
                target: "SQLite intake >= 50% of baseline throughput".into(),
                measured: format!("{:.1}%", ratio * 100.0),
                met: ratio >= 0.5,
            });
        }
        for (key, engine) in [("b", "SQLite"), ("c", "PostgreSQL")] {
            if let Some(i) = self.intake(key) {
                checks.push(TargetCheck {
                    target: format!(
                        "{engine} intake p99 <= 5 ms at {} connections",
                        self.settings.connections
                    ),
                    measured: format!("{:.2} ms", i.p99_ms),
                    met: i.p99_ms <= 5.0,
                });
            }
        }
        if let Some(low) = self.end_to_end.first() {
            checks.push(TargetCheck {
                target: format!("end-to-end p50 <= 50 ms when idle ({}/s)", low.rate),
                measured: format!("{:.1} ms", low.p50_ms),
                met: low.p50_ms <= 50.0,
            });
        }
        if let Some(e) = self.emails {
            checks.push(TargetCheck {
                target: ">= 1,000 activation emails sent per second".into(),
                measured: format!("{:.0}/s", e.sent_per_second),
                met: e.sent_per_second >= 1000.0,
            });
        }
        for (key, engine) in [("b", "SQLite"), ("c", "PostgreSQL")] {
            if let Some(i) = self.intake(key) {
                checks.push(TargetCheck {
                    target: format!("resident memory <= 50 MB idle ({engine})"),
                    measured: format!("{:.1} MB", i.rss_idle_mb),
                    met: i.rss_idle_mb <= 50.0,
                });
            }
        }
        checks
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let s = &self.settings;
        let _ = writeln!(
            out,
            "machine: {} cores, {}, {:.1} GB RAM, kernel {}, disk {}; {:.0}% busy before the run",
            m.cores, m.cpu, m.memory_gb, m.kernel, m.disk, m.busy_at_start_pct
        );
        let _ = writeln!(
            out,
            "disk: {:.0} fdatasync/s after a 4 KiB append (p50 {:.2} ms, p99 {:.2} ms)",
            self.disk_sync.per_second, self.disk_sync.p50_ms, self.disk_sync.p99_ms
        );
        let _ = writeln!(
            out,
            "load: {} keep-alive connections, {} s per throughput run; {} HTTP workers each\n",
            s.connections, s.duration_s, s.workers
        );

        let _ = writeln!(
            out,
            "{:<44} {:>11} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9}",
            "intake (closed loop)",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "errors",
            "RSS idle",
            "RSS peak"
        );
        for i in &self.intake {
            let _ = writeln!(
                out,
                "{:<44} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>6.1} MB {:>6.1} MB",
                format!("{}: {}", i.key, i.name),
                i.throughput,
                i.p50_ms,
                i.p99_ms,
                i.max_ms,
                i.errors,
                i.rss_idle_mb,
                i.rss_peak_mb
            );
        }
        for (key, label) in [
            ("b", "b/a (SQLite / baseline)"),
            ("c", "c/a (PostgreSQL / baseline)"),
        ] {
            match self.ratio(key) {
                Some(r) => {
                    let _ = writeln!(out, "{label:<44} {r:>11.3}");
                }
                None => {
                    let _ = writeln!(out, "{label:<44} {:>11}", "n/a");
                }
            }
        }

        let _ = writeln!(
            out,
            "\n{:<44} {:>11} {:>11} {:>8} {:>8} {:>8}",
            "latency vs rate (open loop)", "offered/s", "achieved/s", "p50 ms", "p99 ms", "lost"
        );
        for c in &self.curves {
            for p in &c.points {
                let _ = writeln!(
                    out,
                    "{:<44} {:>11.0} {:>11.0} {:>8.2} {:>8.2} {:>8}",
                    c.name, p.offered_rate, p.achieved_rate, p.p50_ms, p.p99_ms, p.lost
                );
            }
        }

        let _ = writeln!(
            out,
            "\n{:<44} {:>11} {:>8} {:>8} {:>8} {:>11}",
            "d: webhook -> email accepted by SMTP",
            "emails",
            "p50 ms",
            "p99 ms",
            "max ms",
            "intake p50"
        );
        for e in &self.end_to_end {
            let _ = writeln!(
                out,
                "{:<44} {:>11} {:>8.1} {:>8.1} {:>8.1} {:>8.2} ms",
                format!("SQLite, {}/s", e.rate),
                format!("{}/{}", e.emails, e.webhooks),
                e.p50_ms,
                e.p99_ms,
                e.max_ms,
                e.intake_p50_ms
            );
        }
        if let Some(e) = self.emails {
            let _ = writeln!(
                out,
                "\n{:<44} {:>11.0}   ({} emails)",
                "e: activation emails rendered + sent /s", e.sent_per_second, e.count
            );
            let _ = writeln!(
                out,
                "{:<44} {:>11.0}",
                "   rendered only /s (one thread)", e.rendered_per_second
            );
        }

        let _ = writeln!(out, "\n{:<56} {:>14}  result", "target", "measured");
        for t in self.targets() {
            let _ = writeln!(
                out,
                "{:<56} {:>14}  {}",
                t.target,
                t.measured,
                if t.met { "PASS" } else { "MISS" }
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }

    /// Writes the results, the targets included, as JSON.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct Document<'a> {
            #[serde(flatten)]
            results: &'a Results,
            ratio_sqlite_to_baseline: Option<f64>,
            ratio_postgres_to_baseline: Option<f64>,
            targets: Vec<TargetCheck>,
        }
        let document = Document {
            results: self,
            ratio_sqlite_to_baseline: self.ratio("b"),
            ratio_postgres_to_baseline: self.ratio("c"),
            targets: self.targets(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&document)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}
