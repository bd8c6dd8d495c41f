//! A real SMTP server for tests (mailin-embedded on 127.0.0.1, port 0) that records what it
//! receives and answers from a script, and the checks a mail client would make of what
//! arrived.

use std::net::TcpListener;
use std::sync::{mpsc, Arc, Mutex, PoisonError};

use mail_parser::{MessageParser, MimeHeaders, PartType};
pub use mailin_embedded::{response, Response};
use mailin_embedded::{Handler, Server};

/// A message the server accepted.
#[derive(Debug, Clone)]
pub struct Received {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO.
    pub to: Vec<String>,
    /// The message as sent.
    pub data: Vec<u8>,
}

/// When a scripted reply is given instead of the usual one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// To `RCPT TO` (greylisting, unknown mailbox).
    Rcpt,
    /// To the `DATA` command (a server refusing any mail now).
    Data,
}

#[derive(Default)]
struct Mailbox {
    received: Vec<Received>,
    /// Replies to give instead of 250/354, in order.
    script: Vec<(Stage, Response)>,
    /// A message to this address waits at its DATA command until released.
    hold: Option<Hold>,
    /// Addresses refused at every `RCPT TO`, as a server refuses a mailbox it does not have.
    refused: Vec<(String, Response)>,
}

struct Hold {
    to: String,
    arrived: mpsc::Sender<()>,
    release: mpsc::Receiver<()>,
}

/// A message held at its `DATA` command ([`SmtpServer::hold_next_to`]): the client has sent
/// its envelope and waits for the server's answer, as a slow server makes it wait.
#[derive(Debug)]
pub struct Held {
    arrived: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl Held {
    /// Waits until the message arrives at `DATA` and is held there.
    ///
    /// # Panics
    /// When none arrives within 30 s.
    pub async fn arrived(&self) {
        for _ in 0..3000 {
            if self.arrived.try_recv().is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no message arrived to be held within 30 s");
    }

    /// Lets the message go on: `DATA` gets the next scripted reply, or the usual one.
    pub fn release(self) {
        let _ = self.release.send(());
    }
}

#[derive(Clone)]
struct Recorder {
    mailbox: Arc<Mutex<Mailbox>>,
    current: Option<Received>,
}

impl Recorder {
    fn scripted(&self, stage: Stage) -> Option<Response> {
        let mut mailbox = self.mailbox.lock().unwrap_or_else(PoisonError::into_inner);
        match mailbox.script.first() {
            Some((s, _)) if *s == stage => Some(mailbox.script.remove(0).1),
            _ => None,
        }
    }
}

// Replies are scripted at RCPT and DATA, not at the end of the data: mailin 0.6 stays in its
// data state after refusing a message there and then ignores QUIT.
impl Handler for Recorder {
    fn rcpt(&mut self, to: &str) -> Response {
        let refused = self
            .mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refused
            .iter()
            .find(|(address, _)| address.eq_ignore_ascii_case(to))
            .map(|(_, reply)| reply.clone());
        refused
            .or_else(|| self.scripted(Stage::Rcpt))
            .unwrap_or(response::OK)
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        let hold = {
            let mut mailbox = self.mailbox.lock().unwrap_or_else(PoisonError::into_inner);
            match &mailbox.hold {
                Some(h) if to.iter().any(|t| t.eq_ignore_ascii_case(&h.to)) => mailbox.hold.take(),
                _ => None,
            }
        };
        if let Some(hold) = hold {
            // This session's thread waits; the server's other sessions go on.
            let _ = hold.arrived.send(());
            let _ = hold.release.recv();
        }
        if let Some(reply) = self.scripted(Stage::Data) {
            return reply;
        }
        self.current = Some(Received {
            from: from.to_owned(),
            to: to.to_vec(),
            data: Vec::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = self.current.as_mut() {
            current.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let received = self.current.take();
        self.mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .received
            .extend(received);
        response::OK
    }
}

pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    mailbox: Arc<Mutex<Mailbox>>,
}

impl SmtpServer {
    /// Starts the server on 127.0.0.1, port 0. Its thread ends with the test process.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let mailbox = Arc::new(Mutex::new(Mailbox::default()));
        let mut server = Server::new(Recorder {
            mailbox: Arc::clone(&mailbox),
            current: None,
        });
        server.with_name("mx.test").with_tcp_listener(listener);
        std::thread::spawn(move || {
            // serve() returns only on a listener error; the test then fails on its own.
            let _ = server.serve().map_err(|e| e.to_string());
        });
        Self { port, mailbox }
    }

    pub fn reply_next(&self, stage: Stage, response: Response) {
        self.mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .script
            .push((stage, response));
    }

    /// Refuses `to` with `reply` at every `RCPT TO` from now on (an unknown mailbox).
    pub fn refuse(&self, to: &str, reply: Response) {
        self.mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refused
            .push((to.to_owned(), reply));
    }

    /// Holds the next message to `to` at its `DATA` command until [`Held::release`].
    pub fn hold_next_to(&self, to: &str) -> Held {
        let (arrived_tx, arrived) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        self.mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .hold = Some(Hold {
            to: to.to_owned(),
            arrived: arrived_tx,
            release: release_rx,
        });
        Held { arrived, release }
    }

    pub fn received(&self) -> Vec<Received> {
        std::mem::take(
            &mut self
                .mailbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .received,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Notifiers and notifications.

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl SmtpServer {
    /// Everything received so far, without taking it.
    pub fn peek(&self) -> Vec<Received> {
        self.mailbox
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .received
            .clone()
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }
}

/// Checks the MIME tree of an activation email and returns (html, text, png, message id).
pub fn open_activation_email(raw: &[u8]) -> (String, String, Vec<u8>, String) {
    let message = MessageParser::default()
        .parse(raw)
        .expect("a parsable message");
    let root = message.root_part();
    assert!(
        root.is_content_type("multipart", "alternative"),
        "root is {:?}",
        root.content_type()
    );
    let children = root.sub_parts().expect("alternative has parts");
    assert_eq!(children.len(), 2, "text/plain then multipart/related");
    let plain = message.part(children[0]).expect("plain part");
    assert!(plain.is_content_type("text", "plain"));
    let related = message.part(children[1]).expect("related part");
    assert!(
        related.is_content_type("multipart", "related"),
        "got {:?}",
        related.content_type()
    );
    let inner = related.sub_parts().expect("related has parts");
    assert_eq!(inner.len(), 2, "text/html then the QR PNG");
    let html = message.part(inner[0]).expect("html part");
    assert!(html.is_content_type("text", "html"));
    let png = message.part(inner[1]).expect("png part");
    assert!(png.is_content_type("image", "png"));
    let cid = png
        .content_id()
        .expect("the PNG has a Content-ID")
        .trim_matches(['<', '>'])
        .to_owned();
    assert!(png
        .content_disposition()
        .is_some_and(|d| d.ctype() == "inline"));

    let html = html.text_contents().expect("html text").to_owned();
    assert!(
        html.contains(&format!("src=\"cid:{cid}\"")),
        "the HTML shows the inline PNG by its Content-ID"
    );
    let text = plain.text_contents().expect("plain text").to_owned();
    let png = match &png.body {
        PartType::Binary(b) | PartType::InlineBinary(b) => b.to_vec(),
        other => panic!("the PNG part is not binary: {other:?}"),
    };
    let message_id = message.message_id().expect("Message-ID").to_owned();
    (html, text, png, message_id)
}

/// Reads the QR code in `png` the way a phone camera would.
pub fn read_qr(png: &[u8]) -> String {
    let image = image::load_from_memory(png)
        .expect("a decodable PNG")
        .to_luma8();
    let (width, height) = (image.width() as usize, image.height() as usize);
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| {
        image.get_pixel(x as u32, y as u32).0[0]
    });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code");
    grids[0].decode().expect("a readable QR code").1
}

/// The decoded subject and text of every text part of a message, for searching.
pub fn readable_text(raw: &[u8]) -> String {
    let Some(message) = MessageParser::default().parse(raw) else {
        return String::new();
    };
    let mut out = message.subject().unwrap_or_default().to_owned();
    for i in 0..message.text_body_count() {
        if let Some(t) = message.body_text(i) {
            out.push('\n');
            out.push_str(&t);
        }
    }
    out
}

/// The `Message-ID` of a message, if it has one.
pub fn message_id(raw: &[u8]) -> Option<String> {
    MessageParser::default()
        .parse(raw)?
        .message_id()
        .map(str::to_owned)
}
