//! A local HTTP peer on 127.0.0.1:0 that records what it receives and answers as scripted:
//! the Slack, Telegram and webhook endpoints of the notifier tests.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One request that arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// The JSON body (`null` when it was not JSON).
    pub body: serde_json::Value,
    /// The body exactly as received.
    pub raw: Vec<u8>,
    /// The request headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// When the whole request had arrived.
    pub at: Instant,
}

impl Received {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the peer answers one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(&'static str, String)>,
    /// The response body.
    pub body: String,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// Answers `status` with `body`.
    pub fn new(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a response header.
    #[must_use]
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    /// Answers only after `delay`.
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What the service itself would refuse before any script applies (its limits, its format):
/// `Some(reply)` answers the request so.
type Check = Box<dyn Fn(&Received) -> Option<Reply> + Send + Sync>;

struct State {
    received: Vec<Received>,
    script: VecDeque<Reply>,
    default: Reply,
    check: Option<Check>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("received", &self.received.len())
            .field("script", &self.script)
            .finish_non_exhaustive()
    }
}

/// A running peer.
#[derive(Debug)]
pub struct Peer {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl Peer {
    /// Starts a peer answering `default` unless a reply is scripted.
    pub fn start(default: Reply) -> Peer {
        Self::start_with(default, None)
    }

    /// Starts a peer that first applies `check`, as the real service applies its limits:
    /// a request it refuses is recorded and answered with the check's reply.
    pub fn start_checking(
        default: Reply,
        check: impl Fn(&Received) -> Option<Reply> + Send + Sync + 'static,
    ) -> Peer {
        Self::start_with(default, Some(Box::new(check)))
    }

    fn start_with(default: Reply, check: Option<Check>) -> Peer {
        let state = Arc::new(Mutex::new(State {
            received: Vec::new(),
            script: VecDeque::new(),
            default,
            check,
        }));
        let shared = web::Data::from(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listens")
        .run();
        tokio::spawn(server);
        Peer { base, state }
    }

    /// Answers the next request (after those already scripted) with `reply`.
    pub fn then(&self, reply: Reply) {
        self.state.lock().expect("lock").script.push_back(reply);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("lock").received.clone()
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
) -> HttpResponse {
    let reply = {
        let mut s = state.lock().expect("lock");
        let received = Received {
            path: req.path().to_owned(),
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            raw: body.to_vec(),
            headers: req
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        v.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            at: Instant::now(),
        };
        let refused = s.check.as_ref().and_then(|check| check(&received));
        s.received.push(received);
        match refused {
            Some(reply) => reply,
            None => s.script.pop_front().unwrap_or_else(|| s.default.clone()),
        }
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = HttpResponse::build(StatusCode::from_u16(reply.status).expect("a status"));
    for (name, value) in &reply.headers {
        response.insert_header((*name, value.as_str()));
    }
    response.body(reply.body)
}

/// A port on which nothing listens.
pub fn unreachable_base() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let addr = listener.local_addr().expect("an address");
    drop(listener);
    format!("http://{addr}")
}
