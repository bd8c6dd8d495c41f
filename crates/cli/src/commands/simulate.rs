use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// The provider's sample COMPLETED order, used when no payload file is given.
const SAMPLE: &str = r#"{
    "orderNo": "2026032516xxxxxxxxxxx",
    "currency": "4",
    "iccid": "8910010000xxxxxxxxxx",
    "lpa": "LPA:1$rsp.demo$69C32E7Dxxxxxxxx",
    "packageCode": "YN2602130xxxxxx",
    "packageName": "Malaysia, 1 Day, 1GB, 256kbps",
    "price": "9.99",
    "result": "COMPLETED"
}"#;

/// The provider's waits before its 2nd and 3rd attempts.
const RETRY_WAITS: [Duration; 2] = [Duration::from_secs(3), Duration::from_secs(6)];

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The full webhook URL, token included: http://127.0.0.1:8080/webhooks/order/<token>
    #[arg(long)]
    url: String,
    /// A JSON payload file (default: the provider's sample COMPLETED order).
    #[arg(long)]
    payload: Option<PathBuf>,
    /// Override the payload's result.
    #[arg(long, value_parser = ["COMPLETED", "FAILED"])]
    result: Option<String>,
    /// Send this many distinct orders (order numbers get a -N suffix).
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Orders in flight at once with --count.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// `esim-courier simulate`: POST like the provider does, 3 attempts at 0 s, +3 s, +6 s,
/// printing each attempt's status and latency.
pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let text = match &args.payload {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => SAMPLE.to_owned(),
    };
    let mut payload: Value = serde_json::from_str(&text).context("the payload is not JSON")?;
    if let (Some(result), Some(obj)) = (&args.result, payload.as_object_mut()) {
        obj.insert("result".into(), Value::String(result.clone()));
    }
    let client = esim_courier_notify_http::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let base_order = payload
        .get("orderNo")
        .and_then(Value::as_str)
        .unwrap_or("SIM")
        .to_owned();
    let progress = if args.count > 1 {
        let bar = ProgressBar::new(u64::from(args.count));
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} orders, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let orders = (1..=args.count).map(|i| {
        let mut body = payload.clone();
        if args.count > 1 {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("orderNo".into(), Value::String(format!("{base_order}-{i}")));
            }
        }
        let (client, url, progress) = (client.clone(), args.url.clone(), progress.clone());
        async move {
            let delivered = deliver(&client, &url, &body, &progress).await;
            progress.inc(1);
            delivered
        }
    });
    let results: Vec<bool> = futures_util::stream::iter(orders)
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    progress.finish_and_clear();
    let failures = results.iter().filter(|ok| !**ok).count();
    if args.count > 1 {
        println!(
            "{} of {} orders delivered",
            results.len() - failures,
            args.count
        );
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One order, with the provider's retry policy. Returns whether it got a 2xx.
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    progress: &ProgressBar,
) -> bool {
    let order = body
        .get("orderNo")
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .unwrap_or_default();
    let Ok(bytes) = serde_json::to_vec(body) else {
        return false;
    };
    for attempt in 1..=3usize {
        let started = Instant::now();
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
            .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let line = match sent {
            Ok(r) => {
                let status = r.status();
                let text = r.text().await.unwrap_or_default();
                if status.is_success() {
                    say(
                        progress,
                        format!(
                            "order {order} attempt {attempt}: HTTP {} in {ms:.1} ms {text}",
                            status.as_u16()
                        ),
                    );
                    return true;
                }
                format!(
                    "order {order} attempt {attempt}: HTTP {} in {ms:.1} ms {text}",
                    status.as_u16()
                )
            }
            Err(e) => format!("order {order} attempt {attempt}: failed in {ms:.1} ms: {e}"),
        };
        say(progress, line);
        if let Some(wait) = RETRY_WAITS.get(attempt - 1) {
            say(
                progress,
                format!(
                    "order {order}: retrying in {} s, as the provider does",
                    wait.as_secs()
                ),
            );
            tokio::time::sleep(*wait).await;
        }
    }
    say(
        progress,
        format!("order {order}: 3 attempts failed; the provider would drop this order now"),
    );
    false
}

/// Prints above the progress bar, or plainly when there is no bar (not a terminal, one order):
/// a hidden bar would swallow the line.
fn say(progress: &ProgressBar, line: String) {
    if progress.is_hidden() {
        println!("{line}");
    } else {
        progress.println(line);
    }
}
