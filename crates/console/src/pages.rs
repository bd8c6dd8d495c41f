//! The console's pages, in maud: escaped by default, checked when the crate compiles, no
//! asset and no script, readable on a phone and a desktop.

use esim_courier_core::ActivationCode;
use esim_courier_store::{
    AlertRecord, AuditRecord, ConsoleSession, JobRecord, OrderDetails, OrderFilter, OrderRow,
    Overview, Role,
};
use maud::{html, Markup, DOCTYPE};

/// `2026-11-30T10:00:00.123Z` from Unix milliseconds.
pub(crate) fn time(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

fn layout(title: &str, session: Option<&ConsoleSession>, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · esim-courier" }
                link rel="stylesheet" href="/admin/console.css";
            }
            body {
                @if let Some(session) = session {
                    header {
                        nav {
                            a href="/admin/" { "Overview" } " · "
                            a href="/admin/orders" { "Orders" } " · "
                            a href="/admin/dead-letters" { "Dead letters" } " · "
                            a href="/admin/alerts" { "Alerts" } " · "
                            a href="/admin/audit" { "Audit" }
                        }
                        form method="post" action="/admin/logout" {
                            "Logged in as " strong { (session.user) } " (" (session.role) ") "
                            input type="hidden" name="csrf_token" value=(session.csrf_token);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
    .into_string()
}

/// The login form, with `error` above it after a failed attempt.
pub(crate) fn login(csrf_token: &str, error: Option<&str>) -> String {
    layout(
        "Log in",
        None,
        html! {
            h1 { "esim-courier console" }
            @if let Some(error) = error {
                p role="alert" { strong { (error) } }
            }
            form method="post" action="/admin/login" {
                input type="hidden" name="csrf_token" value=(csrf_token);
                p {
                    label for="username" { "User name" } br;
                    input id="username" name="username" autocomplete="username" required;
                }
                p {
                    label for="password" { "Password" } br;
                    input id="password" name="password" type="password" autocomplete="current-password" required;
                }
                p { button type="submit" { "Log in" } }
            }
        },
    )
}

/// The overview: the last 24 hours, the queue, the last webhook and sweep, a chart.
pub(crate) fn overview(session: &ConsoleSession, o: &Overview, now: i64) -> String {
    let received = |outcome: &str| {
        o.received
            .iter()
            .find(|(k, _)| k == outcome)
            .map_or(0, |(_, n)| *n)
    };
    let total: i64 = o.received.iter().map(|(_, n)| n).sum();
    layout(
        "Overview",
        Some(session),
        html! {
            h1 { "Overview" }
            h2 { "The last 24 hours" }
            table {
                tbody {
                    tr { th { "Webhooks received" } td { (total) } }
                    tr { th { "accepted" } td { (received("accepted")) } }
                    tr { th { "duplicate" } td { (received("duplicate")) } }
                    tr { th { "conflict" } td { (received("conflict")) } }
                    tr { th { "quarantined" } td { (received("quarantined")) } }
                    tr { th { "Activation emails sent" } td { (o.emails_sent) } }
                    tr { th { "Alerts sent" } td { (o.alerts_sent) } }
                }
            }
            (chart(&o.webhooks_per_hour, &o.emails_per_hour))
            h2 { "Now" }
            table {
                tbody {
                    tr { th { "Queue" } td { (o.queue_depth) " job(s) pending or waiting" } }
                    tr {
                        th { "Oldest waiting job" }
                        td { @match o.oldest_waiting_at { Some(at) => { (time(at)) " (" (minutes(now - at)) ")" }, None => "none" } }
                    }
                    tr { th { "Dead letters" } td { a href="/admin/dead-letters" { (o.dead) } } }
                    tr {
                        th { "Last webhook" }
                        td { @match o.last_webhook_at { Some(at) => { (time(at)) " (" (minutes(now - at)) ")" }, None => "none yet" } }
                    }
                    tr {
                        th { "Reconciliation" }
                        td {
                            @match &o.last_sweep {
                                Some((state, at)) => { "last sweep " (state) " at " (time(*at)) }
                                None => "no sweep yet (it needs a [provider] section)",
                            }
                        }
                    }
                }
            }
        },
    )
}

/// `3 min ago`, `2 h ago`.
fn minutes(ago_ms: i64) -> String {
    let minutes = ago_ms.max(0) / 60_000;
    if minutes < 120 {
        format!("{minutes} min ago")
    } else {
        format!("{} h ago", minutes / 60)
    }
}

/// Webhooks and activation emails per hour over 24 hours, as inline SVG drawn here (no
/// script, no asset): two bars an hour, scaled to the busiest hour, and the numbers in a
/// title for screen readers and hover.
fn chart(webhooks: &[i64], emails: &[i64]) -> Markup {
    let max = webhooks
        .iter()
        .chain(emails)
        .copied()
        .max()
        .unwrap_or(0)
        .max(1);
    let height = 100i64;
    let bar = |n: i64| n * height / max;
    let label = format!(
        "Webhooks and activation emails per hour, the last 24 hours: {} webhooks, {} emails",
        webhooks.iter().sum::<i64>(),
        emails.iter().sum::<i64>()
    );
    html! {
        figure {
            svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 480 120" width="100%" role="img" aria-label=(label) {
                title { (label) }
                line x1="0" y1=(height) x2="480" y2=(height) stroke="#52606d" {}
                @for (h, (w, e)) in webhooks.iter().zip(emails).enumerate() {
                    @let x = i64::try_from(h).unwrap_or(0) * 20;
                    rect x=(x + 2) y=(height - bar(*w)) width="8" height=(bar(*w)) fill="#0b63ce" {
                        title { (w) " webhooks" }
                    }
                    rect x=(x + 10) y=(height - bar(*e)) width="8" height=(bar(*e)) fill="#1f9d55" {
                        title { (e) " emails" }
                    }
                }
                text x="0" y="116" font-size="10" fill="#52606d" { "24 h ago" }
                text x="480" y="116" font-size="10" fill="#52606d" text-anchor="end" { "now" }
            }
            figcaption { "Per hour: webhooks (blue), activation emails (green)." }
        }
    }
}

/// What the order list was asked for, as it goes back into links and the form.
#[derive(Debug, Default)]
pub(crate) struct ListParams {
    pub(crate) filter: Option<OrderFilter>,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) q: String,
}

impl ListParams {
    /// The query string of these parameters (without `after`).
    pub(crate) fn query(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = self.filter {
            parts.push(format!("filter={}", f.as_str()));
        }
        for (k, v) in [("from", &self.from), ("to", &self.to), ("q", &self.q)] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", url_encode(v)));
            }
        }
        parts.join("&")
    }
}

/// `s` for a URL's path segment or query value.
pub(crate) fn url_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The order list: filters, the search box, one page of rows, the link to the next.
pub(crate) fn orders(
    session: &ConsoleSession,
    params: &ListParams,
    rows: &[OrderRow],
    next: Option<String>,
) -> String {
    layout(
        "Orders",
        Some(session),
        html! {
            h1 { "Orders" }
            form method="get" action="/admin/orders" {
                label for="q" { "Order number, ICCID or customer email" } " "
                input id="q" name="q" type="search" value=(params.q);
                " "
                label for="filter" { "Situation" } " "
                select id="filter" name="filter" {
                    option value="" { "any" }
                    @for f in OrderFilter::ALL {
                        option value=(f.as_str()) selected[params.filter == Some(f)] { (f.as_str().replace('_', " ")) }
                    }
                }
                " "
                label for="from" { "From" } " "
                input id="from" name="from" type="date" value=(params.from);
                " "
                label for="to" { "Before" } " "
                input id="to" name="to" type="date" value=(params.to);
                " "
                button type="submit" { "Show" }
            }
            p { a href={ "/admin/orders.csv?" (params.query()) } { "Export these orders (CSV)" } }
            @if rows.is_empty() {
                p { "No order matches." }
            } @else {
                table {
                    thead { tr { th { "First seen" } th { "Order" } th { "State" } th { "Package" } th { "ICCID" } th { "Customer" } } }
                    tbody {
                        @for r in rows {
                            tr {
                                td { (time(r.created_at)) }
                                td { a href={ "/admin/orders/" (url_encode(&r.order_no)) } { (r.order_no) } }
                                td { (r.state) }
                                td { (r.package_name.as_deref().unwrap_or("")) }
                                td { (r.iccid.as_deref().unwrap_or("")) }
                                td { (r.customer_email.as_deref().unwrap_or("not registered")) }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = next {
                p { a rel="next" href=(next) { "Older orders" } }
            }
        },
    )
}

/// An order: its customer, every webhook receipt (activation codes masked), its events, every
/// job with every attempt, what operators did; the actions for operators.
pub(crate) fn order(
    session: &ConsoleSession,
    details: &OrderDetails,
    receipts: &[(i64, i64, String, String)],
    audit: &[AuditRecord],
) -> String {
    let o = &details.order;
    let path = format!("/admin/orders/{}", url_encode(o.order_no.as_str()));
    layout(
        &format!("Order {}", o.order_no),
        Some(session),
        html! {
            h1 { "Order " (o.order_no) }
            p { "State " strong { (o.state) } ", first seen " (time(o.created_at)) ", last change " (time(o.updated_at)) }
            @if let Some(reference) = &details.placement {
                p { "Placed by esim-courier, reference " (reference) }
            }
            h2 { "Customer" }
            @match &o.customer {
                Some(c) => p {
                    (c.email.as_str())
                    @if let Some(name) = &c.name { " (" (name) ")" }
                    @if let Some(locale) = &c.locale { ", language " (locale.as_str()) }
                },
                None => p { "Not registered." },
            }
            @if session.role == Role::Operator {
                h2 { "Actions" }
                form method="post" action={ (path) "/resend" } {
                    input type="hidden" name="csrf_token" value=(session.csrf_token);
                    button type="submit" { "Resend the activation email" }
                }
                form method="post" action={ (path) "/reveal" } {
                    input type="hidden" name="csrf_token" value=(session.csrf_token);
                    button type="submit" { "Reveal the activation code" }
                }
            }
            h2 { "Timeline" }
            (timeline(details, receipts, audit))
            h2 { "Webhook deliveries and records" }
            @for (id, at, outcome, body) in receipts {
                h3 { "#" (id) " " (time(*at)) " " (outcome) }
                pre { (body) }
            }
            h2 { "Events" }
            table {
                thead { tr { th { "Received" } th { "Result" } th { "Disposition" } th { "Source" } th { "ICCID" } th { "Activation code" } } }
                tbody {
                    @for e in &details.events {
                        tr {
                            td { (time(e.received_at)) }
                            td { (e.result.as_str()) }
                            td { (e.disposition) }
                            td { (e.source.as_str()) }
                            td { (e.iccid) }
                            td { (e.activation_code.as_ref().map(ActivationCode::masked).unwrap_or_default()) }
                        }
                    }
                }
            }
            h2 { "Notifications" }
            @for j in &details.jobs {
                (job(j, session))
            }
            @if !audit.is_empty() {
                h2 { "Operator actions" }
                ul {
                    @for a in audit {
                        li { (time(a.at)) " " (a.action) " by " (a.actor) ": " (a.detail) }
                    }
                }
            }
        },
    )
}

/// Everything that happened to the order, oldest first, in one list: webhook deliveries, the
/// customer's registration, events, delivery attempts, operators' actions.
fn timeline(
    details: &OrderDetails,
    receipts: &[(i64, i64, String, String)],
    audit: &[AuditRecord],
) -> Markup {
    let mut entries: Vec<(i64, String)> = Vec::new();
    for (id, at, outcome, _) in receipts {
        entries.push((*at, format!("received #{id}: {outcome}")));
    }
    if let Some(at) = details.order.registered_at {
        entries.push((at, "customer registered".to_owned()));
    }
    for e in &details.events {
        entries.push((
            e.received_at,
            format!(
                "event {} ({}, by {})",
                e.result.as_str(),
                e.disposition,
                e.source.as_str()
            ),
        ));
    }
    for j in &details.jobs {
        for a in &j.attempt_log {
            let to = a
                .recipient
                .as_ref()
                .map(|r| format!(" to {}", r.masked()))
                .unwrap_or_default();
            entries.push((
                a.started_at,
                format!(
                    "job {} {} → {}: attempt {} {}{to}",
                    j.id,
                    j.kind,
                    j.notifier,
                    a.attempt,
                    format!("{:?}", a.outcome).to_lowercase()
                ),
            ));
        }
    }
    for a in audit {
        entries.push((a.at, format!("{} by {}: {}", a.action, a.actor, a.detail)));
    }
    entries.sort_by_key(|(at, _)| *at);
    html! {
        ol {
            @for (at, what) in &entries {
                li { (time(*at)) " " (what) }
            }
        }
    }
}

fn job(j: &JobRecord, session: &ConsoleSession) -> Markup {
    html! {
        h3 { "Job " (j.id) " " (j.kind) " → " (j.notifier) ": " (j.state) ", " (j.attempts) " attempt(s)" }
        @if j.state == esim_courier_store::JobState::Dead && session.role == Role::Operator {
            form method="post" action="/admin/dead-letters/retry" {
                input type="hidden" name="csrf_token" value=(session.csrf_token);
                input type="hidden" name="id" value=(j.id);
                button type="submit" name="which" value="selected" { "Retry this dead letter" }
            }
        }
        @if !j.attempt_log.is_empty() {
            table {
                thead { tr { th { "Attempt" } th { "Started" } th { "Outcome" } th { "Took" } th { "Answer" } } }
                tbody {
                    @for a in &j.attempt_log {
                        tr {
                            td { (a.attempt) }
                            td { (time(a.started_at)) }
                            td {
                                (format!("{:?}", a.outcome).to_lowercase())
                                @if let Some(to) = &a.recipient { " to " (to.masked()) }
                                @if let Some(l) = &a.locale { " in " (l) }
                            }
                            td { (a.finished_at - a.started_at) " ms" }
                            td { (a.error.as_deref().or(a.receipt.as_deref()).unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

/// Asks to confirm `what` by posting `action` again with `confirm=yes` and `fields`.
pub(crate) fn confirm(
    session: &ConsoleSession,
    what: &str,
    (action, fields): (&str, &[(String, String)]),
    back: &str,
) -> String {
    layout(
        "Confirm",
        Some(session),
        html! {
            h1 { "Confirm" }
            p { (what) }
            form method="post" action=(action) {
                input type="hidden" name="csrf_token" value=(session.csrf_token);
                input type="hidden" name="confirm" value="yes";
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                button type="submit" { "Yes, go ahead" }
            }
            p { a href=(back) { "No, go back" } }
        },
    )
}

/// The answer to an action: one sentence, maybe a value shown this once, and the way back.
pub(crate) fn done(
    session: &ConsoleSession,
    said: &str,
    shown: Option<&str>,
    back: &str,
) -> String {
    layout(
        "Done",
        Some(session),
        html! {
            p { (said) }
            @if let Some(shown) = shown {
                p { code { (shown) } }
                p { "This page shows it once; it is not kept anywhere else in the console." }
            }
            p { a href=(back) { "Back" } }
        },
    )
}

/// The dead letters (those matching `filter`: a notifier, a kind), each with a box to pick
/// it, and the retry forms: the selected ones, or all those shown.
pub(crate) fn dead_letters(
    session: &ConsoleSession,
    dead: &[JobRecord],
    filter: (&str, &str),
    choices: (&[String], &[String]),
) -> String {
    let (notifier, kind) = filter;
    layout(
        "Dead letters",
        Some(session),
        html! {
            h1 { "Dead letters" }
            form method="get" action="/admin/dead-letters" {
                label for="notifier" { "Channel" } " "
                select id="notifier" name="notifier" {
                    option value="" { "any" }
                    @for n in choices.0 { option value=(n) selected[n == notifier] { (n) } }
                }
                " "
                label for="kind" { "What" } " "
                select id="kind" name="kind" {
                    option value="" { "any" }
                    @for k in choices.1 { option value=(k) selected[k == kind] { (k) } }
                }
                " "
                button type="submit" { "Show" }
            }
            @if dead.is_empty() {
                p { "None." }
            } @else {
                form method="post" action="/admin/dead-letters/retry" {
                    input type="hidden" name="csrf_token" value=(session.csrf_token);
                    input type="hidden" name="notifier" value=(notifier);
                    input type="hidden" name="kind" value=(kind);
                    table {
                        thead { tr { th { "Retry" } th { "Given up" } th { "What" } th { "Order" } th { "Attempts" } th { "Why" } } }
                        tbody {
                            @for j in dead {
                                tr {
                                    td { input type="checkbox" name="id" value=(j.id) aria-label={ "job " (j.id) }; }
                                    td { (time(j.updated_at)) }
                                    td { (j.kind) " → " (j.notifier) }
                                    td {
                                        @if let Some(o) = &j.order_no {
                                            a href={ "/admin/orders/" (url_encode(o)) } { (o) }
                                        }
                                    }
                                    td { (j.attempts) }
                                    td { (j.last_error.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                    @if session.role == Role::Operator {
                        p {
                            button type="submit" name="which" value="selected" { "Retry the selected" } " "
                            button type="submit" name="which" value="all" { "Retry all " (dead.len()) }
                        }
                    }
                }
            }
        },
    )
}

/// The latest operator actions.
pub(crate) fn audit(session: &ConsoleSession, entries: &[AuditRecord]) -> String {
    layout(
        "Audit",
        Some(session),
        html! {
            h1 { "Audit" }
            table {
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Order" } th { "Detail" } } }
                tbody {
                    @for a in entries {
                        tr {
                            td { (time(a.at)) }
                            td { (a.actor) }
                            td { (a.action) }
                            td { (a.order_no.as_deref().unwrap_or("")) }
                            td { (a.detail) }
                        }
                    }
                }
            }
        },
    )
}

/// What operators were told: each alert, the channel it went to, and how that went.
pub(crate) fn alerts(session: &ConsoleSession, alerts: &[AlertRecord]) -> String {
    layout(
        "Alerts",
        Some(session),
        html! {
            h1 { "Alerts" }
            table {
                thead { tr { th { "Raised" } th { "Kind" } th { "Order" } th { "What" } th { "Channel" } th { "Delivery" } } }
                tbody {
                    @for a in alerts {
                        @let alert = a.payload.as_deref().and_then(|p| serde_json::from_str::<esim_courier_core::Alert>(p).ok());
                        tr {
                            td { (time(a.created_at)) }
                            td { (alert.as_ref().map(|x| x.kind.as_str()).unwrap_or("?")) }
                            td { (alert.as_ref().and_then(|x| x.order_no.as_deref()).unwrap_or("")) }
                            td { (alert.as_ref().map(|x| x.reason.as_str()).unwrap_or("")) }
                            td { (a.notifier) }
                            td {
                                (a.state) ", " (a.attempts) " attempt(s)"
                                @if let Some(e) = &a.last_error { ": " (e) }
                            }
                        }
                    }
                }
            }
        },
    )
}
