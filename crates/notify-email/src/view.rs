//! What templates see: one context for the customer's activation email, one for every
//! operator email. Every key is always present (`null` when unknown) so strict mode can tell a
//! misspelt variable from a missing value.
//!
//! The customer context is built from scratch, field by field: the contract price is simply
//! not in it, so no template can show it to a customer.

use esim_courier_core::summary::rfc3339;
use esim_courier_core::{
    show_order_command, Alert, CompletedOrder, Content, Customer, FailedOrder, Notification,
};
use serde::Serialize;

use crate::branding::BrandView;
use crate::links;

/// The Content-ID of the QR code, referenced as `cid:qr-code@esim-courier`.
pub(crate) const QR_CID: &str = "qr-code@esim-courier";

/// The context of a customer's activation email.
#[derive(Debug, Serialize)]
pub(crate) struct ActivationView<'a> {
    brand: BrandView<'a>,
    locale: &'a str,
    customer_name: Option<&'a str>,
    order_no: &'a str,
    package_name: Option<&'a str>,
    iccid: &'a str,
    /// What the customer paid, from the registration.
    retail_price: Option<String>,
    /// The full `LPA:1$…` text (some Android phones accept it pasted whole).
    lpa: String,
    smdp_address: &'a str,
    /// The matching ID: what phones call the "activation code" on manual entry.
    activation_code: &'a str,
    confirmation_code_required: bool,
    ios_link: String,
    android_link: String,
    qr_cid: &'static str,
}

impl<'a> ActivationView<'a> {
    pub(crate) fn new(
        brand: BrandView<'a>,
        locale: &'a str,
        order: &'a CompletedOrder,
        customer: &'a Customer,
    ) -> Self {
        let code = &order.activation_code;
        Self {
            brand,
            locale,
            customer_name: customer
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty()),
            order_no: order.order_no.as_str(),
            package_name: order.package_name.as_deref(),
            iccid: &order.iccid,
            retail_price: customer.retail_price.as_ref().map(ToString::to_string),
            lpa: code.qr_text(),
            smdp_address: code.smdp_address(),
            activation_code: code.matching_id(),
            confirmation_code_required: code.confirmation_code_required(),
            ios_link: links::ios_install_url(code),
            android_link: links::android_install_url(code),
            qr_cid: QR_CID,
        }
    }
}

/// The context of an operator email, whatever the content: so a template written for one
/// kind still shows the facts of another if a route sends it there.
#[derive(Debug, Serialize)]
pub(crate) struct OperatorView<'a> {
    brand: BrandView<'a>,
    locale: &'a str,
    /// `order_completed`, `order_failed`, or the alert kind (`dead_letter`, …).
    kind: &'static str,
    /// One English line: what happened.
    headline: String,
    order_no: Option<String>,
    package_name: Option<String>,
    package_code: Option<String>,
    /// The reseller's cost with the provider (operators only).
    price: Option<String>,
    /// When it happened, RFC 3339 in UTC.
    occurred_at: String,
    reason: String,
    /// The `esim-courier` command that inspects or fixes it.
    command: Option<String>,
    iccid: Option<String>,
    /// The activation code with the matching ID masked.
    activation_code_masked: Option<String>,
    customer_email_masked: Option<String>,
    /// A digest's notifications, one view each; empty otherwise.
    items: Vec<OperatorView<'a>>,
}

impl<'a> OperatorView<'a> {
    pub(crate) fn new(brand: BrandView<'a>, locale: &'a str, content: &Content) -> Self {
        match content {
            Content::OrderFailed(order) => Self::failed(brand, locale, order),
            Content::Alert(alert) => Self::alert(brand, locale, alert),
            Content::OrderCompleted(order) => Self::completed(brand, locale, order),
            Content::Digest(items) => Self::digest(brand, locale, items),
        }
    }

    /// Several notifications in one email: a headline that counts them, then one entry each.
    fn digest(brand: BrandView<'a>, locale: &'a str, items: &[Notification]) -> Self {
        let views: Vec<Self> = items
            .iter()
            .map(|n| Self::new(brand.clone(), locale, &n.content))
            .collect();
        let failed = views.iter().filter(|v| v.kind == "order_failed").count();
        let others = views.len() - failed;
        let headline = match (failed, others) {
            (f, 0) => format!("{f} orders failed at the provider"),
            (0, o) => format!("{o} alerts"),
            (f, o) => format!("{f} orders failed at the provider, and {o} alerts"),
        };
        let orders: Vec<&str> = views.iter().filter_map(|v| v.order_no.as_deref()).collect();
        Self {
            brand,
            locale,
            kind: "digest",
            headline,
            order_no: None,
            package_name: None,
            package_code: None,
            price: None,
            occurred_at: views
                .first()
                .map(|v| v.occurred_at.clone())
                .unwrap_or_default(),
            reason: format!(
                "These arrived within the grouping window and are listed together. Orders: {}.",
                if orders.is_empty() {
                    "none".to_owned()
                } else {
                    orders.join(", ")
                }
            ),
            command: Some("esim-courier dead-letters list".to_owned()),
            iccid: None,
            activation_code_masked: None,
            customer_email_masked: None,
            items: views,
        }
    }

    fn failed(brand: BrandView<'a>, locale: &'a str, order: &FailedOrder) -> Self {
        Self {
            brand,
            locale,
            kind: "order_failed",
            headline: format!("Order {} failed at the provider", order.order_no),
            order_no: Some(order.order_no.to_string()),
            package_name: order.package_name.clone(),
            package_code: order.package_code.clone(),
            price: order.contract_price.as_ref().map(ToString::to_string),
            occurred_at: rfc3339(order.received_at_ms),
            reason: "The provider reported the order as FAILED: no eSIM was issued. Refund or re-order for the customer."
                .to_owned(),
            command: Some(show_order_command(order.order_no.as_str())),
            iccid: None,
            activation_code_masked: None,
            customer_email_masked: None,
            items: Vec::new(),
        }
    }

    fn alert(brand: BrandView<'a>, locale: &'a str, alert: &Alert) -> Self {
        let title = alert.kind.title();
        Self {
            brand,
            locale,
            kind: alert.kind.as_str(),
            headline: match &alert.order_no {
                Some(order_no) => format!("{title}: order {order_no}"),
                None => title.to_owned(),
            },
            order_no: alert.order_no.clone(),
            package_name: alert.package_name.clone(),
            package_code: None,
            price: alert.price.clone(),
            occurred_at: rfc3339(alert.occurred_at_ms),
            reason: alert.reason.clone(),
            command: alert.command.clone(),
            iccid: None,
            activation_code_masked: None,
            customer_email_masked: None,
            items: Vec::new(),
        }
    }

    fn completed(brand: BrandView<'a>, locale: &'a str, order: &CompletedOrder) -> Self {
        Self {
            brand,
            locale,
            kind: "order_completed",
            headline: format!("Order {} completed", order.order_no),
            order_no: Some(order.order_no.to_string()),
            package_name: order.package_name.clone(),
            package_code: order.package_code.clone(),
            price: order.contract_price.as_ref().map(ToString::to_string),
            occurred_at: rfc3339(order.received_at_ms),
            reason: "The provider issued the eSIM.".to_owned(),
            command: Some(show_order_command(order.order_no.as_str())),
            iccid: Some(order.iccid.clone()),
            activation_code_masked: Some(order.activation_code.masked()),
            customer_email_masked: order.customer.as_ref().map(|c| c.email.masked()),
            items: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esim_courier_core::summary::shell_word;

    #[test]
    fn times_and_commands_read_well() {
        assert_eq!(rfc3339(1_714_555_800_123), "2024-05-01T09:30:00Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
        assert_eq!(shell_word("B2405011234"), "B2405011234");
        assert_eq!(shell_word("it's 1"), r"'it'\''s 1'");
    }
}
