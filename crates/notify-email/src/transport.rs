//! How messages leave: SMTP (rustls, pooled connections) or lettre's file transport, and the
//! mapping of their failures onto "can a retry help?".

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use esim_courier_core::NotifyError;
use futures_util::io::{AsyncRead as _, AsyncWrite as _};
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
use tokio::io::ReadBuf;
use tokio::net::TcpStream;
use url::{Host, Url};

use crate::{ConfigError, SmtpConfig, TlsMode, TransportConfig};

/// A configured transport.
#[derive(Debug)]
pub(crate) enum Transport {
    /// `.eml` files in a folder.
    File {
        dir: PathBuf,
        inner: AsyncFileTransport<Tokio1Executor>,
    },
    /// An SMTP server (boxed: only one transport exists per notifier).
    Smtp(Box<Smtp>),
}

/// An SMTP server and the notifier's pool of connections to it.
///
/// The notifier opens each connection itself, with `TCP_NODELAY`: the end of a message (the
/// final `.` line) is a small write after the body, and with Nagle's algorithm it waits for
/// the server to acknowledge the body, which a server with delayed ACKs holds back for ~40 ms
/// per email. lettre then speaks SMTP on it (greeting, `EHLO`, `STARTTLS`, `AUTH`, the message).
///
/// Each attempt runs under `deadline`, from taking or opening a connection to the server's last
/// reply, because a server that stops answering would otherwise hold an attempt (and the
/// dispatcher's lease) forever. A connection goes back to the pool only after a successful
/// exchange; one whose attempt failed or ran out of time is dropped with it, never reused
/// mid-transaction.
pub(crate) struct Smtp {
    host: String,
    port: u16,
    tls: Tls,
    hello_name: ClientId,
    credentials: Option<Credentials>,
    deadline: Duration,
    pool: Arc<Pool>,
    /// `host:port`, for messages (never the URL, never credentials).
    server: String,
}

/// Connections at rest between attempts: at most `max_size`, each for at most `idle_timeout`.
/// Any number may be in use at once; those beyond `max_size` are closed when done.
struct Pool {
    idle: Mutex<Vec<Idle>>,
    max_size: usize,
    idle_timeout: Duration,
    /// Whether the task that closes expired connections runs (started on first use: a notifier
    /// may be constructed outside a runtime, e.g. by `check`).
    sweeping: AtomicBool,
}

struct Idle {
    connection: AsyncSmtpConnection,
    since: Instant,
}

/// Why an SMTP attempt failed.
#[derive(Debug)]
enum SmtpFailure {
    /// No TCP connection (resolution, refusal, connect timeout).
    Connect(io::Error),
    /// The SMTP exchange, including TLS and login.
    Smtp(lettre::transport::smtp::Error),
}

impl From<lettre::transport::smtp::Error> for SmtpFailure {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Self::Smtp(e)
    }
}

impl Transport {
    /// Checks the section and prepares the transport. Does no I/O.
    pub(crate) fn from_config(config: &TransportConfig) -> Result<Self, ConfigError> {
        match config {
            TransportConfig::File { dir } => {
                if dir.as_os_str().is_empty() {
                    return Err(ConfigError::new("transport.dir", "is empty"));
                }
                Ok(Self::File {
                    dir: dir.clone(),
                    inner: AsyncFileTransport::new(dir),
                })
            }
            TransportConfig::Smtp(smtp) => Smtp::from_config(smtp).map(|s| Self::Smtp(Box::new(s))),
        }
    }

    /// Sends `message` to the recipients of its headers. Returns an id for the receipt: the
    /// file name, or the server's reply.
    pub(crate) async fn send(&self, message: &Message) -> Result<String, NotifyError> {
        match self {
            Self::File { dir, inner } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| file_error(dir, &e))?;
                let id = inner
                    .send_raw(message.envelope(), &message.formatted())
                    .await
                    .map_err(|e| {
                        NotifyError::transient(format!(
                            "cannot write a message into {}: {e}",
                            dir.display()
                        ))
                    })?;
                Ok(format!("{id}.eml"))
            }
            Self::Smtp(smtp) => {
                let bytes = message.formatted();
                let response = smtp
                    .within_deadline(smtp.send(message.envelope(), &bytes))
                    .await?
                    .map_err(|e| classify(&e, &smtp.server))?;
                let first_line = response.message().next().unwrap_or_default();
                Ok(truncate(&format!("{} {first_line}", response.code()), 200))
            }
        }
    }

    /// SMTP: connects, logs in and sends `NOOP`. File: the folder exists (or is created) and
    /// takes a file.
    pub(crate) async fn healthcheck(&self) -> Result<(), NotifyError> {
        match self {
            Self::File { dir, .. } => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| file_error(dir, &e))?;
                let probe = dir.join(format!(".esim-courier-healthcheck-{}", std::process::id()));
                tokio::fs::write(&probe, b"ok")
                    .await
                    .map_err(|e| file_error(dir, &e))?;
                tokio::fs::remove_file(&probe)
                    .await
                    .map_err(|e| file_error(dir, &e))
            }
            Self::Smtp(smtp) => match smtp.within_deadline(smtp.noop()).await? {
                Ok(true) => Ok(()),
                Ok(false) => Err(NotifyError::transient(format!(
                    "{} did not answer NOOP",
                    smtp.server
                ))),
                Err(e) => Err(classify(&e, &smtp.server)),
            },
        }
    }
}

impl Smtp {
    fn from_config(config: &SmtpConfig) -> Result<Self, ConfigError> {
        let key = "transport.url";
        // The URL is never echoed back: it could hold credentials.
        let url = Url::parse(config.url.trim())
            .map_err(|e| ConfigError::new(key, format!("is not a URL: {e}")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::new(
                key,
                "put credentials in transport.username and transport.password, not in the URL",
            ));
        }
        if url.query().is_some() || !matches!(url.path(), "" | "/") {
            return Err(ConfigError::new(
                key,
                "takes only smtp[s]://host[:port]; set TLS with transport.tls",
            ));
        }
        let (host, loopback) = match url.host() {
            // smtp is not a "special" URL scheme, so an IPv4 address arrives as a domain.
            Some(Host::Domain(d)) => {
                let loopback = d.eq_ignore_ascii_case("localhost")
                    || d.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
                (d.to_owned(), loopback)
            }
            Some(Host::Ipv4(ip)) => (ip.to_string(), IpAddr::V4(ip).is_loopback()),
            Some(Host::Ipv6(ip)) => (ip.to_string(), IpAddr::V6(ip).is_loopback()),
            None => return Err(ConfigError::new(key, "has no host")),
        };
        let tls = match (url.scheme(), config.tls) {
            ("smtps", None | Some(TlsMode::Tls)) => TlsMode::Tls,
            ("smtps", Some(_)) => {
                return Err(ConfigError::new(
                    "transport.tls",
                    "smtps:// is implicit TLS; use smtp:// for none or starttls",
                ))
            }
            ("smtp", Some(mode)) => mode,
            ("smtp", None) if loopback => TlsMode::None,
            ("smtp", None) => TlsMode::Starttls,
            (other, _) => {
                return Err(ConfigError::new(
                    key,
                    format!("scheme {other:?} is not smtp or smtps"),
                ))
            }
        };
        let port = url.port().unwrap_or(match tls {
            TlsMode::Tls => 465,
            TlsMode::Starttls => 587,
            TlsMode::None => 25,
        });
        let credentials = match (&config.username, &config.password) {
            (Some(user), Some(password)) => Some(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            )),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "transport.password",
                    "is missing (username is set)",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "transport.username",
                    "is missing (password is set)",
                ))
            }
        };
        if credentials.is_some() && tls == TlsMode::None && !loopback {
            return Err(ConfigError::new(
                "transport.tls",
                "refusing to send a password in clear text to a remote server; use starttls or tls",
            ));
        }
        if config.pool_max_size == 0 {
            return Err(ConfigError::new(
                "transport.pool_max_size",
                "must be at least 1",
            ));
        }
        let tls = match tls {
            TlsMode::None => Tls::None,
            TlsMode::Starttls => Tls::Required(tls_parameters(&host)?),
            TlsMode::Tls => Tls::Wrapper(tls_parameters(&host)?),
        };
        if config.timeout.is_zero() {
            return Err(ConfigError::new(
                "transport.timeout",
                "must be more than 0s",
            ));
        }
        let hello_name = match &config.hello_name {
            Some(name) => ClientId::Domain(name.clone()),
            None => ClientId::default(),
        };
        let server = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Self {
            host,
            port,
            tls,
            hello_name,
            credentials,
            deadline: config.timeout,
            pool: Arc::new(Pool {
                idle: Mutex::new(Vec::new()),
                max_size: usize::try_from(config.pool_max_size).unwrap_or(usize::MAX),
                idle_timeout: config.pool_idle_timeout,
                sweeping: AtomicBool::new(false),
            }),
            server,
        })
    }

    /// Sends one message on a pooled or new connection.
    async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<Response, SmtpFailure> {
        let mut connection = self.connection().await?;
        let response = connection.send(envelope, bytes).await?;
        self.pool.put_back(connection, self.deadline);
        Ok(response)
    }

    /// Takes or opens a connection and asks it for `NOOP`.
    async fn noop(&self) -> Result<bool, SmtpFailure> {
        let mut connection = self.connection().await?;
        if connection.test_connected().await {
            self.pool.put_back(connection, self.deadline);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// A pooled connection that still answers `NOOP`, or a new one.
    ///
    /// A pooled connection that went silent (a firewall or NAT that dropped it without a
    /// reset) would hold the `NOOP` until the attempt's deadline and fail an attempt that a new
    /// connection would have made. So the check gets a short time of its own.
    async fn connection(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        self.pool.start_sweeping(self.deadline);
        let check = (self.deadline / 4).min(Duration::from_secs(5));
        while let Some(mut connection) = self.pool.take() {
            if tokio::time::timeout(check, connection.test_connected())
                .await
                .unwrap_or(false)
            {
                return Ok(connection);
            }
        }
        self.connect().await
    }

    /// Opens a connection: TCP with `TCP_NODELAY`, implicit TLS or `STARTTLS` as configured,
    /// `EHLO`, and the login if there are credentials.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let socket = open(&self.host, self.port, self.deadline)
            .await
            .map_err(SmtpFailure::Connect)?;
        let mut connection = match &self.tls {
            Tls::Wrapper(tls) => {
                #[allow(deprecated)]
                let mut stream = AsyncNetworkStream::use_existing_tokio1(Box::new(socket));
                stream.upgrade_tls(tls.clone()).await?;
                let stream = Box::new(Encrypted(stream));
                AsyncSmtpConnection::connect_with_transport(stream, &self.hello_name).await?
            }
            _ => {
                AsyncSmtpConnection::connect_with_transport(Box::new(socket), &self.hello_name)
                    .await?
            }
        };
        if let Tls::Required(tls) = &self.tls {
            connection.starttls(tls.clone(), &self.hello_name).await?;
        }
        if let Some(credentials) = &self.credentials {
            connection.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(connection)
    }

    /// Runs `attempt` for at most the deadline. On expiry the attempt, and the connection it
    /// holds, are dropped, and the failure is transient.
    async fn within_deadline<T>(&self, attempt: impl Future<Output = T>) -> Result<T, NotifyError> {
        tokio::time::timeout(self.deadline, attempt)
            .await
            .map_err(|_| {
                NotifyError::transient(format!(
                    "{} did not finish the SMTP exchange within {}",
                    self.server,
                    humantime::format_duration(self.deadline)
                ))
            })
    }
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("hello_name", &self.hello_name)
            .field("credentials", &self.credentials)
            .field("deadline", &self.deadline)
            .field("pool_max_size", &self.pool.max_size)
            .field("pool_idle_timeout", &self.pool.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        // Say QUIT on the idle connections when a runtime is there to do it; without one (a
        // notifier outliving the runtime it sent on, at shutdown) they are simply closed.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let idle = self.pool.take_all();
            if !idle.is_empty() {
                runtime.spawn(quit(idle, self.deadline));
            }
        }
    }
}

impl Pool {
    /// The most recently used connection still within its idle time; older ones are closed.
    fn take(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(parked) = idle.pop() {
            if parked.since.elapsed() <= self.idle_timeout {
                return Some(parked.connection);
            }
        }
        None
    }

    /// Keeps `connection` for the next attempt, or closes it if the pool is full.
    fn put_back(&self, connection: AsyncSmtpConnection, deadline: Duration) {
        if connection.has_broken() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_size {
            idle.push(Idle {
                connection,
                since: Instant::now(),
            });
        } else {
            drop(idle);
            tokio::spawn(quit(vec![connection], deadline));
        }
    }

    fn take_all(&self) -> Vec<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.drain(..).map(|parked| parked.connection).collect()
    }

    fn take_expired(&self) -> Vec<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let (expired, kept) = idle
            .drain(..)
            .partition::<Vec<_>, _>(|parked| parked.since.elapsed() > self.idle_timeout);
        *idle = kept;
        expired
            .into_iter()
            .map(|parked| parked.connection)
            .collect()
    }

    /// Starts, once, the task that closes connections idle for longer than `idle_timeout`. It
    /// ends when the pool is dropped.
    fn start_sweeping(self: &Arc<Self>, deadline: Duration) {
        if self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let pool: Weak<Self> = Arc::downgrade(self);
        let every = self.idle_timeout.max(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                let expired = pool.take_expired();
                drop(pool);
                quit(expired, deadline).await;
            }
        });
    }
}

/// Says QUIT on each connection, for at most `deadline` in all.
async fn quit(connections: Vec<AsyncSmtpConnection>, deadline: Duration) {
    if connections.is_empty() {
        return;
    }
    let all = futures_util::future::join_all(connections.into_iter().map(|mut c| async move {
        let _ = c.quit().await;
    }));
    let _ = tokio::time::timeout(deadline, all).await;
}

/// A TCP connection to `host:port` with `TCP_NODELAY`, trying each address for at most
/// `timeout`.
async fn open(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for address in tokio::net::lookup_host((host, port)).await? {
        match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
            Ok(Ok(socket)) => {
                socket.set_nodelay(true)?;
                return Ok(socket);
            }
            Ok(Err(e)) => last = Some(e),
            Err(_) => {
                last = Some(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection timed out",
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "could not resolve to any address")
    }))
}

/// An implicit-TLS stream (lettre's, on the notifier's socket), handed back to lettre as the
/// stream its SMTP connection reads and writes.
#[allow(deprecated)]
#[derive(Debug)]
struct Encrypted(AsyncNetworkStream);

impl AsyncTokioStream for Encrypted {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.peer_addr()
    }
}

impl tokio::io::AsyncRead for Encrypted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let read = ready!(Pin::new(&mut self.0).poll_read(cx, buf.initialize_unfilled()))?;
        buf.advance(read);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for Encrypted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

fn tls_parameters(host: &str) -> Result<TlsParameters, ConfigError> {
    TlsParameters::new_rustls(host.to_owned()).map_err(|e| {
        ConfigError::new(
            "transport.tls",
            format!("cannot set up TLS for {host}: {e}"),
        )
    })
}

/// SMTP failures: 4xx replies, timeouts and broken connections may pass; 5xx replies (bad
/// mailbox, refused content, failed login) and a server lacking what the configuration
/// requires (STARTTLS, an auth mechanism) will not.
fn classify(failure: &SmtpFailure, server: &str) -> NotifyError {
    let e = match failure {
        SmtpFailure::Connect(e) if e.kind() == io::ErrorKind::TimedOut => {
            return NotifyError::transient(format!("{server} timed out: Connection error: {e}"))
        }
        SmtpFailure::Connect(e) => {
            return NotifyError::transient(format!("{server} unreachable: Connection error: {e}"))
        }
        SmtpFailure::Smtp(e) => e,
    };
    // lettre's message is the kind, the reply code and the server's text; no credentials.
    let detail = truncate(&e.to_string(), 300);
    if e.is_permanent() {
        NotifyError::permanent(format!("{server} refused: {detail}"))
    } else if e.is_transient() {
        NotifyError::transient(format!("{server} deferred: {detail}"))
    } else if e.is_timeout() {
        NotifyError::transient(format!("{server} timed out: {detail}"))
    } else if e.is_client() {
        NotifyError::permanent(format!("{server}: {detail}"))
    } else {
        NotifyError::transient(format!("{server} unreachable: {detail}"))
    }
}

fn file_error(dir: &std::path::Path, e: &std::io::Error) -> NotifyError {
    let message = format!("{} is not writable: {e}", dir.display());
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        NotifyError::permanent(message)
    } else {
        NotifyError::transient(message)
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod smtp_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn smtp(extra: &str) -> Result<Transport, ConfigError> {
        let config: TransportConfig =
            toml::from_str(&format!("type = \"smtp\"\n{extra}")).expect("valid section");
        Transport::from_config(&config)
    }

    fn server(t: &Transport) -> &str {
        match t {
            Transport::Smtp(s) => &s.server,
            Transport::File { .. } => "file",
        }
    }

    fn tls_of(t: &Transport) -> String {
        match t {
            Transport::Smtp(s) => format!("{:?}", s.tls)
                .split('(')
                .next()
                .unwrap_or("?")
                .to_owned(),
            Transport::File { .. } => "file".to_owned(),
        }
    }

    #[test]
    fn smtp_urls_pick_ports_and_tls() {
        assert_eq!(
            tls_of(&smtp(r#"url = "smtp://127.0.0.1:1025""#).expect("valid")),
            "None"
        );
        assert_eq!(
            tls_of(&smtp(r#"url = "smtp://localhost:1025""#).expect("valid")),
            "None"
        );
        assert_eq!(
            tls_of(&smtp(r#"url = "smtp://[::1]:1025""#).expect("valid")),
            "None"
        );
        assert_eq!(
            tls_of(&smtp(r#"url = "smtp://10.0.0.5:25""#).expect("valid")),
            "Required"
        );
        assert_eq!(
            tls_of(&smtp(r#"url = "smtp://smtp.example.com""#).expect("valid")),
            "Required"
        );
        assert_eq!(
            tls_of(&smtp(r#"url = "smtps://smtp.example.com""#).expect("valid")),
            "Wrapper"
        );
        assert_eq!(
            tls_of(&smtp("url = \"smtp://127.0.0.1:1025\"\ntls = \"starttls\"").expect("valid")),
            "Required"
        );
        assert_eq!(
            server(&smtp(r#"url = "smtp://127.0.0.1:1025""#).expect("valid")),
            "127.0.0.1:1025"
        );
        assert_eq!(
            server(&smtp(r#"url = "smtps://smtp.example.com""#).expect("valid")),
            "smtp.example.com:465"
        );
        assert_eq!(
            server(&smtp(r#"url = "smtp://smtp.example.com""#).expect("valid")),
            "smtp.example.com:587"
        );
        assert_eq!(
            server(&smtp("url = \"smtp://mail.lan\"\ntls = \"none\"").expect("valid")),
            "mail.lan:25"
        );
        assert_eq!(
            server(&smtp(r#"url = "smtp://[::1]:2525""#).expect("valid")),
            "[::1]:2525"
        );
    }

    #[test]
    fn bad_smtp_sections_name_the_key_and_never_echo_secrets() {
        let cases = [
            (r#"url = "smtp://user:s3cr3tpw@smtp.example.com""#, "transport.url"),
            (r#"url = "http://smtp.example.com""#, "transport.url"),
            (r#"url = "smtp://smtp.example.com?tls=required""#, "transport.url"),
            (r#"url = "not a url""#, "transport.url"),
            ("url = \"smtps://smtp.example.com\"\ntls = \"none\"", "transport.tls"),
            ("url = \"smtp://smtp.example.com\"\nusername = \"u\"", "transport.password"),
            ("url = \"smtp://smtp.example.com\"\npassword = \"s3cr3tpw\"", "transport.username"),
            ("url = \"smtp://smtp.example.com\"\ntls = \"none\"\nusername = \"u\"\npassword = \"s3cr3tpw\"", "transport.tls"),
            ("url = \"smtp://smtp.example.com\"\npool_max_size = 0", "transport.pool_max_size"),
            ("url = \"smtp://smtp.example.com\"\ntimeout = \"0s\"", "transport.timeout"),
        ];
        for (section, key) in cases {
            let error = smtp(section).expect_err(section);
            assert_eq!(error.key(), key, "{section}");
            assert!(!error.to_string().contains("s3cr3tpw"), "{error}");
        }
        // Plain text with a password is fine when it never leaves the machine.
        assert!(
            smtp("url = \"smtp://127.0.0.1:1025\"\nusername = \"u\"\npassword = \"p\"").is_ok()
        );
    }

    #[test]
    fn the_debug_output_of_a_transport_hides_the_password() {
        let t =
            smtp("url = \"smtps://smtp.example.com\"\nusername = \"u\"\npassword = \"s3cr3tpw\"")
                .expect("valid");
        assert!(!format!("{t:?}").contains("s3cr3tpw"));
    }

    #[tokio::test]
    async fn a_refused_connection_is_transient() {
        let port = free_port();
        let t = smtp(&format!(
            "url = \"smtp://127.0.0.1:{port}\"\ntimeout = \"2s\""
        ))
        .expect("valid");
        let error = t.healthcheck().await.expect_err("nothing listens");
        assert!(error.is_transient(), "{error}");
        assert!(
            error.message().contains(&format!("127.0.0.1:{port}")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_server_that_stops_answering_is_given_up_on_at_the_deadline() {
        // A peer that greets and then never answers EHLO: lettre alone would wait forever.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        let stalled = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ =
                    tokio::io::AsyncWriteExt::write_all(&mut socket, b"220 stalled.test ESMTP\r\n")
                        .await;
                held.push(socket);
            }
        });
        let t = smtp(&format!(
            "url = \"smtp://127.0.0.1:{port}\"\ntimeout = \"1s\""
        ))
        .expect("valid");
        let started = std::time::Instant::now();
        let error = t.healthcheck().await.expect_err("stalled");
        assert!(error.is_transient(), "{error}");
        assert!(error.message().contains("within 1s"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // The stalled connection was dropped; the next attempt opens another, with the same
        // bounded wait.
        assert!(t
            .healthcheck()
            .await
            .expect_err("still stalled")
            .is_transient());
        stalled.abort();
    }

    #[test]
    fn a_transport_dropped_after_its_runtime_does_not_panic() {
        let port = free_port();
        let t = smtp(&format!(
            "url = \"smtp://127.0.0.1:{port}\"\ntimeout = \"2s\""
        ))
        .expect("valid");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        // The failed check still starts the pool's sweeping task on this runtime.
        assert!(runtime.block_on(t.healthcheck()).is_err());
        drop(runtime);
        drop(t);
    }

    fn free_port() -> u16 {
        // Bind then drop, so the port is very likely closed.
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port")
    }

    #[tokio::test]
    async fn the_file_transport_creates_its_folder_and_checks_it_is_writable() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("mail/out");
        let t = Transport::from_config(&TransportConfig::File { dir: dir.clone() }).expect("valid");
        t.healthcheck().await.expect("writable");
        assert!(dir.is_dir());
        assert_eq!(
            std::fs::read_dir(&dir).expect("list").count(),
            0,
            "the probe file is removed"
        );
    }
}
