//! The results: what was measured, the targets they are held to, the table printed at the end
//! and `results.json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use crate::load::Outcome;
use crate::machine::{Machine, SyncRate};
use crate::watch::Around;

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// The machine.
    pub machine: Machine,
    /// The disk's durable-append rate where the SQLite file lives.
    pub disk_sync: SyncRate,
    /// How the run was set up.
    pub settings: Settings,
    /// Intake throughput and latency: a (baseline), b (SQLite), c (PostgreSQL), s (the store
    /// alone on SQLite), p (the minimal PostgreSQL write), n and m (the naive peer on SQLite
    /// and PostgreSQL).
    pub intake: Vec<Intake>,
    /// Latency against offered rate, one curve per system (the plot).
    pub curves: Vec<Curve>,
    /// The rate each system with an outbox (b, c) takes indefinitely, its dispatcher
    /// delivering as fast as webhooks come, and its latency at 75 % of that rate.
    pub sustained: Vec<Sustained>,
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
    /// `a`, `b`, `c`, `s`, `p`, `n` or `m`.
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
    /// Requests slower than 50 ms (stalls).
    pub stalled: u64,
    /// What the machine did while the slowest request was in flight, if it stalled.
    pub machine_at_slowest: Option<Around>,
    /// Resident memory after start, idle, MB (servers in a process of their own).
    pub rss_idle_mb: Option<f64>,
    /// Highest resident memory during the run, MB.
    pub rss_peak_mb: Option<f64>,
}

impl Intake {
    /// Summarises a closed-loop outcome; `machine` is what the machine did around its
    /// slowest request.
    pub fn new(
        key: &'static str,
        name: &str,
        outcome: &Outcome,
        machine: Option<Around>,
        rss: Option<(f64, f64)>,
    ) -> Self {
        Self {
            key,
            name: name.to_owned(),
            throughput: outcome.throughput(),
            p50_ms: outcome.latency_ms(0.5),
            p99_ms: outcome.latency_ms(0.99),
            max_ms: outcome.max_ms(),
            requests: outcome.ok,
            errors: outcome.errors,
            stalled: outcome.stalled(),
            machine_at_slowest: machine,
            rss_idle_mb: rss.map(|r| r.0),
            rss_peak_mb: rss.map(|r| r.1),
        }
    }
}

/// Latency against offered rate for one system.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// The system's key (`a`, `b`, ...).
    pub key: &'static str,
    /// The system.
    pub name: String,
    /// One point per rate, in increasing order.
    pub points: Vec<CurvePoint>,
}

/// Open-loop latency at one rate.
#[derive(Debug, Clone, Serialize)]
pub struct CurvePoint {
    /// The offered rate as a fraction of the system's closed-loop throughput.
    pub fraction: f64,
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
    /// Requests slower than 50 ms (stalls).
    pub stalled: u64,
    /// What the machine did while the slowest request was in flight, if it stalled.
    pub machine_at_slowest: Option<Around>,
}

impl CurvePoint {
    /// Summarises an open-loop outcome at `rate`, `fraction` of the closed-loop throughput;
    /// `machine` is what the machine did around its slowest request.
    pub fn new(fraction: f64, rate: f64, outcome: &Outcome, machine: Option<Around>) -> Self {
        Self {
            fraction,
            offered_rate: rate,
            achieved_rate: outcome.throughput(),
            p50_ms: outcome.latency_ms(0.5),
            p99_ms: outcome.latency_ms(0.99),
            max_ms: outcome.max_ms(),
            lost: outcome.errors + outcome.unsent,
            stalled: outcome.stalled(),
            machine_at_slowest: machine,
        }
    }
}

/// What a system with an outbox takes indefinitely. The closed loop measures how fast
/// webhooks are taken while the dispatcher falls behind (tens of thousands of jobs are left
/// after 10 s); here the dispatcher must keep up: a rate is sustained when its open-loop run
/// ends with less than one second's worth of jobs undelivered.
#[derive(Debug, Clone, Serialize)]
pub struct Sustained {
    /// `b` or `c`.
    pub key: &'static str,
    /// The system.
    pub name: String,
    /// Jobs delivered per second with no webhooks arriving (the closed loop's backlog, drained
    /// after it).
    pub drain_per_s: f64,
    /// Where to start looking: `1 / (1 / throughput + 1 / drain)`, the rate at which intake
    /// and delivery, sharing the cores, use them all.
    pub estimate: f64,
    /// The rates tried, highest first, until one was sustained.
    pub tries: Vec<SustainTry>,
    /// The highest rate tried that was sustained.
    pub rate: Option<f64>,
    /// Open-loop latency at 75 % of `rate`.
    pub at_75: Option<CurvePoint>,
}

/// One rate tried for [`Sustained`].
#[derive(Debug, Clone, Serialize)]
pub struct SustainTry {
    /// Webhooks per second asked for.
    pub offered_rate: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Failed requests plus requests never sent.
    pub lost: u64,
    /// Jobs not yet delivered when the run ended.
    pub backlog: u64,
    /// Whether that backlog was under one second's worth of the offered rate, with nothing
    /// lost.
    pub sustained: bool,
}

impl SustainTry {
    /// Judges an open-loop run at `rate` that left `backlog` jobs undelivered.
    pub fn new(rate: f64, outcome: &Outcome, backlog: u64) -> Self {
        let lost = outcome.errors + outcome.unsent;
        // Counts of jobs fit an f64 exactly up to 2^53.
        #[allow(clippy::cast_precision_loss)]
        let sustained = lost == 0 && (backlog as f64) < rate;
        Self {
            offered_rate: rate,
            p99_ms: outcome.latency_ms(0.99),
            lost,
            backlog,
            sustained,
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
        self.ratio_of(key, "a")
    }

    /// Throughput of `key` over that of `base`.
    pub fn ratio_of(&self, key: &str, base: &str) -> Option<f64> {
        Some(self.intake(key)?.throughput / self.intake(base)?.throughput)
    }

    /// The ratios the table prints: `(key, base, label)`.
    const RATIOS: [(&'static str, &'static str, &'static str); 6] = [
        ("b", "a", "b/a (SQLite / HTTP baseline)"),
        ("b", "s", "b/s (SQLite / its store alone)"),
        ("c", "p", "c/p (PostgreSQL / minimal write)"),
        ("c", "a", "c/a (PostgreSQL / HTTP baseline)"),
        ("b", "n", "b/n (SQLite / naive peer)"),
        ("c", "m", "c/m (PostgreSQL / naive peer)"),
    ];

    /// The open-loop point of `key` at `fraction` of its throughput.
    fn point(&self, key: &str, fraction: f64) -> Option<&CurvePoint> {
        self.curves
            .iter()
            .find(|c| c.key == key)?
            .points
            .iter()
            .find(|p| (p.fraction - fraction).abs() < 1e-9)
    }

    /// The targets of the issues, checked against what was measured.
    pub fn targets(&self) -> Vec<TargetCheck> {
        let mut checks = Vec::new();
        for (key, base, goal) in [("b", "a", 0.35), ("c", "p", 0.6)] {
            if let Some(ratio) = self.ratio_of(key, base) {
                checks.push(TargetCheck {
                    target: format!("{key}/{base} >= {goal}"),
                    measured: format!("{ratio:.3}"),
                    met: ratio >= goal,
                });
            }
        }
        for (key, engine) in [("b", "SQLite"), ("c", "PostgreSQL")] {
            if let Some(p) = self.point(key, 0.75) {
                checks.push(TargetCheck {
                    target: format!("{engine} p99 <= 5 ms, open loop at 75% of throughput"),
                    measured: format!("{:.2} ms", p.p99_ms),
                    met: p.p99_ms <= 5.0,
                });
            }
        }
        for s in &self.sustained {
            let engine = if s.key == "b" { "SQLite" } else { "PostgreSQL" };
            let (measured, met) = match &s.at_75 {
                Some(p) => (format!("{:.2} ms", p.p99_ms), p.p99_ms <= 5.0),
                None => ("no rate sustained".to_owned(), false),
            };
            checks.push(TargetCheck {
                target: format!("{engine} p99 <= 5 ms at 75% of sustained (informative)"),
                measured,
                met,
            });
        }
        for (key, engine) in [("b", "SQLite"), ("c", "PostgreSQL")] {
            let Some(i) = self.intake(key) else { continue };
            let curve = self.curves.iter().filter(|c| c.key == key);
            let points: Vec<&CurvePoint> = curve.flat_map(|c| c.points.iter()).collect();
            let lost = i.errors + points.iter().map(|p| p.lost).sum::<u64>();
            let stalled = i.stalled + points.iter().map(|p| p.stalled).sum::<u64>();
            // The slowest request of the closed loop and the curve, and what the machine did
            // while it was in flight.
            let (max, machine) = points
                .iter()
                .map(|p| (p.max_ms, p.machine_at_slowest))
                .fold((i.max_ms, i.machine_at_slowest), |slowest, p| {
                    if p.0 > slowest.0 {
                        p
                    } else {
                        slowest
                    }
                });
            checks.push(TargetCheck {
                target: format!("{engine}: no failed or lost request"),
                measured: format!("{lost}"),
                met: lost == 0,
            });
            checks.push(TargetCheck {
                target: format!("{engine}: no request above 100 ms ({stalled} above 50)"),
                measured: match machine.filter(|_| max > 100.0) {
                    Some(around) => format!("max {max:.1} ms: {}", around.cause()),
                    None => format!("max {max:.1} ms"),
                },
                met: max <= 100.0,
            });
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
            if let Some(idle) = self.intake(key).and_then(|i| i.rss_idle_mb) {
                checks.push(TargetCheck {
                    target: format!("resident memory <= 50 MB idle ({engine})"),
                    measured: format!("{idle:.1} MB"),
                    met: idle <= 50.0,
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
            "{:<44} {:>11} {:>8} {:>8} {:>8} {:>7} {:>7} {:>9} {:>9}",
            "intake (closed loop)",
            "req/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            ">50 ms",
            "errors",
            "RSS idle",
            "RSS peak"
        );
        let mb = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1} MB"));
        for i in &self.intake {
            let _ = writeln!(
                out,
                "{:<44} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>7} {:>9} {:>9}",
                format!("{}: {}", i.key, i.name),
                i.throughput,
                i.p50_ms,
                i.p99_ms,
                i.max_ms,
                i.stalled,
                i.errors,
                mb(i.rss_idle_mb),
                mb(i.rss_peak_mb)
            );
        }
        for (key, base, label) in Self::RATIOS {
            if let Some(r) = self.ratio_of(key, base) {
                let _ = writeln!(out, "{label:<44} {r:>11.3}");
            }
        }

        let _ = writeln!(
            out,
            "\n{:<44} {:>11} {:>11} {:>8} {:>8} {:>8} {:>7} {:>6}",
            "latency vs rate (open loop)",
            "offered/s",
            "achieved/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            ">50 ms",
            "lost"
        );
        for c in &self.curves {
            for p in &c.points {
                let _ = writeln!(
                    out,
                    "{:<44} {:>11.0} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>6}",
                    c.name,
                    p.offered_rate,
                    p.achieved_rate,
                    p.p50_ms,
                    p.p99_ms,
                    p.max_ms,
                    p.stalled,
                    p.lost
                );
            }
        }

        if !self.sustained.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<44} {:>11} {:>11} {:>8} {:>8} {:>8}",
                "sustained (dispatcher keeping up)",
                "drain/s",
                "estimate/s",
                "tried/s",
                "p99 ms",
                "backlog"
            );
        }
        for s in &self.sustained {
            for t in &s.tries {
                let _ = writeln!(
                    out,
                    "{:<44} {:>11.0} {:>11.0} {:>8.0} {:>8.2} {:>8}{}",
                    s.name,
                    s.drain_per_s,
                    s.estimate,
                    t.offered_rate,
                    t.p99_ms,
                    t.backlog,
                    if t.sustained { "  sustained" } else { "" }
                );
            }
            match (&s.rate, &s.at_75) {
                (Some(rate), Some(p)) => {
                    let _ = writeln!(
                        out,
                        "{:<44} {:>11.0}/s sustained; at 75% ({:.0}/s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} lost",
                        s.name, rate, p.offered_rate, p.p50_ms, p.p99_ms, p.max_ms, p.lost
                    );
                }
                _ => {
                    let _ = writeln!(out, "{:<44} no rate tried was sustained", s.name);
                }
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
            ratio_sqlite_to_store_alone: Option<f64>,
            ratio_postgres_to_minimal_write: Option<f64>,
            ratio_sqlite_to_naive_peer: Option<f64>,
            ratio_postgres_to_naive_peer: Option<f64>,
            targets: Vec<TargetCheck>,
        }
        let document = Document {
            results: self,
            ratio_sqlite_to_baseline: self.ratio("b"),
            ratio_postgres_to_baseline: self.ratio("c"),
            ratio_sqlite_to_store_alone: self.ratio_of("b", "s"),
            ratio_postgres_to_minimal_write: self.ratio_of("c", "p"),
            ratio_sqlite_to_naive_peer: self.ratio_of("b", "n"),
            ratio_postgres_to_naive_peer: self.ratio_of("c", "m"),
            targets: self.targets(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&document)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use super::SustainTry;
    use crate::load::Outcome;

    fn outcome(errors: u64, unsent: u64) -> Outcome {
        Outcome {
            ok: 40_000,
            errors,
            unsent,
            elapsed: Duration::from_secs(10),
            latency: Histogram::new(3).expect("histogram"),
            first_error: None,
            slowest_at: None,
            sent: Vec::new(),
        }
    }

    #[test]
    fn a_rate_is_sustained_when_less_than_a_second_of_jobs_is_left_and_nothing_lost() {
        assert!(SustainTry::new(4000.0, &outcome(0, 0), 3999).sustained);
        assert!(!SustainTry::new(4000.0, &outcome(0, 0), 4000).sustained);
        assert!(!SustainTry::new(4000.0, &outcome(1, 0), 0).sustained);
        assert!(!SustainTry::new(4000.0, &outcome(0, 1), 0).sustained);
    }
}

#[cfg(test)]
mod stall_target_tests {
    use super::{Curve, CurvePoint, Intake, Results, Settings};
    use crate::machine::{Machine, SyncRate};
    use crate::watch::Around;

    fn point(max_ms: f64, stalled: u64, machine: Option<Around>) -> CurvePoint {
        CurvePoint {
            fraction: 0.5,
            offered_rate: 1000.0,
            achieved_rate: 1000.0,
            p50_ms: 1.0,
            p99_ms: 5.0,
            max_ms,
            lost: 0,
            stalled,
            machine_at_slowest: machine,
        }
    }

    fn results(intake_max_ms: f64, points: Vec<CurvePoint>) -> Results {
        Results {
            machine: Machine {
                cores: 2,
                cpu: "test".into(),
                memory_gb: 1.0,
                kernel: "test".into(),
                disk: "test".into(),
                busy_at_start_pct: 0.0,
            },
            disk_sync: SyncRate {
                per_second: 1000.0,
                p50_ms: 0.2,
                p99_ms: 0.4,
                max_ms: 1.0,
                stalled: 0,
                slowest_at: String::new(),
            },
            settings: Settings {
                connections: 32,
                duration_s: 10.0,
                step_s: 3.0,
                workers: 2,
            },
            intake: vec![Intake {
                key: "b",
                name: "esim-courier, SQLite".into(),
                throughput: 10_000.0,
                p50_ms: 1.0,
                p99_ms: 5.0,
                max_ms: intake_max_ms,
                requests: 100_000,
                errors: 0,
                stalled: 1,
                machine_at_slowest: None,
                rss_idle_mb: None,
                rss_peak_mb: None,
            }],
            curves: vec![Curve {
                key: "b",
                name: "esim-courier, SQLite".into(),
                points,
            }],
            sustained: Vec::new(),
            end_to_end: Vec::new(),
            emails: None,
            notes: Vec::new(),
        }
    }

    fn stall_check(results: &Results) -> (String, String, bool) {
        let check = results
            .targets()
            .into_iter()
            .find(|c| c.target.starts_with("SQLite: no request above 100 ms"))
            .expect("the stall target");
        (check.target, check.measured, check.met)
    }

    /// The slowest request of the closed loop and the curve decides the target, and the
    /// machine's stall while it was in flight is named beside it.
    #[test]
    fn the_stall_target_names_what_the_machine_did_during_the_slowest_request() {
        let disk = Around {
            span_ms: 180.0,
            slowest_sync_ms: 150.0,
            ..Around::default()
        };
        let quiet = Around {
            span_ms: 90.0,
            ..Around::default()
        };
        let slow = results(
            60.0,
            vec![point(90.0, 3, Some(quiet)), point(180.0, 5, Some(disk))],
        );
        assert_eq!(
            stall_check(&slow),
            (
                "SQLite: no request above 100 ms (9 above 50)".to_owned(),
                "max 180.0 ms: the disk stalled meanwhile (outside the server)".to_owned(),
                false
            )
        );
        // At or under 100 ms nothing is named, whatever the machine did.
        let fast = results(60.0, vec![point(90.0, 3, Some(disk))]);
        assert_eq!(
            stall_check(&fast),
            (
                "SQLite: no request above 100 ms (4 above 50)".to_owned(),
                "max 90.0 ms".to_owned(),
                true
            )
        );
    }
}
