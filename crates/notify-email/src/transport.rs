//! How messages leave: lettre's SMTP transport (rustls, pooled) or its file transport, and the
//! mapping of their failures onto "can a retry help?".

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use esim_courier_core::NotifyError;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;
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
    /// An SMTP server (boxed: its builder is large and only one transport exists per notifier).
    Smtp(Box<Smtp>),
}

type SmtpTransport = AsyncSmtpTransport<Tokio1Executor>;

/// The SMTP transport and its connection pool.
///
/// Built on first use: lettre's pool spawns a Tokio task when it is built, and a notifier may
/// be constructed outside a runtime (e.g. by `check`).
///
/// lettre bounds only the connect with its timeout, not the SMTP conversation, so a server
/// that stops answering would hold an attempt (and the dispatcher's lease) forever. Each
/// attempt therefore runs under `deadline`; when it expires, the pool is discarded, because the
/// abandoned connection may be returned to it mid-transaction.
#[derive(Debug)]
pub(crate) struct Smtp {
    builder: AsyncSmtpTransportBuilder,
    current: Mutex<Option<Arc<SmtpTransport>>>,
    deadline: Duration,
    /// `host:port`, for messages (never the URL, never credentials).
    server: String,
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
                let transport = smtp.transport();
                let bytes = message.formatted();
                let attempt = transport.send_raw(message.envelope(), &bytes);
                let response = smtp
                    .within_deadline(&transport, attempt)
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
            Self::Smtp(smtp) => {
                let transport = smtp.transport();
                match smtp
                    .within_deadline(&transport, transport.test_connection())
                    .await?
                {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(NotifyError::transient(format!(
                        "{} did not answer NOOP",
                        smtp.server
                    ))),
                    Err(e) => Err(classify(&e, &smtp.server)),
                }
            }
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
        let mut builder = SmtpTransport::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(config.pool_max_size)
                    .idle_timeout(config.pool_idle_timeout),
            );
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        if let Some(name) = &config.hello_name {
            builder = builder.hello_name(ClientId::Domain(name.clone()));
        }
        let server = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Self {
            builder,
            current: Mutex::new(None),
            deadline: config.timeout,
            server,
        })
    }

    /// The pooled transport, built if there is none.
    fn transport(&self) -> Arc<SmtpTransport> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(current.get_or_insert_with(|| Arc::new(self.builder.clone().build())))
    }

    /// Runs `attempt` on `transport` for at most the deadline. On expiry the transport is
    /// discarded (the next attempt builds a fresh pool) and the failure is transient.
    async fn within_deadline<T>(
        &self,
        transport: &Arc<SmtpTransport>,
        attempt: impl std::future::Future<Output = T>,
    ) -> Result<T, NotifyError> {
        match tokio::time::timeout(self.deadline, attempt).await {
            Ok(outcome) => Ok(outcome),
            Err(_) => {
                let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
                if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, transport)) {
                    *current = None;
                }
                drop(current);
                // Closing the old pool says QUIT on each connection, which a stuck server may
                // never answer: let it finish in the background.
                let old = Arc::clone(transport);
                tokio::spawn(async move { old.shutdown().await });
                Err(NotifyError::transient(format!(
                    "{} did not finish the SMTP exchange within {}",
                    self.server,
                    humantime::format_duration(self.deadline)
                )))
            }
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        // lettre's pool spawns a Tokio task when it is dropped, which panics outside a runtime
        // (a notifier outliving the runtime it sent on, at shutdown). Leak the pool then: the
        // process is ending, and the OS closes its sockets.
        if tokio::runtime::Handle::try_current().is_err() {
            let current = self
                .current
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(transport) = current {
                std::mem::forget(transport);
            }
        }
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
fn classify(e: &lettre::transport::smtp::Error, server: &str) -> NotifyError {
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
            Transport::Smtp(s) => format!("{:?}", s.builder)
                .split("tls: ")
                .nth(1)
                .and_then(|r| r.split(',').next())
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
        // The next attempt gets a fresh pool and the same bounded wait.
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
        // The failed check still builds the pool, and with it lettre's background task.
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
