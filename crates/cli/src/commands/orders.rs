use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use esim_courier_core::{ActivationCode, Currency, Locale};

use super::terminal::{printable, printable_json};
use super::{load, open_store, time};

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Show an order: its customer, events (activation code masked), notifications and every
    /// delivery attempt.
    Show {
        /// The provider's order number.
        order_no: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `esim-courier orders ...`.
pub async fn run(path: &Path, command: OrdersCommand) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let store = open_store(&config).await?;
    let OrdersCommand::Show { order_no, json } = command;
    let Some(d) = store.order_details(&order_no).await? else {
        eprintln!("order {} is not known", printable(&order_no));
        return Ok(ExitCode::from(2));
    };
    let audit = store.audit_log(&order_no).await?;
    if json {
        let events: Vec<_> = d.events.iter().map(|e| serde_json::json!({
            "id": e.id, "receivedAt": time(e.received_at), "result": e.result.as_str(), "disposition": e.disposition,
            "iccid": e.iccid, "activationCode": e.activation_code.as_ref().map(ActivationCode::masked), "activationCodeErased": e.erased_code, "packageName": e.package_name,
            "price": e.contract_price.as_ref().map(|m| m.amount().to_string()),
            "currency": e.currency.as_ref().map(Currency::code), "warnings": e.warnings,
            "source": e.source.as_str(),
        })).collect();
        let out = serde_json::json!({
            "orderNo": d.order.order_no, "state": d.order.state,
            "customer": d.order.customer.as_ref().map(|c| serde_json::json!({
                "email": c.email.as_str(), "name": c.name, "locale": c.locale.as_ref().map(Locale::as_str),
            })),
            "placement": d.placement, "events": events, "notifications": d.jobs, "operatorActions": audit,
        });
        println!("{}", printable_json(&serde_json::to_string_pretty(&out)?));
        return Ok(ExitCode::SUCCESS);
    }
    // Lines built from stored data, printed through `printable` at the end.
    let mut out: Vec<String> = Vec::new();
    out.push(format!(
        "order {}  state {}  first seen {}",
        d.order.order_no,
        d.order.state,
        time(d.order.created_at)
    ));
    match &d.order.customer {
        Some(c) => out.push(format!(
            "customer {}{}{}",
            c.email.as_str(),
            c.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            c.locale
                .as_ref()
                .map(|l| format!(" locale {l}"))
                .unwrap_or_default()
        )),
        None => out.push("customer not registered".to_owned()),
    }
    if let Some(reference) = &d.placement {
        out.push(format!("placed by esim-courier, reference {reference}"));
    }
    out.push(String::new());
    out.push(format!("webhook deliveries: {}", d.receipts.len()));
    for (id, at, outcome) in &d.receipts {
        out.push(format!("  #{id} {} {outcome}", time(*at)));
    }
    out.push(String::new());
    out.push("events:".to_owned());
    for e in &d.events {
        out.push(format!(
            "  #{} {} {} ({}, by {}) ICCID {} code {} package {} price {} {}",
            e.id,
            time(e.received_at),
            e.result,
            e.disposition,
            e.source,
            if e.iccid.is_empty() { "-" } else { &e.iccid },
            match (&e.activation_code, &e.erased_code) {
                (Some(code), _) => code.masked(),
                (None, Some(masked)) => format!("{masked} (erased)"),
                (None, None) => "-".into(),
            },
            e.package_name.as_deref().unwrap_or("-"),
            e.contract_price
                .as_ref()
                .map_or_else(|| "-".into(), |m| m.amount().to_string()),
            e.currency.as_ref().map_or("", Currency::code),
        ));
        for w in &e.warnings {
            out.push(format!("      warning: {w}"));
        }
    }
    out.push(String::new());
    out.push("notifications:".to_owned());
    for j in &d.jobs {
        out.push(format!(
            "  job {} {} -> {}: {} after {} attempt(s)",
            j.id, j.kind, j.notifier, j.state, j.attempts
        ));
        for a in &j.attempt_log {
            out.push(format!(
                "      attempt {} {} {}{}{} ({} ms){}{}",
                a.attempt,
                time(a.started_at),
                a.outcome,
                a.recipient
                    .as_ref()
                    .map(|r| format!(" to {}", r.masked()))
                    .unwrap_or_default(),
                a.locale
                    .as_deref()
                    .map(|l| format!(" in {l}"))
                    .unwrap_or_default(),
                a.finished_at - a.started_at,
                a.error
                    .as_deref()
                    .map(|e| format!(" error: {e}"))
                    .unwrap_or_default(),
                a.receipt
                    .as_deref()
                    .map(|r| format!(" receipt: {r}"))
                    .unwrap_or_default(),
            ));
        }
    }
    if !audit.is_empty() {
        out.push(String::new());
        out.push("operator actions:".to_owned());
        for a in &audit {
            out.push(format!(
                "  {} {} by {}: {}",
                time(a.at),
                a.action,
                a.actor,
                a.detail
            ));
        }
    }
    for line in out {
        println!("{}", printable(&line));
    }
    Ok(ExitCode::SUCCESS)
}
