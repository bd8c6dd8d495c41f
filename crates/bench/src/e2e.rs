//! End-to-end latency: from the webhook's sending (its due time, if it went out late) to the
//! moment the local SMTP server finished receiving the customer's activation email for that
//! order.
//!
//! The customer of each order is registered first (`PUT /api/v1/orders/{orderNo}`, not timed),
//! then the webhooks are posted open-loop at a fixed rate, as the provider would.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{stream, StreamExt, TryStreamExt};

use crate::courier;
use crate::load::{self, Target};
use crate::payload::Orders;
use crate::process::Server;
use crate::smtp_sink::SmtpSink;

/// How long to wait for the last emails after the last webhook was due.
const DRAIN: Duration = Duration::from_secs(30);

/// End-to-end latency at one rate.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Webhooks posted and answered 200.
    pub accepted: u64,
    /// Emails matched to a webhook.
    pub emails: u64,
    /// Latency from the webhook's sending (or due time) to the email's arrival, microseconds.
    pub latency: hdrhistogram::Histogram<u64>,
    /// Webhook latency (the intake part of it), microseconds.
    pub intake: hdrhistogram::Histogram<u64>,
}

/// Posts `rate × duration` webhooks for registered customers to `server` and times each
/// customer email arriving at `sink`.
pub async fn measure(
    server: &Server,
    sink: &SmtpSink,
    orders: Orders,
    rate: f64,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<Measured> {
    let count = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    register_customers(server, &orders, count).await?;
    sink.watch(orders.prefix());

    let bodies = {
        let orders = orders.clone();
        Arc::new(move |seq| orders.webhook_body(seq))
    };
    let target = Target {
        addr: server.addr,
        path: courier::webhook_path(),
        bodies,
    };
    let outcome = load::open_loop(target, connections, rate, duration, DRAIN).await?;
    if outcome.errors > 0 || outcome.unsent > 0 {
        bail!(
            "{} webhooks failed and {} were not sent at {rate}/s (first error: {})",
            outcome.errors,
            outcome.unsent,
            outcome.first_error.as_deref().unwrap_or("none")
        );
    }

    // Wait for every email (or give up after DRAIN).
    let deadline = Instant::now() + DRAIN;
    while (sink.arrivals().len() as u64) < outcome.ok && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // From each webhook's sending, or its due time when it went out late (the open loop
    // sends a request up to a timer tick before it is due).
    let counted_from: HashMap<u64, Instant> = outcome
        .sent
        .iter()
        .map(|s| (s.seq, s.counted_from))
        .collect();
    let mut latency = load::new_histogram();
    let mut seen = HashMap::new();
    for arrival in sink.arrivals() {
        let Some(seq) = arrival.order_no.as_deref().and_then(|o| orders.seq_of(o)) else {
            continue;
        };
        // One email per order: a second one would be a bug worth knowing about.
        if seen.insert(seq, ()).is_some() {
            bail!("two emails arrived for order {}", orders.order_no(seq));
        }
        let Some(from) = counted_from.get(&seq) else {
            bail!(
                "an email arrived for order {}, which was never sent",
                orders.order_no(seq)
            );
        };
        load::record(&mut latency, arrival.at.saturating_duration_since(*from));
    }
    Ok(Measured {
        accepted: outcome.ok,
        emails: seen.len() as u64,
        latency,
        intake: outcome.latency,
    })
}

/// Registers a customer for orders `0..count` (16 at a time).
async fn register_customers(server: &Server, orders: &Orders, count: u64) -> anyhow::Result<()> {
    let client = esim_courier_notify_http::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(16)
        .build()?;
    let base = format!("http://{}/api/v1/orders", server.addr);
    stream::iter(0..count)
        .map(|seq| {
            let (client, order_no) = (client.clone(), orders.order_no(seq));
            let url = format!("{base}/{order_no}");
            async move {
                let response = client
                    .put(&url)
                    .bearer_auth(courier::API_TOKEN)
                    .json(&serde_json::json!({
                        "email": format!("traveller+{seq}@example.com"),
                        "name": "Ana Traveller",
                        "locale": "en",
                        "price": "14.90",
                        "currency": "USD",
                    }))
                    .send()
                    .await
                    .with_context(|| format!("PUT {url}"))?;
                let status = response.status();
                if !status.is_success() {
                    let body = response.text().await.unwrap_or_default();
                    bail!("PUT {url}: {status} {body}");
                }
                Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}
