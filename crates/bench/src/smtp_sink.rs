//! A local SMTP server (mailin-embedded on 127.0.0.1) that accepts every message and notes
//! when it finished receiving each one, and which order it was for.

use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use anyhow::Context;
use mail_parser::MessageParser;
use mailin_embedded::{response, Handler, Response, Server};

/// A message the server finished receiving.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// When its last byte (the end-of-data dot) was read.
    pub at: Instant,
    /// The first order number in its text that starts with the watched prefix.
    pub order_no: Option<String>,
}

#[derive(Debug, Default)]
struct Inbox {
    count: u64,
    arrivals: Vec<Arrival>,
    /// Order numbers starting with this are looked for; with none, messages are only counted.
    watch: Option<String>,
}

#[derive(Clone)]
struct Receiver {
    inbox: Arc<Mutex<Inbox>>,
    /// The message being received, when order numbers are watched.
    data: Option<Vec<u8>>,
    watching: bool,
}

impl Handler for Receiver {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        _to: &[String],
    ) -> Response {
        self.watching = lock(&self.inbox).watch.is_some();
        self.data = self.watching.then(Vec::new);
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(data) = self.data.as_mut() {
            data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let at = Instant::now();
        let order_no = match (self.data.take(), self.watching) {
            (Some(data), true) => {
                let watch = lock(&self.inbox).watch.clone().unwrap_or_default();
                find_order_no(&data, &watch)
            }
            _ => None,
        };
        let mut inbox = lock(&self.inbox);
        inbox.count += 1;
        if inbox.watch.is_some() {
            inbox.arrivals.push(Arrival { at, order_no });
        }
        response::OK
    }
}

fn lock(inbox: &Mutex<Inbox>) -> std::sync::MutexGuard<'_, Inbox> {
    inbox.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The first order number starting with `prefix` in the decoded text of a message.
fn find_order_no(raw: &[u8], prefix: &str) -> Option<String> {
    let message = MessageParser::default().parse(raw)?;
    let mut texts: Vec<String> = Vec::new();
    if let Some(subject) = message.subject() {
        texts.push(subject.to_owned());
    }
    let mut i = 0;
    while let Some(text) = message.body_text(i) {
        texts.push(text.into_owned());
        i += 1;
    }
    texts.iter().find_map(|text| {
        let start = text.find(prefix)?;
        let rest = &text[start..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        Some(rest[..end].to_owned())
    })
}

/// The running server. Its threads end with the benchmark process.
#[derive(Debug)]
pub struct SmtpSink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    inbox: Arc<Mutex<Inbox>>,
}

impl SmtpSink {
    /// Starts the server on 127.0.0.1, any free port, with enough threads for every pooled
    /// connection the senders open.
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind the SMTP sink")?;
        let port = listener.local_addr()?.port();
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let mut server = Server::new(Receiver {
            inbox: Arc::clone(&inbox),
            data: None,
            watching: false,
        });
        server
            .with_name("mx.bench.example")
            .with_num_threads(64)
            .with_tcp_listener(listener);
        std::thread::Builder::new()
            .name("smtp-sink".into())
            .spawn(move || {
                if let Err(e) = server.serve() {
                    eprintln!("the SMTP sink stopped: {e}");
                }
            })
            .context("cannot start the SMTP sink thread")?;
        Ok(Self { port, inbox })
    }

    /// From now on, note the order number (starting with `prefix`) of each message; clears
    /// earlier arrivals.
    pub fn watch(&self, prefix: &str) {
        let mut inbox = lock(&self.inbox);
        inbox.watch = Some(prefix.to_owned());
        inbox.arrivals.clear();
    }

    /// From now on, only count messages.
    pub fn count_only(&self) {
        let mut inbox = lock(&self.inbox);
        inbox.watch = None;
        inbox.arrivals.clear();
    }

    /// Messages received since the start.
    pub fn count(&self) -> u64 {
        lock(&self.inbox).count
    }

    /// The arrivals noted since [`Self::watch`].
    pub fn arrivals(&self) -> Vec<Arrival> {
        lock(&self.inbox).arrivals.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::find_order_no;

    #[test]
    fn the_order_number_is_found_in_a_quoted_printable_body() {
        let raw = b"Subject: Your eSIM\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nOrder Babc-e2e-5-0000000=\r\n42 =E2=80=94 thanks\r\n";
        assert_eq!(
            find_order_no(raw, "Babc-e2e-5-").as_deref(),
            Some("Babc-e2e-5-000000042")
        );
    }
}
