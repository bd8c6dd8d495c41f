//! Sample notifications for the template check: every optional value present in one, absent
//! in another, so both branches of each `{{#if}}` render.

use esim_courier_core::{
    ActivationCode, Alert, AlertKind, CompletedOrder, Content, Currency, Customer, EmailAddress,
    FailedOrder, Locale, Money, OrderNo,
};

use crate::RenderError;

/// The sample contract price: it must never appear in a customer email.
pub(crate) const CONTRACT_PRICE: &str = "7.31";
/// 2024-05-01T09:30:00Z.
const RECEIVED_AT_MS: i64 = 1_714_555_800_000;

fn valid<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, RenderError> {
    r.map_err(|e| RenderError::Message(format!("sample {what}: {e}")))
}

fn sgd(amount: &str) -> Result<Money, RenderError> {
    valid("price", Money::parse(amount, Currency::Iso("SGD".into())))
}

/// Completed orders with their customers.
pub(crate) fn completed_orders() -> Result<Vec<CompletedOrder>, RenderError> {
    let full = CompletedOrder {
        order_no: valid("order", OrderNo::parse("B24050109300001"))?,
        iccid: "8965012405011234567".into(),
        activation_code: valid(
            "code",
            ActivationCode::parse("LPA:1$smdp.example.com$K2-1A2B3C-4D5E6F$1.3.6.1.4.1.31746$1"),
        )?,
        package_code: Some("MY-1D-1GB".into()),
        package_name: Some("Malaysia, 1 Day, 1GB, 256kbps".into()),
        contract_price: Some(sgd(CONTRACT_PRICE)?),
        customer: Some(Customer {
            email: valid("email", EmailAddress::parse("ana.traveller@example.com"))?,
            name: Some("Ana <Traveller> & Co".into()),
            locale: Some(valid("locale", Locale::parse("en"))?),
            retail_price: Some(sgd("12.90")?),
        }),
        received_at_ms: RECEIVED_AT_MS,
    };
    let minimal = CompletedOrder {
        order_no: valid("order", OrderNo::parse("B24050109300002"))?,
        iccid: "89852xxxxxxxxxxxxxx".into(),
        activation_code: valid(
            "code",
            ActivationCode::parse("LPA:1$rsp.demo$69C32E7Dxxxxxxxx"),
        )?,
        package_code: None,
        package_name: None,
        contract_price: Some(sgd(CONTRACT_PRICE)?),
        customer: Some(Customer {
            email: valid("email", EmailAddress::parse("traveller@example.com"))?,
            name: None,
            locale: None,
            retail_price: None,
        }),
        received_at_ms: RECEIVED_AT_MS,
    };
    Ok(vec![full, minimal])
}

/// Everything an operator notifier may be given.
pub(crate) fn operator_contents() -> Result<Vec<Content>, RenderError> {
    let failed = FailedOrder {
        order_no: valid("order", OrderNo::parse("B24050109300003"))?,
        package_code: Some("MY-1D-1GB".into()),
        package_name: Some("Malaysia, 1 Day, 1GB, 256kbps".into()),
        contract_price: Some(sgd(CONTRACT_PRICE)?),
        received_at_ms: RECEIVED_AT_MS,
    };
    let bare_failed = FailedOrder {
        package_code: None,
        package_name: None,
        contract_price: None,
        ..failed.clone()
    };
    let dead_letter = Alert {
        kind: AlertKind::DeadLetter,
        order_no: Some("B24050109300001".into()),
        reason: "customer-email gave up after 8 attempts: smtp.example.com refused: permanent error (550)".into(),
        package_name: Some("Malaysia, 1 Day, 1GB, 256kbps".into()),
        price: Some(format!("{CONTRACT_PRICE} SGD")),
        occurred_at_ms: RECEIVED_AT_MS,
        command: Some("esim-courier dead-letters retry 42".into()),
    };
    let rejected = Alert {
        kind: AlertKind::WebhookRejected,
        order_no: None,
        reason: "the body is not JSON".into(),
        package_name: None,
        price: None,
        occurred_at_ms: RECEIVED_AT_MS,
        command: None,
    };
    let mut contents = vec![
        Content::OrderFailed(failed),
        Content::OrderFailed(bare_failed),
    ];
    contents.push(Content::Alert(dead_letter));
    contents.push(Content::Alert(rejected));
    contents.extend(completed_orders()?.into_iter().map(Content::OrderCompleted));
    Ok(contents)
}
