//! A server under test running as a child process: started, waited for until it answers,
//! measured through `/proc`, and stopped with SIGTERM.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::memory::{self, Resident};

/// How long a server may take to answer its readiness probe.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running child server.
#[derive(Debug)]
pub struct Server {
    name: String,
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process id.
    pub pid: u32,
    log: PathBuf,
}

impl Server {
    /// Starts `command` (its output going to `log`) and waits until `GET <ready_path>`
    /// answers 200 on `addr`.
    pub async fn start(
        name: &str,
        mut command: Command,
        addr: SocketAddr,
        ready_path: &str,
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        command
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let pid = child.id().context("the child has no pid")?;
        let mut server = Self {
            name: name.to_owned(),
            child,
            addr,
            pid,
            log,
        };
        server.wait_ready(ready_path).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, path: &str) -> anyhow::Result<()> {
        let url = format!("http://{}{path}", self.addr);
        let client = esim_courier_notify_http::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({status}); its output:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer {url} within {START_TIMEOUT:?}; its output:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its resident memory now and at its peak.
    pub fn resident(&self) -> anyhow::Result<Resident> {
        memory::resident(self.pid)
    }

    /// The end of its output, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops it with SIGTERM (graceful), then SIGKILL if it is still there after 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            bail!(
                "{} had already exited; its output:\n{}",
                self.name,
                self.log_tail()
            );
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                status?;
            }
            Err(_) => {
                eprintln!("  {} ignored SIGTERM for 15 s; killing it", self.name);
                self.child.start_kill()?;
                self.child.wait().await?;
            }
        }
        Ok(())
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the child binds it a moment later).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
