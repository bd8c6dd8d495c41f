//! The `yoni` provider: the eSIM provider's order API (`shared/provider-api.md`) behind
//! esim-courier's [`Provider`] contract.
//!
//! - Every call is a signed `POST` (`appId`, `timestamp`, `sign` headers; `sign.rs`).
//! - Answers are read from the provider's envelope; each error code says whether a retry can
//!   help and whether operators must act on the account (`envelope.rs`).
//! - Records are mapped into the domain types of `core` in one function (`record.rs`), the
//!   only place that knows their assumed shape.
//! - Lookups (`/v1/order/e-sim/page`) wait for a rate limiter (10 per second by default, as
//!   the provider allows). It holds for this process; across replicas, whose lookups run at
//!   once, they also wait for a [`CallGate`](esim_courier_core::CallGate)'s turn
//!   ([`YoniProvider::with_gate`]; esim-courier gives the store's, shared through the
//!   database).

mod config;
mod envelope;
mod record;
mod sign;

use std::time::{SystemTime, UNIX_EPOCH};

use esim_courier_core::{
    async_trait, CurrencyTable, JsonScalar, OrderNo, PlaceOrder, Provider, ProviderError,
    ProviderOrder, ProviderPage,
};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

pub use config::{ConfigError, YoniConfig};

const PLACE: &str = "/v1/order/e-sim";
const PAGE: &str = "/v1/order/e-sim/page";

/// The provider's order API.
pub struct YoniProvider {
    base: url::Url,
    app_id: String,
    app_secret: SecretString,
    client: reqwest::Client,
    lookups: DefaultDirectRateLimiter,
    /// The deployment-wide turn, when several processes share the provider's rate.
    gate: Option<std::sync::Arc<dyn esim_courier_core::CallGate>>,
    requests_per_second: std::num::NonZeroU32,
    currencies: CurrencyTable,
}

impl std::fmt::Debug for YoniProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YoniProvider")
            .field("base", &self.base.as_str())
            .field("app_id", &self.app_id)
            .field("app_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl YoniProvider {
    /// Builds the client from its section (no I/O). `currencies` maps the records' numeric
    /// currency codes, as for webhooks.
    pub fn new(config: YoniConfig, currencies: CurrencyTable) -> Result<Self, ConfigError> {
        let base = url::Url::parse(config.base_url.trim())
            .map_err(|e| ConfigError::BaseUrl(format!("not a URL ({e})")))?;
        if !matches!(base.scheme(), "https" | "http") || base.host_str().is_none() {
            return Err(ConfigError::BaseUrl(
                "must be an http(s) URL with a host".into(),
            ));
        }
        // The API's paths (`/v1/...`) are the provider's, and signed as such: a path here
        // would be dropped from every call, which then answers 404 (a permanent failure).
        if base.path() != "/" || base.query().is_some() || base.fragment().is_some() {
            return Err(ConfigError::BaseUrl(format!(
                "must name the API's host only, e.g. {}://{}: the calls' paths (/v1/...) are the provider's",
                base.scheme(),
                base.host_str().unwrap_or_default()
            )));
        }
        if config.app_id.trim().is_empty() {
            return Err(ConfigError::AppId);
        }
        if config.timeout.is_zero() {
            return Err(ConfigError::Timeout);
        }
        let client = esim_courier_notify_http::client(config.timeout)
            .map_err(|e| ConfigError::Client(e.to_string()))?;
        Ok(Self {
            base,
            app_id: config.app_id.trim().to_owned(),
            app_secret: config.app_secret,
            client,
            // No burst: the provider counts calls per second, so they are spread evenly
            // (10 per second = one every 100 ms); a burst of 10 then 10 more in the same
            // second would be 20 in one second.
            lookups: RateLimiter::direct(
                Quota::per_second(config.requests_per_second)
                    .allow_burst(std::num::NonZeroU32::MIN),
            ),
            gate: None,
            requests_per_second: config.requests_per_second,
            currencies,
        })
    }

    /// One signed call; the `data` of its answer. Counted by endpoint and outcome, timed.
    async fn call(
        &self,
        path: &'static str,
        body: &Value,
        idempotent_key: Option<&str>,
    ) -> Result<Box<RawValue>, ProviderError> {
        let started = std::time::Instant::now();
        let result = self.exchange(path, body, idempotent_key).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.is_transient() => "transient",
            Err(_) => "permanent",
        };
        metrics::counter!("esim_courier_provider_calls_total", "endpoint" => path, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("esim_courier_provider_call_seconds", "endpoint" => path)
            .record(started.elapsed().as_secs_f64());
        result
    }

    async fn exchange(
        &self,
        path: &str,
        body: &Value,
        idempotent_key: Option<&str>,
    ) -> Result<Box<RawValue>, ProviderError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| ProviderError::permanent(format!("{path} is not a path: {e}")))?;
        let timestamp = now_ms().to_string();
        let sign = sign::sign(
            self.app_secret.expose_secret().as_bytes(),
            &self.app_id,
            &timestamp,
            url.path(),
        );
        let mut request = self
            .client
            .post(url)
            .header("appId", &self.app_id)
            .header("timestamp", &timestamp)
            .header("sign", sign)
            .json(body);
        if let Some(key) = idempotent_key {
            request = request.header("idempotentKey", key);
        }
        let response = request.send().await.map_err(|e| {
            let what = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "failed"
            };
            ProviderError::transient(format!("{path} {what}"))
        })?;
        let status = response.status().as_u16();
        let retry_after = esim_courier_notify_http::retry_after(response.headers());
        // Transient either way, as a garbled answer is: the next call may get a sound one.
        let body = esim_courier_notify_http::read_body(response, MAX_ANSWER_BYTES)
            .await
            .map_err(|e| {
                ProviderError::transient(match e {
                    esim_courier_notify_http::BodyError::TooLarge(_) => format!(
                        "{path}: the answer is larger than {} MiB and was not read",
                        MAX_ANSWER_BYTES >> 20
                    ),
                    esim_courier_notify_http::BodyError::Cut(_) => {
                        format!("{path}: the answer was cut off")
                    }
                })
            })?;
        match status {
            200..=299 => envelope::read(&body),
            401 => Err(ProviderError::permanent(format!(
                "{path}: the provider refused our signature (check app_id and app_secret, and this server's clock)"
            ))
            .with_code(401)),
            // The same rule as every HTTP channel: 408, 429 and 5xx may pass.
            _ if esim_courier_notify_http::is_retryable(status) => {
                let e = ProviderError::transient(format!("{path}: the provider answered HTTP {status}"));
                Err(match retry_after {
                    Some(after) => e.with_retry_after(after),
                    None => e,
                })
            }
            _ => Err(ProviderError::permanent(format!(
                "{path}: the provider answered HTTP {status}"
            ))),
        }
    }

    /// Lookups also wait for `gate`'s turn: with several replicas, the provider's rate then
    /// holds for all of them together.
    #[must_use]
    pub fn with_gate(mut self, gate: std::sync::Arc<dyn esim_courier_core::CallGate>) -> Self {
        self.gate = Some(gate);
        self
    }

    /// The lookup rate this client keeps (`requests_per_second`).
    pub fn requests_per_second(&self) -> std::num::NonZeroU32 {
        self.requests_per_second
    }

    /// A page of records, waiting for the lookup rate limit first (this process's, then the
    /// deployment's turn).
    async fn records(&self, query: Value) -> Result<ProviderPage, ProviderError> {
        self.lookups.until_ready().await;
        if let Some(gate) = &self.gate {
            gate.turn().await;
        }
        let data = self.call(PAGE, &query, None).await?;
        #[derive(Deserialize)]
        struct PageData {
            #[serde(default)]
            total: Option<Box<RawValue>>,
            #[serde(default)]
            records: Vec<Box<RawValue>>,
        }
        let page: PageData = serde_json::from_str(data.get()).map_err(|e| {
            ProviderError::transient(format!(
                "{PAGE}: the page is not the expected shape: {}",
                envelope::shape_error(&e)
            ))
        })?;
        let number = |raw: &Option<Box<RawValue>>| {
            raw.as_deref()
                .and_then(|r| JsonScalar::of(r).into_text())
                .and_then(|t| t.trim().parse::<u64>().ok())
        };
        Ok(ProviderPage {
            total: number(&page.total).unwrap_or(page.records.len() as u64),
            current: query["current"]
                .as_u64()
                .and_then(|c| u32::try_from(c).ok())
                .unwrap_or(1),
            size: query["size"]
                .as_u64()
                .and_then(|s| u32::try_from(s).ok())
                .unwrap_or(0),
            orders: page
                .records
                .iter()
                .map(|r| record::order(r, &self.currencies))
                .collect(),
        })
    }
}

#[async_trait]
impl Provider for YoniProvider {
    fn name(&self) -> &str {
        "yoni"
    }

    async fn place(&self, order: &PlaceOrder) -> Result<OrderNo, ProviderError> {
        let body = json!({"packageCode": order.package_code, "email": order.email.as_str()});
        let data = self.call(PLACE, &body, Some(&order.reference)).await?;
        #[derive(Deserialize)]
        struct Placed {
            #[serde(rename = "orderNo")]
            order_no: Box<RawValue>,
        }
        let placed: Placed = serde_json::from_str(data.get()).map_err(|e| {
            ProviderError::transient(format!(
                "{PLACE}: the answer has no orderNo: {}",
                envelope::shape_error(&e)
            ))
        })?;
        JsonScalar::of(&placed.order_no)
            .into_text()
            .ok_or_else(|| ProviderError::transient(format!("{PLACE}: orderNo is not text")))
            .and_then(|n| {
                OrderNo::parse(&n).map_err(|e| ProviderError::permanent(format!("{PLACE}: {e}")))
            })
    }

    async fn lookup(&self, order_no: &OrderNo) -> Result<Option<ProviderOrder>, ProviderError> {
        let page = self
            .records(json!({"current": 1, "size": 10, "orderNo": order_no.as_str()}))
            .await?;
        for found in page.orders {
            let found = found?;
            if &found.order_no == order_no {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    async fn page(&self, current: u32, size: u32) -> Result<ProviderPage, ProviderError> {
        self.records(json!({"current": current.max(1), "size": size.clamp(1, 500)}))
            .await
    }

    async fn healthcheck(&self) -> Result<(), ProviderError> {
        self.records(json!({"current": 1, "size": 1}))
            .await
            .map(|_| ())
    }
}

/// The largest answer read. A full page (500 records of about 1 KiB) is well under 1 MiB; a
/// larger answer is a fault on the way (a proxy, a broken server) and is not held in memory.
const MAX_ANSWER_BYTES: usize = 8 << 20;

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
