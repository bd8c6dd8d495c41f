//! A fake of the eSIM provider's order API (`shared/provider-api.md`): a real HTTP server on
//! 127.0.0.1:0 that checks the signature headers as the provider does, keeps orders, honours
//! `idempotentKey`, serves `/v1/order/e-sim/page` newest first with paging, answers the
//! provider's error codes when scripted, records every request with its time, and can push
//! an order's webhook with the provider's retry policy.

use std::collections::{HashMap, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value};

/// How far a request's `timestamp` may be from the provider's clock.
pub const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// An order the fake provider holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The provider's order number (21 digits, as the real one's).
    pub order_no: String,
    /// `PROCESSING`, `COMPLETED` or `FAILED`.
    pub status: String,
    /// Unix milliseconds.
    pub create_time: i64,
    /// Empty until completed.
    pub iccid: String,
    /// Empty until completed.
    pub lpa: String,
    /// The package ordered.
    pub package_code: String,
    /// Its name.
    pub package_name: String,
    /// The contract price.
    pub price: String,
    /// The numeric currency code.
    pub currency: String,
    /// The customer's address given when placing.
    pub email: String,
}

impl Order {
    /// The record `/v1/order/e-sim/page` returns for it.
    pub fn record(&self) -> Value {
        json!({
            "orderNo": self.order_no, "status": self.status, "createTime": self.create_time.to_string(),
            "currency": self.currency, "iccid": self.iccid, "lpa": self.lpa,
            "packageCode": self.package_code, "packageName": self.package_name, "price": self.price,
        })
    }

    /// The webhook the provider pushes for it.
    pub fn webhook(&self) -> Value {
        json!({
            "orderNo": self.order_no, "result": self.status, "currency": self.currency,
            "iccid": self.iccid, "lpa": self.lpa, "packageCode": self.package_code,
            "packageName": self.package_name, "price": self.price,
        })
    }
}

/// How the fake answers the next request, instead of as usual.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// The envelope with this error code (101 processing, 102 busy, 506 balance, ...).
    Code(i64),
    /// This HTTP status with an empty body.
    Http(u16),
    /// HTTP 429 asking to wait this many seconds (`Retry-After`), as a rate limiter answers.
    TooMany(u64),
    /// HTTP 200 with a body that is not JSON.
    Malformed,
    /// HTTP 200 with a successful page of about this many bytes, its `Content-Length` given.
    Large(usize),
    /// The same page streamed in 64 KiB chunks, with no `Content-Length`.
    LargeStreamed(usize),
    /// Answer as usual, after this long.
    Slow(Duration),
    /// Do the work at once (an order is placed), but answer only after this long: a caller
    /// that dies meanwhile never learns the answer, as when a process is killed after the
    /// provider acted and before its outcome was committed.
    Late(Duration),
}

/// One request that arrived.
#[derive(Debug, Clone)]
pub struct Request {
    /// The path, e.g. `/v1/order/e-sim/page`.
    pub path: String,
    /// When it arrived.
    pub at: Instant,
    /// The `idempotentKey` header, if any.
    pub idempotent_key: Option<String>,
    /// The JSON body (`null` when not JSON).
    pub body: Value,
    /// Whether its signature was refused.
    pub refused: bool,
}

#[derive(Debug, Default)]
struct State {
    orders: Vec<Order>,
    by_key: HashMap<String, String>,
    script: VecDeque<Scripted>,
    requests: Vec<Request>,
    next: u64,
    /// Answer the first page whatever `current` asks (a broken provider).
    first_page_only: bool,
}

impl State {
    fn new_order(&mut self, package_code: &str) -> Order {
        self.next += 1;
        Order {
            order_no: format!("2026113000{:011}", self.next),
            status: "PROCESSING".into(),
            create_time: now_ms(),
            iccid: String::new(),
            lpa: String::new(),
            package_code: package_code.to_owned(),
            package_name: "Japan, 7 Days, 5GB".into(),
            price: "4.20".into(),
            currency: "2".into(),
            email: String::new(),
        }
    }
}

/// The running fake provider.
#[derive(Debug, Clone)]
pub struct FakeProvider {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The app id it accepts.
    pub app_id: String,
    /// The secret it signs with.
    pub app_secret: String,
    state: Arc<Mutex<State>>,
}

impl FakeProvider {
    /// Starts a provider that accepts `app_id` signed with `app_secret`.
    pub fn start(app_id: &str, app_secret: &str) -> FakeProvider {
        let fake = FakeProvider {
            base: String::new(),
            app_id: app_id.to_owned(),
            app_secret: app_secret.to_owned(),
            state: Arc::default(),
        };
        let shared = web::Data::new(fake.clone());
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
        let base = format!("http://{}", listener.local_addr().expect("an address"));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listens")
        .run();
        tokio::spawn(server);
        FakeProvider { base, ..fake }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers the next request (after those already scripted) as `scripted`.
    /// From now on, answers the first page of a lookup whatever page it asks for, with the
    /// true `total`: a provider that ignores `current`.
    pub fn ignore_page_numbers(&self) {
        self.lock().first_page_only = true;
    }

    pub fn then(&self, scripted: Scripted) {
        self.lock().script.push_back(scripted);
    }

    /// Adds an order placed elsewhere (by the reseller's other systems, or before).
    pub fn add(&self, order: Order) {
        self.lock().orders.push(order);
    }

    /// A new order of `package_code`, still processing, as if just placed.
    pub fn new_order(&self, package_code: &str) -> Order {
        self.lock().new_order(package_code)
    }

    /// Finishes an order: COMPLETED with an ICCID and activation code, or FAILED.
    pub fn finish(&self, order_no: &str, status: &str, iccid: &str, lpa: &str) {
        let mut state = self.lock();
        if let Some(order) = state.orders.iter_mut().find(|o| o.order_no == order_no) {
            order.status = status.to_owned();
            order.iccid = iccid.to_owned();
            order.lpa = lpa.to_owned();
        }
    }

    /// The orders it holds, oldest first.
    pub fn orders(&self) -> Vec<Order> {
        self.lock().orders.clone()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Pushes `order_no`'s webhook to `url` as the provider does: up to 3 attempts, the 2nd
    /// `delays.0` after the 1st failure, the 3rd `delays.1` after the 2nd (3 s and 6 s for the
    /// real one). Returns each attempt's status (0 when nothing answered).
    pub async fn push_webhook(
        &self,
        url: &str,
        order_no: &str,
        delays: (Duration, Duration),
    ) -> Vec<u16> {
        let Some(order) = self.orders().into_iter().find(|o| o.order_no == order_no) else {
            return Vec::new();
        };
        let client = crate::http_client();
        let mut statuses = Vec::new();
        for wait in [Duration::ZERO, delays.0, delays.1] {
            tokio::time::sleep(wait).await;
            let status = client
                .post(url)
                .json(&order.webhook())
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            statuses.push(status);
            if (200..300).contains(&status) {
                break;
            }
        }
        statuses
    }

    /// Whether the signature headers are the provider's: the app id, a timestamp within
    /// [`CLOCK_SKEW`], and `sign` = hex(HMAC-SHA256(secret, appId&timestamp&path)).
    fn signed(&self, req: &HttpRequest) -> bool {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (Some(app_id), Some(timestamp), Some(sign)) =
            (header("appId"), header("timestamp"), header("sign"))
        else {
            return false;
        };
        let Ok(at) = timestamp.parse::<i64>() else {
            return false;
        };
        let skew = i64::try_from(CLOCK_SKEW.as_millis()).unwrap_or(i64::MAX);
        if app_id != self.app_id || (now_ms() - at).abs() > skew {
            return false;
        }
        sign.eq_ignore_ascii_case(&sign_for(&self.app_secret, &app_id, &timestamp, req.path()))
    }
}

/// The provider's signature: lower-case hex of HMAC-SHA256(secret, `appId&timestamp&path`).
pub fn sign_for(secret: &str, app_id: &str, timestamp: &str, path: &str) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(format!("{app_id}&{timestamp}&{path}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A successful, empty page padded with an unknown field to about `bytes` bytes.
fn large_page(bytes: usize) -> String {
    json!({"code": 0, "msg": "success", "data": {"total": 0, "records": [], "padding": "x".repeat(bytes)}})
        .to_string()
}

fn envelope(code: i64, msg: &str, data: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({"code": code, "msg": msg, "data": data}))
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    fake: web::Data<FakeProvider>,
) -> HttpResponse {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let refused = !fake.signed(&req);
    let scripted = {
        let mut state = fake.lock();
        state.requests.push(Request {
            path: req.path().to_owned(),
            at: Instant::now(),
            idempotent_key: req
                .headers()
                .get("idempotentKey")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: body.clone(),
            refused,
        });
        if refused {
            None
        } else {
            state.script.pop_front()
        }
    };
    if refused {
        return HttpResponse::Unauthorized()
            .json(json!({"code": 401, "error": true, "msg": "Unauthorized", "success": false}));
    }
    match scripted {
        Some(Scripted::Code(code)) => return envelope(code, "scripted error", Value::Null),
        Some(Scripted::Http(status)) => {
            return HttpResponse::build(StatusCode::from_u16(status).expect("a status")).finish()
        }
        Some(Scripted::TooMany(seconds)) => {
            return HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", seconds.to_string()))
                .finish()
        }
        Some(Scripted::Malformed) => return HttpResponse::Ok().body("{\"code\": 0, \"data\": "),
        Some(Scripted::Large(bytes)) => return HttpResponse::Ok().body(large_page(bytes)),
        Some(Scripted::LargeStreamed(bytes)) => {
            let page = web::Bytes::from(large_page(bytes));
            let chunks = (0..page.len()).step_by(64 * 1024).map(move |at| {
                Ok::<_, std::convert::Infallible>(page.slice(at..page.len().min(at + 64 * 1024)))
            });
            return HttpResponse::Ok()
                .streaming(futures_util::stream::iter(chunks.collect::<Vec<_>>()));
        }
        Some(Scripted::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Scripted::Late(_)) | None => {}
    }
    let answer = match req.path() {
        "/v1/order/e-sim" => place(&req, &body, &fake),
        "/v1/order/e-sim/page" => page(&body, &fake),
        _ => envelope(400, "no such path", Value::Null),
    };
    if let Some(Scripted::Late(delay)) = scripted {
        tokio::time::sleep(delay).await;
    }
    answer
}

fn place(req: &HttpRequest, body: &Value, fake: &FakeProvider) -> HttpResponse {
    let Some(package_code) = body["packageCode"].as_str().filter(|p| !p.is_empty()) else {
        return envelope(400, "packageCode is required", Value::Null);
    };
    if package_code == "NO-SUCH-PACKAGE" {
        return envelope(504, "package does not exist", Value::Null);
    }
    let key = req
        .headers()
        .get("idempotentKey")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // One lock for the check and the insert: two requests with one key at once place one
    // order, as the provider's idempotency promises.
    let mut state = fake.lock();
    if let Some(known) = key.as_ref().and_then(|k| state.by_key.get(k).cloned()) {
        return envelope(0, "success", json!({"orderNo": known}));
    }
    let mut order = state.new_order(package_code);
    order.email = body["email"].as_str().unwrap_or_default().to_owned();
    let order_no = order.order_no.clone();
    if let Some(key) = key {
        state.by_key.insert(key, order_no.clone());
    }
    state.orders.push(order);
    envelope(0, "success", json!({"orderNo": order_no}))
}

fn page(body: &Value, fake: &FakeProvider) -> HttpResponse {
    let state = fake.lock();
    let current = if state.first_page_only {
        1
    } else {
        body["current"].as_u64().unwrap_or(1).max(1)
    };
    let size = body["size"].as_u64().unwrap_or(50).clamp(1, 500);
    let matching: Vec<&Order> = state
        .orders
        .iter()
        .rev()
        .filter(|o| body["orderNo"].as_str().is_none_or(|n| n == o.order_no))
        .filter(|o| body["iccid"].as_str().is_none_or(|i| i == o.iccid))
        .collect();
    let skip = usize::try_from((current - 1) * size).unwrap_or(usize::MAX);
    let records: Vec<Value> = matching
        .iter()
        .skip(skip)
        .take(usize::try_from(size).unwrap_or(50))
        .map(|o| o.record())
        .collect();
    envelope(
        0,
        "success",
        json!({"total": matching.len(), "current": current, "size": size, "records": records}),
    )
}
