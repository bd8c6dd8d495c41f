//! The SMTP transport: lettre speaks SMTP on connections this module opens and pools itself.
//!
//! - `connection.rs`: TCP with `TCP_NODELAY`, implicit TLS on our socket;
//! - `pool.rs`: connections at rest between attempts;
//! - `error.rs`: which failures a retry can help.

mod connection;
mod error;
mod pool;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use esim_courier_core::NotifyError;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
#[allow(deprecated)]
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::Message;
use secrecy::ExposeSecret;
use url::{Host, Url};

use self::connection::{open, tls_parameters, Encrypted};
use self::error::{classify, mask_addresses, truncate, SmtpFailure};
use self::pool::{quit, Pool};
use crate::{ConfigError, SmtpConfig, TlsMode};

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
    pub(super) tls: Tls,
    hello_name: ClientId,
    credentials: Option<Credentials>,
    deadline: Duration,
    pool: Arc<Pool>,
    /// `host:port`, for messages (never the URL, never credentials).
    pub(super) server: String,
}

impl Smtp {
    pub(super) fn from_config(config: &SmtpConfig) -> Result<Self, ConfigError> {
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
            pool: Arc::new(Pool::new(
                usize::try_from(config.pool_max_size).unwrap_or(usize::MAX),
                config.pool_idle_timeout,
            )),
            server,
        })
    }

    /// Sends `message`; its id is the server's reply.
    pub(super) async fn deliver(&self, message: &Message) -> Result<String, NotifyError> {
        let bytes = message.formatted();
        let envelope = message.envelope();
        // One deadline for the attempt, the sends to each recipient after a refusal included:
        // an attempt that outlived the dispatcher's timeout would be retried whole, and reach
        // again the recipients that had it. The sends to each end a tenth before it, so that
        // what was delivered is reported inside a dispatcher timeout of the same length (both
        // 30 s by default), which started before the message was rendered.
        let deadline =
            tokio::time::Instant::now() + self.deadline.saturating_sub(self.deadline / 10);
        match self.within_deadline(self.send(envelope, &bytes)).await? {
            Ok(response) => Ok(reply(&response)),
            // The server refused the message's exchange (a recipient, the sender, the data),
            // not the session (greeting, TLS, login: each recipient would meet that again,
            // and a refused login tried once per recipient can lock the account).
            Err(SmtpFailure::Transaction(e))
                if envelope.to().len() > 1 && (e.is_permanent() || e.is_transient()) =>
            {
                self.deliver_one_by_one(envelope, &bytes, deadline).await
            }
            Err(e) => Err(classify(&e, &self.server)),
        }
    }

    /// After a server's refusal of a message to several recipients, the message to each on
    /// its own. lettre's exchange stops at the first recipient the server refuses, before the
    /// message is sent to anyone: one address that left the company (`550 5.1.1 user
    /// unknown`) in an operator notifier's `to` would otherwise keep every alert from every
    /// operator. A refusal of the message itself (at `DATA`) is met again for each, and
    /// nobody got it.
    ///
    /// Accepted for some: delivered, the others named (masked) in the reply kept with the
    /// attempt and in a warning; it is not sent again, which would reach the ones that got it
    /// twice. Refused for all: failed, transient if any refusal was. The attempt's `deadline`
    /// bounds every send: a recipient not reached by then counts as refused for now, so that
    /// what was accepted before is still reported as delivered.
    async fn deliver_one_by_one(
        &self,
        envelope: &Envelope,
        bytes: &[u8],
        deadline: tokio::time::Instant,
    ) -> Result<String, NotifyError> {
        let mut accepted = None;
        let mut refused = Vec::new();
        for to in envelope.to() {
            let one = Envelope::new(envelope.from().cloned(), vec![to.clone()])
                .map_err(|e| NotifyError::permanent(e.to_string()))?;
            let refusal = match tokio::time::timeout_at(deadline, self.send(&one, bytes)).await {
                Ok(Ok(response)) => {
                    accepted.get_or_insert_with(|| reply(&response));
                    continue;
                }
                Ok(Err(e)) => classify(&e, &self.server),
                Err(_) => NotifyError::transient(format!(
                    "{} did not finish the SMTP exchange within {}",
                    self.server,
                    humantime::format_duration(self.deadline)
                )),
            };
            refused.push((mask_addresses(to.as_ref()), refusal));
        }
        let refusals = refused
            .iter()
            .map(|(to, e)| format!("{to}: {}", e.message()))
            .collect::<Vec<_>>()
            .join("; ");
        match accepted {
            Some(reply) => {
                tracing::warn!(
                    server = %self.server,
                    refused = %refusals,
                    "the mail server refused some of the message's recipients; it went to the others"
                );
                Ok(truncate(
                    &format!(
                        "{reply} (for {} of {} recipients; refused {refusals})",
                        envelope.to().len() - refused.len(),
                        envelope.to().len()
                    ),
                    400,
                ))
            }
            None if refused.iter().any(|(_, e)| e.is_transient()) => {
                Err(NotifyError::transient(refusals))
            }
            None => Err(NotifyError::permanent(refusals)),
        }
    }

    /// Connects, logs in and sends `NOOP`.
    pub(super) async fn healthcheck(&self) -> Result<(), NotifyError> {
        match self.within_deadline(self.noop()).await? {
            Ok(true) => Ok(()),
            Ok(false) => Err(NotifyError::transient(format!(
                "{} did not answer NOOP",
                self.server
            ))),
            Err(e) => Err(classify(&e, &self.server)),
        }
    }

    /// Sends one message on a pooled or new connection.
    async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<Response, SmtpFailure> {
        let mut connection = self.connection().await?;
        let response = connection
            .send(envelope, bytes)
            .await
            .map_err(SmtpFailure::Transaction)?;
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

/// A server's reply as an attempt keeps it: its code and first line.
fn reply(response: &Response) -> String {
    let first_line = response.message().next().unwrap_or_default();
    truncate(&format!("{} {first_line}", response.code()), 200)
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("hello_name", &self.hello_name)
            .field("credentials", &self.credentials)
            .field("deadline", &self.deadline)
            .field("pool", &self.pool)
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
