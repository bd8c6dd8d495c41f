//! Activation emails per second, in process: esim-courier's own `EmailNotifier` renders each
//! email (handlebars, inline QR code PNG, MIME) and sends it over pooled SMTP connections to
//! the local SMTP server, many at once. Rendering alone is timed too, on one thread, so the
//! reader sees where the time goes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use esim_courier_core::{
    ActivationCode, CompletedOrder, Content, Currency, Customer, EmailAddress, Locale, Money,
    Notification, Notifier, OrderNo,
};
use esim_courier_notify_email::{EmailConfig, EmailNotifier};
use futures_util::{stream, StreamExt};

use crate::payload::{iccid, matching_id};
use crate::smtp_sink::SmtpSink;

/// Emails per second, sending and rendering.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Emails sent.
    pub count: u64,
    /// Rendered and accepted by the SMTP server, per second (all cores).
    pub sent_per_second: f64,
    /// Rendered only, per second, on one thread.
    pub rendered_per_second: f64,
}

/// Sends `count` activation emails through `sink` with `concurrency` under way at once, after
/// a warm-up; then renders `count` more without sending.
pub async fn measure(sink: &SmtpSink, count: u64, concurrency: usize) -> anyhow::Result<Rates> {
    let notifier = Arc::new(notifier(sink.port, concurrency)?);
    sink.count_only();

    let warm_up: Vec<Notification> = (0..200)
        .map(|i| activation(1_000_000 + i))
        .collect::<anyhow::Result<_>>()?;
    send_all(&notifier, warm_up, concurrency).await?;

    let batch: Vec<Notification> = (0..count).map(activation).collect::<anyhow::Result<_>>()?;
    let before = sink.count();
    let started = Instant::now();
    send_all(&notifier, batch, concurrency).await?;
    let elapsed = started.elapsed();
    let arrived = sink.count() - before;
    if arrived != count {
        bail!("the SMTP server received {arrived} emails, expected {count}");
    }

    let to_render: Vec<Notification> = (0..count)
        .map(|i| activation(2_000_000 + i))
        .collect::<anyhow::Result<_>>()?;
    let render_elapsed = tokio::task::spawn_blocking({
        let notifier = Arc::clone(&notifier);
        move || -> anyhow::Result<Duration> {
            let started = Instant::now();
            for n in &to_render {
                notifier
                    .render(n)
                    .context("rendering an activation email")?;
            }
            Ok(started.elapsed())
        }
    })
    .await??;

    Ok(Rates {
        count,
        sent_per_second: count as f64 / elapsed.as_secs_f64(),
        rendered_per_second: count as f64 / render_elapsed.as_secs_f64(),
    })
}

async fn send_all(
    notifier: &Arc<EmailNotifier>,
    batch: Vec<Notification>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let failures: Vec<String> = stream::iter(batch)
        .map(|n| {
            let notifier = Arc::clone(notifier);
            // Spawned, so that rendering runs on every core, as in the dispatcher.
            tokio::spawn(async move { notifier.notify(&n).await.map_err(|e| e.to_string()) })
        })
        .buffer_unordered(concurrency)
        .filter_map(|joined| async move {
            match joined {
                Ok(Ok(_)) => None,
                Ok(Err(e)) => Some(e),
                Err(e) => Some(e.to_string()),
            }
        })
        .collect()
        .await;
    if let Some(first) = failures.first() {
        bail!("{} emails failed; the first: {first}", failures.len());
    }
    Ok(())
}

/// A customer activation-email notifier sending to 127.0.0.1:`port`.
fn notifier(port: u16, pool: usize) -> anyhow::Result<EmailNotifier> {
    let config: EmailConfig = serde_json::from_value(serde_json::json!({
        "audience": "customer",
        "template": "activation",
        "from": "eSIM Shop <esim@example.com>",
        "brand_name": "eSIM Shop",
        "support_email": "help@example.com",
        "transport": {
            "type": "smtp",
            "url": format!("smtp://127.0.0.1:{port}"),
            "pool_max_size": pool,
            "timeout": "10s",
        },
    }))
    .context("the email notifier's configuration")?;
    EmailNotifier::new("bench-email", config).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The activation email of order `seq`, with a registered customer.
fn activation(seq: u64) -> anyhow::Result<Notification> {
    let usd = |amount: &str| {
        Money::parse(amount, Currency::Iso("USD".into())).map_err(anyhow::Error::msg)
    };
    let order = CompletedOrder {
        order_no: OrderNo::parse(&format!("BMAIL{seq:09}")).map_err(anyhow::Error::msg)?,
        iccid: iccid(seq),
        activation_code: ActivationCode::parse(&format!(
            "LPA:1$rsp.bench.example${}",
            matching_id(seq)
        ))?,
        package_code: Some("YN2602130000001".into()),
        package_name: Some("Malaysia, 1 Day, 1GB, 256kbps".into()),
        contract_price: Some(usd("9.99")?),
        customer: Some(Customer {
            email: EmailAddress::parse(&format!("traveller+{seq}@example.com"))?,
            name: Some("Ana Traveller".into()),
            locale: Some(Locale::parse("en")?),
            retail_price: Some(usd("14.90")?),
        }),
        received_at_ms: 1_714_555_800_000,
    };
    Ok(Notification {
        key: format!("bench-email-{seq}"),
        content: Content::OrderCompleted(order),
    })
}
