//! The SMTP transport against a scripted server on 127.0.0.1: plain, `STARTTLS` and implicit
//! TLS (a self-signed certificate the client is told to trust), login, and the pool's reuse,
//! size, idle time and deadline.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::Message;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};

use super::connection::open;
use crate::transport::Transport;
use crate::TransportConfig;

/// base64 of `\0courier\0s3cr3t-pw`, the `AUTH PLAIN` answer the server accepts.
const LOGIN: &str = "AGNvdXJpZXIAczNjcjN0LXB3";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Starttls,
    Implicit,
}

/// A message as the server took it: over TLS or not, from a logged-in client or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Taken {
    encrypted: bool,
    logged_in: bool,
}

#[derive(Debug, Default)]
struct Seen {
    connections: usize,
    taken: Vec<Taken>,
}

struct Server {
    mode: Mode,
    port: u16,
    certificate: CertificateDer<'static>,
    seen: Arc<Mutex<Seen>>,
    /// While set, the end of a message is never answered.
    stall: Arc<AtomicBool>,
    /// While set, `NOOP` is never answered (a connection gone silent).
    silent_noop: Arc<AtomicBool>,
}

impl Server {
    fn start(mode: Mode) -> Self {
        let certified =
            rcgen::generate_simple_self_signed(vec!["mx.test".to_owned()]).expect("certificate");
        let certificate = certified.cert.der().clone();
        let key = PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der());
        let tls = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![certificate.clone()], key.into())
            .expect("server TLS"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stall = Arc::new(AtomicBool::new(false));
        let silent_noop = Arc::new(AtomicBool::new(false));
        let (seen_, stall_, silent_) = (
            Arc::clone(&seen),
            Arc::clone(&stall),
            Arc::clone(&silent_noop),
        );
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(socket) = socket else { return };
                lock(&seen_).connections += 1;
                let (tls, seen, stall, silent) = (
                    Arc::clone(&tls),
                    Arc::clone(&seen_),
                    Arc::clone(&stall_),
                    Arc::clone(&silent_),
                );
                std::thread::spawn(move || {
                    // A session ends with an error when the client hangs up: nothing to check.
                    let _ = session(mode, socket, &tls, &seen, (&stall, &silent));
                });
            }
        });
        Self {
            mode,
            port,
            certificate,
            seen,
            stall,
            silent_noop,
        }
    }

    fn connections(&self) -> usize {
        lock(&self.seen).connections
    }

    fn taken(&self) -> Vec<Taken> {
        lock(&self.seen).taken.clone()
    }

    /// A transport for this server, trusting its certificate, with `extra` settings.
    fn transport(&self, extra: &str) -> Transport {
        let (scheme, tls) = match self.mode {
            Mode::Implicit => ("smtps", ""),
            Mode::Starttls => ("smtp", "tls = \"starttls\""),
            Mode::Plain => ("smtp", ""),
        };
        let config: TransportConfig = toml::from_str(&format!(
            "type = \"smtp\"\nurl = \"{scheme}://127.0.0.1:{}\"\n{tls}\n{extra}",
            self.port
        ))
        .expect("valid section");
        let mut transport = Transport::from_config(&config).expect("valid");
        let Transport::Smtp(smtp) = &mut transport else {
            unreachable!("an SMTP section")
        };
        let trusted = TlsParameters::builder("mx.test".to_owned())
            .add_root_certificate(
                Certificate::from_der(self.certificate.to_vec()).expect("certificate"),
            )
            .build_rustls()
            .expect("client TLS");
        smtp.tls = match smtp.tls {
            Tls::Wrapper(_) => Tls::Wrapper(trusted),
            Tls::Required(_) => Tls::Required(trusted),
            _ => Tls::None,
        };
        transport
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(PoisonError::into_inner)
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Stream {
    fn encrypt(self, tls: &Arc<rustls::ServerConfig>) -> std::io::Result<Self> {
        match self {
            Self::Plain(socket) => {
                let connection = rustls::ServerConnection::new(Arc::clone(tls))
                    .map_err(std::io::Error::other)?;
                Ok(Self::Tls(Box::new(rustls::StreamOwned::new(
                    connection, socket,
                ))))
            }
            Self::Tls(_) => Ok(self),
        }
    }

    fn is_encrypted(&self) -> bool {
        matches!(self, Self::Tls(_))
    }

    fn say(&mut self, reply: &str) -> std::io::Result<()> {
        let bytes = format!("{reply}\r\n");
        match self {
            Self::Plain(s) => s.write_all(bytes.as_bytes()),
            Self::Tls(s) => s.write_all(bytes.as_bytes()).and_then(|()| s.flush()),
        }
    }

    /// One line without its CRLF; `None` when the client has gone.
    fn line(&mut self) -> std::io::Result<Option<String>> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            let read = match self {
                Self::Plain(s) => s.read(&mut byte)?,
                Self::Tls(s) => s.read(&mut byte)?,
            };
            if read == 0 {
                return Ok(None);
            }
            line.push(byte[0]);
            if line.ends_with(b"\r\n") {
                line.truncate(line.len() - 2);
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
        }
    }
}

fn session(
    mode: Mode,
    socket: TcpStream,
    tls: &Arc<rustls::ServerConfig>,
    seen: &Mutex<Seen>,
    (stall, silent_noop): (&AtomicBool, &AtomicBool),
) -> std::io::Result<()> {
    let mut stream = Stream::Plain(socket);
    if mode == Mode::Implicit {
        stream = stream.encrypt(tls)?;
    }
    let mut logged_in = false;
    stream.say("220 mx.test ESMTP")?;
    while let Some(line) = stream.line()? {
        let verb = line
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => {
                let mut lines = vec!["mx.test"];
                if mode == Mode::Starttls && !stream.is_encrypted() {
                    lines.push("STARTTLS");
                } else {
                    lines.push("AUTH PLAIN LOGIN");
                }
                for (i, l) in lines.iter().enumerate() {
                    let dash = if i + 1 == lines.len() { ' ' } else { '-' };
                    stream.say(&format!("250{dash}{l}"))?;
                }
            }
            "STARTTLS" => {
                stream.say("220 go ahead")?;
                stream = stream.encrypt(tls)?;
            }
            "AUTH" => {
                logged_in = line.ends_with(LOGIN);
                stream.say(if logged_in {
                    "235 welcome"
                } else {
                    "535 bad login"
                })?;
            }
            "NOOP" if silent_noop.load(Ordering::SeqCst) => {
                std::thread::sleep(Duration::from_secs(30));
                return Ok(());
            }
            "MAIL" | "RCPT" | "NOOP" => stream.say("250 ok")?,
            "DATA" => {
                stream.say("354 go on")?;
                while stream.line()?.is_some_and(|l| l != ".") {}
                if stall.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_secs(30));
                    return Ok(());
                }
                lock(seen).taken.push(Taken {
                    encrypted: stream.is_encrypted(),
                    logged_in,
                });
                stream.say("250 queued")?;
            }
            "QUIT" => {
                stream.say("221 bye")?;
                return Ok(());
            }
            _ => stream.say("500 what")?,
        }
    }
    Ok(())
}

fn message(n: usize) -> Message {
    Message::builder()
        .from("esim@wander.example".parse().expect("from"))
        .to(format!("traveller+{n}@example.com").parse().expect("to"))
        .subject(format!("Message {n}"))
        .header(ContentType::TEXT_PLAIN)
        .body(format!("Hello {n}"))
        .expect("message")
}

fn idle(t: &Transport) -> usize {
    match t {
        Transport::Smtp(s) => s.pool.idle_len(),
        Transport::File { .. } => 0,
    }
}

#[tokio::test]
async fn connections_are_opened_with_tcp_nodelay() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let socket = open("127.0.0.1", port, Duration::from_secs(2))
        .await
        .expect("connect");
    assert!(socket.nodelay().expect("TCP_NODELAY"));
}

#[tokio::test]
async fn starttls_and_login_then_one_connection_carries_every_message() {
    let server = Server::start(Mode::Starttls);
    let t = server.transport("username = \"courier\"\npassword = \"s3cr3t-pw\"");
    t.healthcheck().await.expect("healthy");
    for n in 0..3 {
        let id = t.send(&message(n)).await.expect("sent");
        assert_eq!(id, "250 queued");
    }
    let secure = Taken {
        encrypted: true,
        logged_in: true,
    };
    assert_eq!(server.taken(), vec![secure; 3]);
    assert_eq!(server.connections(), 1, "the pooled connection is reused");
    assert_eq!(idle(&t), 1);
}

#[tokio::test]
async fn implicit_tls_and_login() {
    let server = Server::start(Mode::Implicit);
    let t = server.transport("username = \"courier\"\npassword = \"s3cr3t-pw\"");
    for n in 0..2 {
        t.send(&message(n)).await.expect("sent");
    }
    let secure = Taken {
        encrypted: true,
        logged_in: true,
    };
    assert_eq!(server.taken(), vec![secure; 2]);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_refused_login_is_permanent() {
    let server = Server::start(Mode::Starttls);
    let t = server.transport("username = \"courier\"\npassword = \"wrong\"");
    let error = t.send(&message(0)).await.expect_err("535");
    assert!(!error.is_transient(), "{error}");
    assert!(error.message().contains("535"), "{error}");
    assert!(!error.message().contains("wrong"), "{error}");
    assert!(server.taken().is_empty());
    assert_eq!(idle(&t), 0);
}

/// A refused login is the session's refusal, not a recipient's: a message to several
/// recipients is not tried again for each (which would log in once per recipient and could
/// lock the account).
#[tokio::test]
async fn a_refused_login_is_tried_once_for_a_message_to_several_recipients() {
    let server = Server::start(Mode::Starttls);
    let t = server.transport("username = \"courier\"\npassword = \"wrong\"");
    let to_three = Message::builder()
        .from("esim@wander.example".parse().expect("from"))
        .to("ops@wander.example".parse().expect("to"))
        .to("night@wander.example".parse().expect("to"))
        .to("oncall@wander.example".parse().expect("to"))
        .subject("An alert")
        .header(ContentType::TEXT_PLAIN)
        .body("Hello".to_owned())
        .expect("message");
    let error = t.send(&to_three).await.expect_err("535");
    assert!(!error.is_transient(), "{error}");
    assert!(error.message().contains("535"), "{error}");
    assert_eq!(server.connections(), 1, "one login, not one per recipient");
}

#[tokio::test]
async fn a_server_without_starttls_is_refused_when_starttls_is_required() {
    let server = Server::start(Mode::Plain);
    let mut t = server.transport("");
    let Transport::Smtp(smtp) = &mut t else {
        unreachable!("an SMTP section")
    };
    smtp.tls = Tls::Required(TlsParameters::new_rustls("mx.test".to_owned()).expect("TLS"));
    let error = t.send(&message(0)).await.expect_err("no STARTTLS");
    assert!(!error.is_transient(), "{error}");
    assert!(server.taken().is_empty());
}

#[tokio::test]
async fn connections_beyond_the_pool_size_are_closed_after_use() {
    let server = Server::start(Mode::Plain);
    let t = server.transport("pool_max_size = 1");
    let messages: Vec<Message> = (0..4).map(message).collect();
    let sent = futures_util::future::join_all(messages.iter().map(|m| t.send(m))).await;
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    assert_eq!(server.taken().len(), 4);
    assert_eq!(server.connections(), 4, "all four were under way at once");
    assert_eq!(idle(&t), 1, "one is kept");
}

#[tokio::test]
async fn a_connection_idle_past_its_time_is_not_reused() {
    let server = Server::start(Mode::Plain);
    let t = server.transport("pool_idle_timeout = \"1ms\"");
    t.send(&message(0)).await.expect("sent");
    tokio::time::sleep(Duration::from_millis(20)).await;
    t.send(&message(1)).await.expect("sent");
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn a_connection_that_ran_out_of_time_mid_message_is_never_reused() {
    let server = Server::start(Mode::Plain);
    let t = server.transport("timeout = \"1s\"");
    t.send(&message(0)).await.expect("sent");
    assert_eq!(idle(&t), 1);
    server.stall.store(true, Ordering::SeqCst);
    let error = t.send(&message(1)).await.expect_err("stalled");
    assert!(error.is_transient(), "{error}");
    assert!(error.message().contains("within 1s"), "{error}");
    assert_eq!(idle(&t), 0, "the stalled connection was dropped");
    server.stall.store(false, Ordering::SeqCst);
    t.send(&message(2)).await.expect("sent");
    assert_eq!(
        server.connections(),
        2,
        "a new connection after the stalled one"
    );
    assert_eq!(server.taken().len(), 2);
}

#[tokio::test]
async fn a_pooled_connection_gone_silent_is_replaced_within_the_same_attempt() {
    let server = Server::start(Mode::Plain);
    // The reuse check gets a quarter of the attempt's time (at most 5 s): 2 s here.
    let t = server.transport("timeout = \"8s\"");
    t.send(&message(0)).await.expect("sent");
    assert_eq!(idle(&t), 1);
    server.silent_noop.store(true, Ordering::SeqCst);
    t.send(&message(1))
        .await
        .expect("sent over a new connection, in the same attempt");
    assert_eq!(server.connections(), 2);
    assert_eq!(server.taken().len(), 2);
}

#[test]
fn a_transport_with_idle_connections_dropped_after_its_runtime_does_not_panic() {
    let server = Server::start(Mode::Plain);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t = server.transport("");
    runtime.block_on(t.send(&message(0))).expect("sent");
    assert_eq!(idle(&t), 1);
    drop(runtime);
    drop(t);
}
