//! The benchmark from start to end: build, measure a to f in order, report, plot.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::courier::{self, Notifications, Setup};
use crate::load::{self, Outcome, Target};
use crate::machine::{self, Machine};
use crate::memory::{self, PeakSampler};
use crate::payload::Orders;
use crate::process::Server;
use crate::report::{
    Curve, CurvePoint, EmailRates, EndToEnd, Intake, Results, Settings, SustainTry, Sustained,
};
use crate::smtp_sink::SmtpSink;
use crate::watch::{Around, Watch};
use crate::{baseline, e2e, emails, limits, naive, plot, postgres};

/// How the benchmark runs (every default is the documented run).
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Seconds of each closed-loop throughput measurement.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of each rate step of the latency-against-rate curve.
    #[arg(long, default_value_t = 3.0)]
    pub step: f64,
    /// Concurrent keep-alive connections of the load generator.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// The curve's rates, as fractions of each system's measured throughput.
    #[arg(long, value_delimiter = ',', default_values_t = vec![0.05, 0.25, 0.5, 0.75, 0.9])]
    pub curve: Vec<f64>,
    /// HTTP workers of esim-courier and of the baseline [default: one per core].
    #[arg(long)]
    pub workers: Option<usize>,
    /// A PostgreSQL URL whose user may create databases; (c) runs in a fresh database there.
    #[arg(
        long,
        env = "ESIM_COURIER_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres_url: String,
    /// The esim-courier binary [default: esim-courier beside this executable, built first].
    #[arg(long, env = "ESIM_COURIER_BENCH_BIN")]
    pub esim_courier: Option<PathBuf>,
    /// Do not run `cargo build -p esim-courier` first.
    #[arg(long)]
    pub no_build: bool,
    /// The webhook rates of the end-to-end measurement: idle, then busy.
    #[arg(long, value_delimiter = ',', default_values_t = vec![5.0, 200.0])]
    pub e2e_rates: Vec<f64>,
    /// Seconds of each end-to-end measurement.
    #[arg(long, default_value_t = 10.0)]
    pub e2e_duration: f64,
    /// Activation emails sent in the timed batch of (e).
    #[arg(long, default_value_t = 5000)]
    pub emails: u64,
    /// Emails under way at once in (e) (also the SMTP connection pool's size).
    #[arg(long, default_value_t = 16)]
    pub email_concurrency: usize,
    /// Run only these parts: a (HTTP baseline), b (SQLite), s (SQLite's store alone), c
    /// (PostgreSQL), p (PostgreSQL's minimal write), n and m (the naive peer on SQLite and on
    /// PostgreSQL), d (end to end), e (emails); f is measured with b and c. The plot is
    /// written only when a, b and c all ran.
    #[arg(long, value_delimiter = ',', default_values_t = vec!['a', 'b', 's', 'c', 'p', 'n', 'm', 'd', 'e'])]
    pub only: Vec<char>,
    /// Where to write the plot [default: docs/bench-latency.png in the repository].
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Where to write the results [default: target/bench/results.json in the repository].
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The `load` command: webhooks to a server started by hand.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadOptions {
    /// The server's address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// The webhook path (with the token).
    #[arg(long, default_value = "/webhooks/order/dev-token")]
    pub path: String,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Requests per second (open loop); without it, closed loop as fast as answers come.
    #[arg(long)]
    pub rate: Option<f64>,
}

/// Runs the `load` command.
pub async fn load_only(options: LoadOptions) -> anyhow::Result<()> {
    let run_id = format!("{:06x}", fastrand::u32(..0x100_0000));
    let orders = Orders::new(&run_id, "load");
    let target = Target {
        addr: options.addr,
        path: options.path,
        bodies: Arc::new(move |seq| orders.webhook_body(seq)),
    };
    let duration = Duration::from_secs_f64(options.duration);
    let outcome = match options.rate {
        Some(rate) => {
            load::open_loop(
                target,
                options.connections,
                rate,
                duration,
                Duration::from_secs(5),
            )
            .await?
        }
        None => load::closed_loop(target, options.connections, duration).await?,
    };
    println!(
        "{} ok, {} errors, {} unsent in {:.1} s: {:.0} req/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        outcome.ok,
        outcome.errors,
        outcome.unsent,
        outcome.elapsed.as_secs_f64(),
        outcome.throughput(),
        outcome.latency_ms(0.5),
        outcome.latency_ms(0.99),
        outcome.max_ms()
    );
    if let Some(e) = &outcome.first_error {
        println!("first error: {e}");
    }
    Ok(())
}

/// Prints progress lines with the time since the start.
#[derive(Debug)]
struct Progress(Instant);

impl Progress {
    fn say(&self, message: impl AsRef<str>) {
        eprintln!(
            "[{:>6.1}s] {}",
            self.0.elapsed().as_secs_f64(),
            message.as_ref()
        );
    }
}

/// What [`Bench::measure`] gives for one HTTP system.
struct Measured {
    intake: Intake,
    curve: Curve,
    sustained: Option<Sustained>,
}

impl Results {
    fn add(&mut self, measured: Measured) {
        self.intake.push(measured.intake);
        self.curves.push(measured.curve);
        self.sustained.extend(measured.sustained);
    }
}

/// One run's context.
#[derive(Debug)]
struct Bench {
    options: Options,
    progress: Progress,
    run_id: String,
    /// Scratch files of this run (databases, configs, logs), on the repository's disk.
    dir: PathBuf,
    binary: PathBuf,
    workers: usize,
    /// What the machine does meanwhile, to set each stall beside.
    watch: Watch,
}

/// Runs the whole benchmark and prints the table.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let progress = Progress(Instant::now());
    let root = repository_root();
    if cfg!(debug_assertions) {
        progress.say("WARNING: built without --release; the numbers are not representative");
    }
    let binary = match &options.esim_courier {
        Some(path) => path.clone(),
        None => {
            let binary = std::env::current_exe()?.with_file_name("esim-courier");
            if !options.no_build {
                progress.say("building esim-courier (cargo build -p esim-courier)");
                build_esim_courier(&root)?;
            }
            binary
        }
    };
    if !binary.exists() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p esim-courier`",
            binary.display()
        );
    }
    let run_id = format!("{:06x}", fastrand::u32(..0x100_0000));
    let dir = root
        .join("target")
        .join("bench")
        .join(format!("run-{run_id}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let workers = options
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let watch = Watch::start(&dir)?;
    let bench = Bench {
        options,
        progress,
        run_id,
        dir,
        binary,
        workers,
        watch,
    };
    let results = bench.measure_everything().await?;

    println!("\n{}", results.table());
    let json = bench
        .options
        .json
        .clone()
        .unwrap_or_else(|| root.join("target/bench/results.json"));
    results.write_json(&json)?;
    let png = bench
        .options
        .plot
        .clone()
        .unwrap_or_else(|| root.join("docs/bench-latency.png"));
    println!("results: {}", json.display());
    if ["a", "b", "c"]
        .iter()
        .all(|key| results.curves.iter().any(|c| c.key == *key))
    {
        plot::draw(&results.curves, bench.options.connections, &png)?;
        println!("plot:    {}", png.display());
    } else {
        println!("plot:    not drawn (it needs a, b and c)");
    }
    // Logs and databases of a successful run are of no further use.
    drop(bench.watch);
    let _ = std::fs::remove_dir_all(&bench.dir);
    Ok(())
}

impl Bench {
    async fn measure_everything(&self) -> anyhow::Result<Results> {
        let say = |m: String| self.progress.say(m);
        let machine = Machine::describe(&self.dir);
        say(format!(
            "machine: {} cores, {}, disk {}; {:.0}% busy before the run",
            machine.cores, machine.cpu, machine.disk, machine.busy_at_start_pct
        ));
        if machine.busy_at_start_pct > 10.0 {
            say("WARNING: the machine is busy with other work; the numbers will be lower".into());
        }
        let disk_sync = machine::measure_sync_rate(&self.dir, Duration::from_secs(2))?;
        say(format!(
            "disk: {:.0} fdatasync/s (p50 {:.2} ms, p99 {:.2} ms)",
            disk_sync.per_second, disk_sync.p50_ms, disk_sync.p99_ms
        ));
        let mut results = Results {
            machine,
            disk_sync,
            settings: Settings {
                connections: self.options.connections,
                duration_s: self.options.duration,
                step_s: self.options.step,
                workers: self.workers,
            },
            intake: Vec::new(),
            curves: Vec::new(),
            sustained: Vec::new(),
            end_to_end: Vec::new(),
            emails: None,
            notes: Vec::new(),
        };

        if self.wants('a') {
            say("a: starting the raw actix-web baseline".into());
            let server = baseline::start(self.workers, &self.dir).await?;
            let measured = self
                .measure(
                    "a",
                    "raw actix-web baseline",
                    server,
                    baseline::webhook_path(),
                    false,
                )
                .await?;
            results.add(measured);
        }

        if self.wants('b') {
            say("b: starting esim-courier on SQLite (WAL, synchronous=FULL)".into());
            let setup = Setup {
                database_url: format!("sqlite://{}", self.dir.join("intake.db").display()),
                workers: self.workers,
                notifications: Notifications::Log,
            };
            let server = courier::start(&self.binary, &self.dir, "sqlite", &setup).await?;
            let measured = self
                .measure(
                    "b",
                    "esim-courier, SQLite",
                    server,
                    courier::webhook_path(),
                    true,
                )
                .await?;
            results.add(measured);
        }
        if self.wants('s') {
            say("s: esim-courier's store alone on SQLite, in this process".into());
            let url = format!("sqlite://{}", self.dir.join("store.db").display());
            let run = crate::store_only::measure(
                &url,
                Orders::new(&self.run_id, "s"),
                self.options.connections,
                Duration::from_secs_f64(self.options.duration),
                Duration::from_secs(2),
                false,
            )
            .await?;
            results
                .intake
                .push(self.closed("s", "store alone, SQLite", &run.outcome)?);
        }

        if self.wants('c') {
            self.postgres_part(&mut results).await?;
        }
        if self.wants('p') {
            let outcome = self
                .fresh_postgres('p', &mut results, async |url: String| {
                    limits::postgres_minimal(
                        &url,
                        self.options.connections,
                        Duration::from_secs_f64(self.options.duration),
                        Orders::new(&self.run_id, "p"),
                    )
                    .await
                })
                .await?;
            if let Some(outcome) = outcome {
                results
                    .intake
                    .push(self.closed("p", "minimal write, PostgreSQL", &outcome)?);
            }
        }
        if self.wants('n') {
            say("n: starting the naive peer on SQLite".into());
            let url = format!("sqlite://{}?mode=rwc", self.dir.join("naive.db").display());
            let server = naive::start(&url, self.workers, &self.dir).await?;
            let measured = self
                .measure(
                    "n",
                    "naive peer, SQLite",
                    server,
                    baseline::webhook_path(),
                    false,
                )
                .await?;
            results.add(measured);
        }
        if self.wants('m') {
            let measured = self
                .fresh_postgres('m', &mut results, async |url: String| {
                    let server = naive::start(&url, self.workers, &self.dir).await?;
                    self.measure(
                        "m",
                        "naive peer, PostgreSQL",
                        server,
                        baseline::webhook_path(),
                        false,
                    )
                    .await
                })
                .await?;
            if let Some(measured) = measured {
                results.add(measured);
            }
        }
        if !self.wants('d') && !self.wants('e') {
            return Ok(results);
        }

        // d and e share one SMTP server.
        let sink = SmtpSink::start()?;
        say(format!(
            "d, e: local SMTP server on 127.0.0.1:{}",
            sink.port
        ));
        if self.wants('d') {
            results.end_to_end = self.end_to_end(&sink).await?;
        }
        if self.wants('e') {
            say(format!(
                "e: {} activation emails, {} at once",
                self.options.emails, self.options.email_concurrency
            ));
            let rates =
                emails::measure(&sink, self.options.emails, self.options.email_concurrency).await?;
            say(format!(
                "e: {:.0} emails/s sent; {:.0}/s rendered on one thread",
                rates.sent_per_second, rates.rendered_per_second
            ));
            results.emails = Some(EmailRates {
                count: rates.count,
                sent_per_second: rates.sent_per_second,
                rendered_per_second: rates.rendered_per_second,
            });
        }
        Ok(results)
    }

    fn wants(&self, part: char) -> bool {
        self.options.only.contains(&part)
    }

    /// An in-process closed-loop measurement (s, p) as an intake row; failed writes fail it.
    fn closed(&self, key: &'static str, name: &str, outcome: &Outcome) -> anyhow::Result<Intake> {
        check(outcome)?;
        let machine = self.watch.around_slowest(outcome);
        self.progress.say(format!(
            "{key}: {:.0}/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} above 50 ms{}",
            outcome.throughput(),
            outcome.latency_ms(0.5),
            outcome.latency_ms(0.99),
            outcome.max_ms(),
            outcome.stalled(),
            stall_note(outcome, machine)
        ));
        Ok(Intake::new(key, name, outcome, machine, None))
    }

    /// Runs `measure` on a fresh PostgreSQL database (dropped afterwards, whatever the
    /// outcome). Without a usable server, notes that `part` was skipped and gives `None`.
    async fn fresh_postgres<T>(
        &self,
        part: char,
        results: &mut Results,
        measure: impl AsyncFnOnce(String) -> anyhow::Result<T>,
    ) -> anyhow::Result<Option<T>> {
        match postgres::create(&self.options.postgres_url).await {
            Err(e) => {
                let note = format!(
                    "{part} skipped: PostgreSQL at {} is not usable ({e:#}); set ESIM_COURIER_BENCH_POSTGRES_URL",
                    redacted(&self.options.postgres_url)
                );
                self.progress.say(note.clone());
                results.notes.push(note);
                Ok(None)
            }
            Ok(database) => {
                self.progress
                    .say(format!("{part}: PostgreSQL database {}", database.name()));
                let measured = measure(database.url.clone()).await;
                let dropped = database.drop_database().await;
                let measured = measured?;
                dropped?;
                Ok(Some(measured))
            }
        }
    }

    /// c: PostgreSQL in a fresh database, when there is a server.
    async fn postgres_part(&self, results: &mut Results) -> anyhow::Result<()> {
        let measured = self
            .fresh_postgres('c', results, async |url: String| self.postgres(&url).await)
            .await?;
        if let Some(measured) = measured {
            results.add(measured);
        }
        Ok(())
    }

    async fn postgres(&self, url: &str) -> anyhow::Result<Measured> {
        let setup = Setup {
            database_url: url.to_owned(),
            workers: self.workers,
            notifications: Notifications::Log,
        };
        let server = courier::start(&self.binary, &self.dir, "postgres", &setup).await?;
        self.measure(
            "c",
            "esim-courier, PostgreSQL",
            server,
            courier::webhook_path(),
            true,
        )
        .await
    }

    /// [`Self::intake_and_curve`], then stops the server, whatever the measurement's outcome.
    async fn measure(
        &self,
        key: &'static str,
        name: &str,
        server: Server,
        path: String,
        has_outbox: bool,
    ) -> anyhow::Result<Measured> {
        let measured = self
            .intake_and_curve(key, name, &server, path, has_outbox)
            .await;
        let stopped = server.stop().await;
        let measured = measured?;
        stopped?;
        Ok(measured)
    }

    /// Idle memory, a warm-up, the closed-loop throughput run (with peak memory), then the
    /// open-loop curve and, with an outbox, the sustained rate.
    async fn intake_and_curve(
        &self,
        key: &'static str,
        name: &str,
        server: &Server,
        path: String,
        has_outbox: bool,
    ) -> anyhow::Result<Measured> {
        let say = |m: String| self.progress.say(format!("{key}: {m}"));
        let connections = self.options.connections;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = server.resident()?.now;
        say(format!(
            "idle resident memory {:.1} MB; warming up for 2 s",
            memory::mb(idle)
        ));
        let warm = self.target(
            server.addr,
            &path,
            Orders::new(&self.run_id, &format!("{key}-warm")),
        );
        check(&load::closed_loop(warm, connections, Duration::from_secs(2)).await?)?;
        self.drain(key, server.addr, has_outbox).await?;

        say(format!(
            "throughput: {connections} connections, closed loop, {} s",
            self.options.duration
        ));
        let sampler = PeakSampler::start(server.pid);
        let target = self.target(
            server.addr,
            &path,
            Orders::new(&self.run_id, &format!("{key}-tp")),
        );
        let outcome = load::closed_loop(
            target,
            connections,
            Duration::from_secs_f64(self.options.duration),
        )
        .await?;
        let peak = sampler.finish().await.max(server.resident()?.peak);
        check(&outcome)?;
        let machine = self.watch.around_slowest(&outcome);
        say(format!(
            "{:.0} req/s; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} above 50 ms{}; peak resident memory {:.1} MB",
            outcome.throughput(),
            outcome.latency_ms(0.5),
            outcome.latency_ms(0.99),
            outcome.max_ms(),
            outcome.stalled(),
            stall_note(&outcome, machine),
            memory::mb(peak)
        ));
        let intake = Intake::new(
            key,
            name,
            &outcome,
            machine,
            Some((memory::mb(idle), memory::mb(peak))),
        );
        let drain_per_s = self.drain(key, server.addr, has_outbox).await?;

        let mut points = Vec::new();
        for (i, fraction) in self.options.curve.iter().enumerate() {
            let rate = round_rate(fraction * intake.throughput);
            let outcome = self
                .open_loop(
                    server.addr,
                    &path,
                    &format!("{key}-r{i}"),
                    rate,
                    Duration::from_secs_f64(self.options.step),
                )
                .await?;
            let point = CurvePoint::new(
                *fraction,
                rate,
                &outcome,
                self.watch.around_slowest(&outcome),
            );
            say(format!(
                "{rate:.0}/s offered ({:.0}% of throughput): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} above 50 ms{}{}",
                fraction * 100.0,
                point.p50_ms,
                point.p99_ms,
                point.max_ms,
                point.stalled,
                stall_note(&outcome, point.machine_at_slowest),
                if point.lost > 0 {
                    format!(
                        ", {} lost ({})",
                        point.lost,
                        outcome.first_error.as_deref().unwrap_or("unsent")
                    )
                } else {
                    String::new()
                }
            ));
            points.push(point);
            self.drain(key, server.addr, has_outbox).await?;
        }
        let sustained = match drain_per_s {
            Some(drain) => Some(
                self.sustained(key, name, server.addr, &path, intake.throughput, drain)
                    .await?,
            ),
            None => {
                if has_outbox {
                    say("sustained rate not measured: the closed loop left fewer than 1,000 jobs, too few to time the dispatcher's drain by".into());
                }
                None
            }
        };
        Ok(Measured {
            intake,
            curve: Curve {
                key,
                name: name.to_owned(),
                points,
            },
            sustained,
        })
    }

    /// The highest rate the system takes while its dispatcher keeps up (see [`Sustained`]):
    /// open-loop runs as long as the closed loop, from a little above the estimate down by
    /// 15 % at a time until one ends with less than a second's worth of jobs undelivered;
    /// then the latency at 75 % of that rate.
    async fn sustained(
        &self,
        key: &'static str,
        name: &str,
        addr: SocketAddr,
        path: &str,
        throughput: f64,
        drain_per_s: f64,
    ) -> anyhow::Result<Sustained> {
        const TRIES: usize = 5;
        let say = |m: String| self.progress.say(format!("{key}: {m}"));
        let estimate = 1.0 / (1.0 / throughput + 1.0 / drain_per_s);
        let duration = Duration::from_secs_f64(self.options.duration);
        let client = esim_courier_notify_http::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut tries = Vec::new();
        let mut rate = round_rate(estimate * 1.1);
        let mut found = None;
        for i in 0..TRIES {
            let outcome = self
                .open_loop(addr, path, &format!("{key}-sus{i}"), rate, duration)
                .await?;
            let backlog = courier::outbox_backlog(&client, addr).await?;
            let tried = SustainTry::new(rate, &outcome, backlog);
            say(format!(
                "sustained? {rate:.0}/s for {:.0} s: p99 {:.2} ms, {} lost, {backlog} jobs undelivered at the end: {}",
                duration.as_secs_f64(),
                tried.p99_ms,
                tried.lost,
                if tried.sustained { "yes" } else { "no" }
            ));
            let sustained = tried.sustained;
            tries.push(tried);
            self.drain(key, addr, true).await?;
            if sustained {
                found = Some(rate);
                break;
            }
            rate = round_rate(rate * 0.85);
        }
        let mut at_75 = None;
        if let Some(sustained) = found {
            let rate = round_rate(sustained * 0.75);
            let outcome = self
                .open_loop(addr, path, &format!("{key}-sus75"), rate, duration)
                .await?;
            let point = CurvePoint::new(0.75, rate, &outcome, self.watch.around_slowest(&outcome));
            say(format!(
                "{rate:.0}/s (75% of the sustained {sustained:.0}/s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} above 50 ms, {} lost{}",
                point.p50_ms,
                point.p99_ms,
                point.max_ms,
                point.stalled,
                point.lost,
                stall_note(&outcome, point.machine_at_slowest)
            ));
            self.drain(key, addr, true).await?;
            at_75 = Some(point);
        }
        Ok(Sustained {
            key,
            name: name.to_owned(),
            drain_per_s,
            estimate,
            tries,
            rate: found,
            at_75,
        })
    }

    /// Waits for esim-courier's dispatcher to deliver the outbox, so that one measurement's
    /// deliveries do not run into the next. Returns the jobs delivered per second, when the
    /// backlog was large enough (a thousand jobs) for that to mean something.
    async fn drain(
        &self,
        key: &str,
        addr: SocketAddr,
        has_outbox: bool,
    ) -> anyhow::Result<Option<f64>> {
        if !has_outbox {
            return Ok(None);
        }
        let (backlog, took) = courier::wait_for_outbox(addr, Duration::from_secs(180)).await?;
        if backlog == 0 {
            return Ok(None);
        }
        // Counts of jobs fit an f64 exactly up to 2^53.
        #[allow(clippy::cast_precision_loss)]
        let rate = backlog as f64 / took.as_secs_f64().max(0.001);
        self.progress.say(format!(
            "{key}: dispatcher delivered a backlog of {backlog} outbox jobs in {:.1} s ({rate:.0}/s)",
            took.as_secs_f64()
        ));
        Ok((backlog >= 1000).then_some(rate))
    }

    /// d: esim-courier on SQLite with the customer's activation email over SMTP.
    async fn end_to_end(&self, sink: &SmtpSink) -> anyhow::Result<Vec<EndToEnd>> {
        let setup = Setup {
            database_url: format!("sqlite://{}", self.dir.join("e2e.db").display()),
            workers: self.workers,
            notifications: Notifications::Email {
                smtp_port: sink.port,
            },
        };
        let server = courier::start(&self.binary, &self.dir, "e2e", &setup).await?;
        let mut measured = Vec::new();
        let mut failure = None;
        for (i, &rate) in self.options.e2e_rates.iter().enumerate() {
            self.progress.say(format!(
                "d: {rate}/s for {} s (customers registered first)",
                self.options.e2e_duration
            ));
            let orders = Orders::new(&self.run_id, &format!("e2e{i}"));
            match e2e::measure(
                &server,
                sink,
                orders,
                rate,
                Duration::from_secs_f64(self.options.e2e_duration),
                self.options.connections,
            )
            .await
            {
                Ok(m) => {
                    let ms = |q: f64| m.latency.value_at_quantile(q) as f64 / 1000.0;
                    let e = EndToEnd {
                        rate,
                        webhooks: m.accepted,
                        emails: m.emails,
                        p50_ms: ms(0.5),
                        p99_ms: ms(0.99),
                        max_ms: m.latency.max() as f64 / 1000.0,
                        intake_p50_ms: m.intake.value_at_quantile(0.5) as f64 / 1000.0,
                    };
                    self.progress.say(format!(
                        "d: {rate}/s: {}/{} emails; p50 {:.1} ms, p99 {:.1} ms",
                        e.emails, e.webhooks, e.p50_ms, e.p99_ms
                    ));
                    measured.push(e);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let stopped = server.stop().await;
        if let Some(e) = failure {
            return Err(e);
        }
        stopped?;
        Ok(measured)
    }

    /// An open-loop run at `rate` for `duration`, its orders numbered after `label`.
    async fn open_loop(
        &self,
        addr: SocketAddr,
        path: &str,
        label: &str,
        rate: f64,
        duration: Duration,
    ) -> anyhow::Result<Outcome> {
        let target = self.target(addr, path, Orders::new(&self.run_id, label));
        load::open_loop(
            target,
            self.options.connections,
            rate,
            duration,
            Duration::from_secs(5),
        )
        .await
    }

    fn target(&self, addr: SocketAddr, path: &str, orders: Orders) -> Target {
        Target {
            addr,
            path: path.to_owned(),
            bodies: Arc::new(move |seq| orders.webhook_body(seq)),
        }
    }
}

/// `", slowest answered at … UTC (in its 120 ms: …)"` when a request stalled: when, and
/// what the machine did meanwhile.
fn stall_note(outcome: &Outcome, machine: Option<Around>) -> String {
    match machine {
        Some(around) => format!("{} ({around})", outcome.stall_time()),
        None => outcome.stall_time(),
    }
}

/// A throughput run must not have failed requests: a 503 answers fast and would flatter.
fn check(outcome: &Outcome) -> anyhow::Result<()> {
    if outcome.errors > 0 {
        bail!(
            "{} of {} requests failed; the first: {}",
            outcome.errors,
            outcome.errors + outcome.ok,
            outcome.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

/// `rate` rounded to two significant digits (at least 1/s).
fn round_rate(rate: f64) -> f64 {
    if rate < 1.0 {
        return 1.0;
    }
    let magnitude = 10_f64.powi(rate.log10().floor() as i32 - 1);
    (rate / magnitude).round() * magnitude
}

/// The repository root (this crate is `crates/bench`).
fn repository_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("../..");
    root.canonicalize().unwrap_or(root)
}

/// Builds the esim-courier binary in the profile this benchmark was built in.
fn build_esim_courier(root: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "--quiet", "-p", "esim-courier"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build -p esim-courier failed ({status})");
    }
    Ok(())
}

/// A database URL without its password.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let user = url[s + 3..at].split(':').next().unwrap_or("");
            format!("{}://{user}@{}", &url[..s], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{redacted, round_rate};

    #[test]
    fn rates_are_rounded_to_two_significant_digits() {
        assert_eq!(round_rate(12_345.0), 12_000.0);
        assert_eq!(round_rate(987.0), 990.0);
        assert_eq!(round_rate(57.4), 57.0);
        assert_eq!(round_rate(0.2), 1.0);
    }

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redacted("postgres://u:secret@h:5432/db"),
            "postgres://u@h:5432/db"
        );
        assert_eq!(redacted("postgres://u@h/db"), "postgres://u@h/db");
    }
}
