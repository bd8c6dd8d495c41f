use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
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
}

/// `esim-courier simulate`: POST like the provider does, 3 attempts at 0 s, +3 s, +6 s.
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
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let base_order = payload
        .get("orderNo")
        .and_then(Value::as_str)
        .unwrap_or("SIM")
        .to_owned();
    let mut failures = 0u32;
    for i in 1..=args.count {
        let mut body = payload.clone();
        if args.count > 1 {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("orderNo".into(), Value::String(format!("{base_order}-{i}")));
            }
        }
        let order = body
            .get("orderNo")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let bytes = serde_json::to_vec(&body)?;
        let mut delivered = false;
        for attempt in 1..=3usize {
            let started = Instant::now();
            let sent = client
                .post(&args.url)
                .header("content-type", "application/json")
                .body(bytes.clone())
                .send()
                .await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match sent {
                Ok(r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    println!(
                        "order {order} attempt {attempt}: HTTP {} in {ms:.1} ms {text}",
                        status.as_u16()
                    );
                    if status.is_success() {
                        delivered = true;
                        break;
                    }
                }
                Err(e) => println!("order {order} attempt {attempt}: failed in {ms:.1} ms: {e}"),
            }
            if let Some(wait) = RETRY_WAITS.get(attempt - 1) {
                println!(
                    "order {order}: retrying in {} s, as the provider does",
                    wait.as_secs()
                );
                tokio::time::sleep(*wait).await;
            }
        }
        if !delivered {
            println!("order {order}: 3 attempts failed; the provider would drop this order now");
            failures += 1;
        }
    }
    if args.count > 1 {
        println!(
            "{} of {} orders delivered",
            args.count - failures,
            args.count
        );
    }
    Ok(if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
