use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures_util::StreamExt;
use indexmap::IndexMap;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::value::RawValue;

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
    serde_json::from_str::<&RawValue>(&text).context("the payload is not JSON")?;
    // Sent as written, as the provider's own bytes would be; `--result` and `--count` change
    // their members only, and every other value keeps its text (a long numeric order number
    // is not rounded, `9.990` stays `9.990`).
    let edits = args.result.is_some() || args.count > 1;
    let parsed: Option<IndexMap<String, Box<RawValue>>> = serde_json::from_str(&text).ok();
    if edits && parsed.is_none() {
        anyhow::bail!(
            "--result and --count change the payload's members: it must be a JSON object"
        );
    }
    let mut members = parsed.unwrap_or_default();
    if let Some(result) = &args.result {
        members.insert("result".into(), json_text(result)?);
    }
    let client = esim_courier_notify_http::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let base_order = members
        .get("orderNo")
        .map(|v| serde_json::from_str::<String>(v.get()).unwrap_or_else(|_| v.get().to_owned()))
        .unwrap_or_else(|| "SIM".to_owned());
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
    let mut bodies = Vec::with_capacity(args.count as usize);
    for i in 1..=args.count {
        if !edits {
            bodies.push((base_order.clone(), text.clone().into_bytes()));
            continue;
        }
        let order = if args.count > 1 {
            let order = format!("{base_order}-{i}");
            members.insert("orderNo".into(), json_text(&order)?);
            order
        } else {
            base_order.clone()
        };
        bodies.push((order, serde_json::to_vec(&members)?));
    }
    let orders = bodies.into_iter().map(|(order, body)| {
        let (client, url, progress) = (client.clone(), args.url.clone(), progress.clone());
        async move {
            let delivered = deliver(&client, &url, &order, body, &progress).await;
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

/// `text` as a JSON string.
fn json_text(text: &str) -> anyhow::Result<Box<RawValue>> {
    Ok(RawValue::from_string(serde_json::to_string(text)?)?)
}

/// One order, with the provider's retry policy. Returns whether it got a 2xx.
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    order: &str,
    bytes: Vec<u8>,
    progress: &ProgressBar,
) -> bool {
    let order = super::terminal::printable(order);
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
            // Not `e` itself: its text ends with the URL, and the URL holds the webhook token.
            Err(e) => format!(
                "order {order} attempt {attempt}: failed in {ms:.1} ms: {}",
                esim_courier_notify_http::describe(&e)
            ),
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
