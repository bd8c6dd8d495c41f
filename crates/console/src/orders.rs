//! The order pages and the operators' actions: the list (filters, search, keyset pages, CSV),
//! one order's timeline, resend, reveal, the dead letters and their retry, the audit log.
//!
//! Reads go through the store's queries; actions through the same store calls as the CLI
//! (`resend`, `dead-letters retry`), so the two never disagree. Activation codes are masked
//! everywhere but on the answer to a reveal, which the audit log records.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use esim_courier_core::{ActivationCode, OrderNo};
use esim_courier_store::{OrderFilter, OrderQuery};
use serde::Deserialize;

use crate::pages::{self, url_encode as encode, ListParams};
use crate::{actor, page, plain, reader, unavailable, State};
use esim_courier_store::ConsoleSession;

/// Rows on one page of the list.
const PAGE: i64 = 50;
/// Rows in one CSV export at the most.
const CSV_MAX: i64 = 100_000;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    filter: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    after: Option<String>,
}

/// A `YYYY-MM-DD` date as Unix ms at its start (UTC).
fn day(date: &str) -> Option<i64> {
    let t = humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).ok()?;
    let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
    i64::try_from(ms).ok()
}

/// The list's parameters read: the store's query and what goes back into the page; or why
/// they cannot be (a 400).
fn read(query: &ListQuery) -> Result<(OrderQuery, ListParams), &'static str> {
    let filter = match query.filter.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(OrderFilter::from_name(f).ok_or("No such situation to filter by.")?),
        None => None,
    };
    let date = |v: &Option<String>| -> Result<(Option<i64>, String), &'static str> {
        match v.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => Ok((Some(day(d).ok_or("A date is YYYY-MM-DD.")?), d.to_owned())),
            None => Ok((None, String::new())),
        }
    };
    let (from_ms, from) = date(&query.from)?;
    let (to_ms, to) = date(&query.to)?;
    let q = query
        .q
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    // No order number, ICCID or address holds one (and PostgreSQL refuses text with a NUL).
    if q.chars().any(char::is_control) {
        return Err("A search cannot hold control characters.");
    }
    // The page cursor ends with an order number, which holds none either.
    if query
        .after
        .as_deref()
        .is_some_and(|a| a.chars().any(char::is_control))
    {
        return Err("A page cursor cannot hold control characters.");
    }
    Ok((
        OrderQuery {
            filter,
            from_ms,
            to_ms,
            q: (!q.is_empty()).then(|| q.clone()),
        },
        ListParams {
            filter,
            from,
            to,
            q,
        },
    ))
}

/// `?after=<created_at>:<order_no>`, the keyset of the previous page's last row.
fn keyset(after: Option<&str>) -> Option<(i64, &str)> {
    let (at, order_no) = after?.split_once(':')?;
    Some((at.parse().ok()?, order_no))
}

pub(crate) async fn list(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    let session = match reader(&req, &state).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let (store_query, params) = match read(&query) {
        Ok(read) => read,
        Err(why) => return plain(StatusCode::BAD_REQUEST, why),
    };
    let rows = match state
        .store
        .console_orders(&store_query, keyset(query.after.as_deref()), PAGE)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return unavailable(&e),
    };
    let next = (rows.len() == usize::try_from(PAGE).unwrap_or(usize::MAX))
        .then(|| rows.last())
        .flatten()
        .map(|last| {
            let after = format!("{}:{}", last.created_at, last.order_no);
            let query = params.query();
            let sep = if query.is_empty() { "" } else { "&" };
            format!("/admin/orders?{query}{sep}after={}", encode(&after))
        });
    page(pages::orders(&session, &params, &rows, next))
}

/// One CSV cell: quoted, its quotes doubled, and one that a spreadsheet would read as a
/// formula (`=`, `+`, `-`, `@`, a tab or a carriage return first) made text with a `'`.
fn cell(value: &str) -> String {
    let neutral = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    format!("\"{}\"", neutral.replace('"', "\"\""))
}

pub(crate) async fn csv(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(answer) = reader(&req, &state).await {
        return answer;
    }
    let (store_query, _) = match read(&query) {
        Ok(read) => read,
        Err(why) => return plain(StatusCode::BAD_REQUEST, why),
    };
    let rows = match state
        .store
        .console_orders(&store_query, None, CSV_MAX)
        .await
    {
        Ok(rows) => rows,
        Err(e) => return unavailable(&e),
    };
    let mut out = String::from("order_no,state,first_seen,package,iccid,customer_email\r\n");
    for r in &rows {
        let cells = [
            cell(&r.order_no),
            cell(&r.state),
            cell(&pages::time(r.created_at)),
            cell(r.package_name.as_deref().unwrap_or("")),
            cell(r.iccid.as_deref().unwrap_or("")),
            cell(r.customer_email.as_deref().unwrap_or("")),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"esim-courier-orders.csv\"",
        ))
        .body(out)
}

/// A receipt's body for operators: pretty-printed when it is JSON, every activation code in
/// it masked (its `lpa`, and any of the order's codes wherever else it appears).
fn masked_body(body: &[u8], codes: &[&ActivationCode]) -> String {
    let mut text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut json) => {
            if let Some(lpa) = json.get_mut("lpa") {
                if let Some(raw) = lpa.as_str().filter(|s| !s.is_empty()) {
                    *lpa = serde_json::Value::String(
                        ActivationCode::parse(raw)
                            .map(|c| c.masked())
                            .unwrap_or_else(|_| "(hidden)".to_owned()),
                    );
                }
            }
            serde_json::to_string_pretty(&json).unwrap_or_default()
        }
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    for code in codes {
        let id = code.matching_id();
        if !id.is_empty() {
            text = text.replace(id, &code.masked_matching_id());
        }
    }
    text
}

pub(crate) async fn show(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    let session = match reader(&req, &state).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let order_no = path.into_inner();
    if OrderNo::parse(&order_no).is_err() {
        return plain(StatusCode::NOT_FOUND, "No such order.");
    }
    let details = match state.store.order_details(&order_no).await {
        Ok(Some(d)) => d,
        Ok(None) => return plain(StatusCode::NOT_FOUND, "No such order."),
        Err(e) => return unavailable(&e),
    };
    let codes: Vec<&ActivationCode> = details
        .events
        .iter()
        .filter_map(|e| e.activation_code.as_ref())
        .collect();
    let mut receipts = Vec::with_capacity(details.receipts.len());
    for (id, at, outcome) in &details.receipts {
        let body = match state.store.receipt_body(*id).await {
            Ok(body) => body.unwrap_or_default(),
            Err(e) => return unavailable(&e),
        };
        receipts.push((*id, *at, outcome.clone(), masked_body(&body, &codes)));
    }
    let audit = match state.store.audit_log(&order_no).await {
        Ok(a) => a,
        Err(e) => return unavailable(&e),
    };
    page(pages::order(&session, &details, &receipts, &audit))
}

fn confirmed(fields: &[(String, String)]) -> bool {
    fields.iter().any(|(k, v)| k == "confirm" && v == "yes")
}

/// An operator's action `verb` on order `order_no` (its page's form in `fields`): the
/// session, the order number and the order's page to go back to; or the answer to give
/// instead (refused, or the page asking `question` to confirm).
async fn order_action(
    req: &HttpRequest,
    state: &State,
    order_no: String,
    fields: &[(String, String)],
    (verb, question): (&str, impl FnOnce(&str) -> String),
) -> Result<(ConsoleSession, String, String), HttpResponse> {
    let session = actor(req, state, fields).await?;
    // Not an order number any order has (and one PostgreSQL could not even look up).
    if OrderNo::parse(&order_no).is_err() {
        return Err(plain(StatusCode::NOT_FOUND, "No such order."));
    }
    let back = format!("/admin/orders/{}", encode(&order_no));
    if !confirmed(fields) {
        let action = format!("{back}/{verb}");
        let what = question(&order_no);
        return Err(page(pages::confirm(&session, &what, (&action, &[]), &back)));
    }
    Ok((session, order_no, back))
}

pub(crate) async fn resend(
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<State>,
) -> HttpResponse {
    let question = |o: &str| {
        format!("Send the activation email of order {o} again to its registered customer?")
    };
    let (session, order_no, back) =
        match order_action(&req, &state, path.into_inner(), &form, ("resend", question)).await {
            Ok(go) => go,
            Err(answer) => return answer,
        };
    if state.config.resend_to.is_empty() {
        return plain(
            StatusCode::CONFLICT,
            "No customer notifier is routed on COMPLETED; there is nothing to resend with.",
        );
    }
    match state
        .store
        .resend(&order_no, &state.config.resend_to, None, &session.user)
        .await
    {
        Ok(Some(resend)) => {
            tracing::info!(order_no, by = %session.user, jobs = ?resend.jobs, "activation email re-send queued in the console");
            let to = resend
                .recipient
                .map_or_else(|| "the customer once registered".to_owned(), |r| r.masked());
            let said = format!("Queued again for {to}; the attempt shows on the order's page.");
            page(pages::done(&session, &said, None, &back))
        }
        Ok(None) => plain(
            StatusCode::CONFLICT,
            "This order has no COMPLETED event with a usable activation code to send.",
        ),
        Err(e) => unavailable(&e),
    }
}

pub(crate) async fn reveal(
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<State>,
) -> HttpResponse {
    let question = |o: &str| {
        format!("Show the activation code of order {o}? Whoever has it can install the eSIM; the audit log records that you looked.")
    };
    let (session, order_no, back) =
        match order_action(&req, &state, path.into_inner(), &form, ("reveal", question)).await {
            Ok(go) => go,
            Err(answer) => return answer,
        };
    match state
        .store
        .reveal_activation_code(&order_no, &session.user)
        .await
    {
        Ok(Some(code)) => {
            tracing::info!(order_no, by = %session.user, "activation code revealed in the console");
            let said = format!("The activation code of order {order_no}:");
            page(pages::done(&session, &said, Some(&code.qr_text()), &back))
        }
        Ok(None) => plain(StatusCode::NOT_FOUND, "This order has no activation code."),
        Err(e) => unavailable(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DeadFilter {
    notifier: Option<String>,
    kind: Option<String>,
}

/// The dead letters matching a channel and a kind (empty: any).
fn matching<'a>(
    dead: &'a [esim_courier_store::JobRecord],
    notifier: &'a str,
    kind: &'a str,
) -> impl Iterator<Item = &'a esim_courier_store::JobRecord> {
    dead.iter().filter(move |j| {
        (notifier.is_empty() || j.notifier == notifier) && (kind.is_empty() || j.kind == kind)
    })
}

pub(crate) async fn dead_letters(
    req: HttpRequest,
    filter: web::Query<DeadFilter>,
    state: web::Data<State>,
) -> HttpResponse {
    let session = match reader(&req, &state).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let dead = match state.store.dead_letters().await {
        Ok(dead) => dead,
        Err(e) => return unavailable(&e),
    };
    let mut notifiers: Vec<String> = dead.iter().map(|j| j.notifier.clone()).collect();
    let mut kinds: Vec<String> = dead.iter().map(|j| j.kind.clone()).collect();
    for list in [&mut notifiers, &mut kinds] {
        list.sort();
        list.dedup();
    }
    let notifier = filter.notifier.as_deref().unwrap_or_default();
    let kind = filter.kind.as_deref().unwrap_or_default();
    let shown: Vec<_> = matching(&dead, notifier, kind).cloned().collect();
    page(pages::dead_letters(
        &session,
        &shown,
        (notifier, kind),
        (&notifiers, &kinds),
    ))
}

pub(crate) async fn retry(
    req: HttpRequest,
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<State>,
) -> HttpResponse {
    let session = match actor(&req, &state, &form).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
            .to_owned()
    };
    let all = field("which") == "all";
    let (notifier, kind) = (field("notifier"), field("kind"));
    let mut ids: Vec<i64> = form
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    let everything = all && notifier.is_empty() && kind.is_empty();
    if all && !everything {
        // All those the filter shows, one by one: the others stay as they are.
        ids = match state.store.dead_letters().await {
            Ok(dead) => matching(&dead, &notifier, &kind).map(|j| j.id).collect(),
            Err(e) => return unavailable(&e),
        };
    }
    if !all && ids.is_empty() {
        return plain(
            StatusCode::BAD_REQUEST,
            "No dead letter was ticked: go back, tick the ones to retry, or use \"Retry all\".",
        );
    }
    if !confirmed(&form) {
        let what = if everything {
            "Queue every dead letter again? Each is delivered anew, with its attempts counted from one.".to_owned()
        } else if all {
            format!(
                "Queue the {} dead letter(s) the filter shows again?",
                ids.len()
            )
        } else {
            format!("Queue {} dead letter(s) again?", ids.len())
        };
        // A filter's dead letters are confirmed by the filter, read again then: thousands of
        // ids (an alert channel down for a day) would pass the form's size limit.
        let fields: Vec<(String, String)> = if all {
            vec![
                ("which".to_owned(), "all".to_owned()),
                ("notifier".to_owned(), notifier.clone()),
                ("kind".to_owned(), kind.clone()),
            ]
        } else {
            ids.iter()
                .map(|id| ("id".to_owned(), id.to_string()))
                .chain([("which".to_owned(), "selected".to_owned())])
                .collect()
        };
        let action = "/admin/dead-letters/retry";
        return page(pages::confirm(
            &session,
            &what,
            (action, &fields),
            "/admin/dead-letters",
        ));
    }
    let requeued = if everything {
        state.store.retry_dead(None, &session.user).await
    } else {
        let mut n = 0;
        for id in &ids {
            match state.store.retry_dead(Some(*id), &session.user).await {
                Ok(k) => n += k,
                Err(e) => return unavailable(&e),
            }
        }
        Ok(n)
    };
    match requeued {
        Ok(n) => {
            tracing::info!(by = %session.user, requeued = n, "dead letters retried in the console");
            let said = format!("{n} dead letter(s) queued again.");
            page(pages::done(&session, &said, None, "/admin/dead-letters"))
        }
        Err(e) => unavailable(&e),
    }
}

pub(crate) async fn alerts(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let session = match reader(&req, &state).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    match state.store.recent_alerts(500).await {
        Ok(alerts) => page(pages::alerts(&session, &alerts)),
        Err(e) => unavailable(&e),
    }
}

pub(crate) async fn audit(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    let session = match reader(&req, &state).await {
        Ok(s) => s,
        Err(answer) => return answer,
    };
    match state.store.recent_audit(500).await {
        Ok(entries) => page(pages::audit(&session, &entries)),
        Err(e) => unavailable(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        for lead in ["+1", "-1", "@SUM(A1)", "\tx"] {
            assert!(cell(lead).starts_with("\"'"), "{lead:?}");
        }
        assert_eq!(cell("B2405"), "\"B2405\"");
    }

    #[test]
    fn codes_are_masked_in_a_receipt_wherever_they_stand() {
        let code = ActivationCode::parse("LPA:1$rsp.demo$69C32E7D00001234").expect("a code");
        let body = br#"{"orderNo":"B1","lpa":"LPA:1$rsp.demo$69C32E7D00001234","note":"69C32E7D00001234"}"#;
        let shown = masked_body(body, &[&code]);
        assert!(!shown.contains("69C32E7D00001234"), "{shown}");
        assert!(shown.contains("1234"), "{shown}");
        let foreign = masked_body(br#"{"lpa":"LPA:1$other.example$SECRETSECRET99"}"#, &[]);
        assert!(!foreign.contains("SECRETSECRET99"), "{foreign}");
        // A short matching ID shows nothing of itself elsewhere either, as in its `lpa`.
        for id in ["AB12CD", "AB12"] {
            let code = ActivationCode::parse(&format!("LPA:1$x.example${id}")).expect("a code");
            let body = format!(r#"{{"lpa":"LPA:1$x.example${id}","note":"ref {id}"}}"#);
            let shown = masked_body(body.as_bytes(), &[&code]);
            assert!(!shown.contains(&id[2..]), "{id}: {shown}");
            assert!(shown.contains("ref ****"), "{id}: {shown}");
        }
    }

    #[test]
    fn dates_and_keysets_read_or_are_refused() {
        assert_eq!(day("1970-01-02"), Some(86_400_000));
        assert_eq!(day("yesterday"), None);
        assert_eq!(keyset(Some("17:B:1")), Some((17, "B:1")));
        assert_eq!(keyset(Some("x:B")), None);
    }
}
