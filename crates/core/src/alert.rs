//! Operator alerts: anything an operator must act on.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::OrderEvent;

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A delivery failed permanently or ran out of attempts.
    DeadLetter,
    /// An authenticated webhook was rejected (bad JSON, no orderNo/result, ...) and quarantined.
    WebhookRejected,
    /// A COMPLETED order's customer was never registered.
    CustomerUnknown,
    /// An event contradicts what was recorded (e.g. FAILED after COMPLETED).
    Conflict,
    /// A COMPLETED order came without a usable activation code.
    MissingActivationCode,
    /// The webhook's `result` is neither COMPLETED nor FAILED.
    UnrecognisedResult,
    /// Requests with a wrong webhook token or API bearer token passed the configured rate
    /// (`[webhook] auth_failure_alert_per_minute`): someone is guessing.
    AuthFailures,
    /// A known order had no result, neither by webhook nor at the provider, after
    /// `[reconcile] give_up_after`.
    OrderOverdue,
    /// A COMPLETED webhook's ICCID or activation code differ from the provider's record
    /// (`[reconcile] verify_webhooks`), or it could not be confirmed in time: nothing was sent.
    WebhookUnverified,
    /// The provider refused a call for a reason on the reseller's account (it does not exist,
    /// is inactive, this server's address is not allowed, the balance is too low) or on our
    /// credentials (a refused signature): operators must act; placements, and activation
    /// emails waiting for the provider to confirm their webhook, wait and retry.
    ProviderAccount,
    /// The provider refused to place an order (an unknown package, a price not available), or
    /// the placement was given up: the customer gets no eSIM from it.
    PlacementFailed,
    /// A stored activation code or customer datum cannot be decrypted (altered, copied from
    /// another row, or sealed with a key that is not configured): its delivery stopped.
    DecryptFailed,
}

impl AlertKind {
    /// Every kind, for configuration help and validation.
    pub const ALL: [AlertKind; 12] = [
        Self::DeadLetter,
        Self::WebhookRejected,
        Self::CustomerUnknown,
        Self::Conflict,
        Self::MissingActivationCode,
        Self::UnrecognisedResult,
        Self::AuthFailures,
        Self::OrderOverdue,
        Self::WebhookUnverified,
        Self::ProviderAccount,
        Self::PlacementFailed,
        Self::DecryptFailed,
    ];

    /// The stable name used in configuration and payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeadLetter => "dead_letter",
            Self::WebhookRejected => "webhook_rejected",
            Self::CustomerUnknown => "customer_unknown",
            Self::Conflict => "conflict",
            Self::MissingActivationCode => "missing_activation_code",
            Self::UnrecognisedResult => "unrecognised_result",
            Self::AuthFailures => "auth_failures",
            Self::OrderOverdue => "order_overdue",
            Self::WebhookUnverified => "webhook_unverified",
            Self::ProviderAccount => "provider_account",
            Self::PlacementFailed => "placement_failed",
            Self::DecryptFailed => "decrypt_failed",
        }
    }

    /// What operators read as the alert's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::DeadLetter => "Delivery gave up",
            Self::WebhookRejected => "Webhook rejected",
            Self::CustomerUnknown => "Customer never registered",
            Self::Conflict => "Conflicting order event",
            Self::MissingActivationCode => "Completed order without a usable activation code",
            Self::UnrecognisedResult => "Unrecognised order result",
            Self::AuthFailures => "Requests with wrong tokens",
            Self::OrderOverdue => "Order still without a result",
            Self::WebhookUnverified => "Webhook not confirmed by the provider",
            Self::ProviderAccount => "The provider refused the reseller's account",
            Self::PlacementFailed => "Order placement failed",
            Self::DecryptFailed => "Stored data cannot be decrypted",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An alert for operators. Carries what they need to act; never a matching ID or a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// What went wrong.
    pub kind: AlertKind,
    /// The order concerned, if any.
    pub order_no: Option<String>,
    /// One sentence: what happened and why.
    pub reason: String,
    /// The package, if known.
    pub package_name: Option<String>,
    /// The contract price, if known (e.g. `9.99 SGD`).
    pub price: Option<String>,
    /// When it happened, in milliseconds since the Unix epoch.
    pub occurred_at_ms: i64,
    /// The `esim-courier` command that inspects or fixes it.
    pub command: Option<String>,
}

/// The command that shows an order, as an operator copies it from an alert or a message:
/// `esim-courier orders show -- '<order no>'`. An order number is provider input (`;`,
/// `$(…)`, spaces, a leading `-` or `--config=…`): quoted for the shell and after `--`, what
/// the operator pastes can neither run something else nor read as an option.
pub fn show_order_command(order_no: &str) -> String {
    format!(
        "esim-courier orders show -- {}",
        crate::summary::shell_word(order_no)
    )
}

/// Alerts are built here, one constructor per situation, so that what an alert says and the
/// command it offers are written once.
impl Alert {
    fn about(kind: AlertKind, order_no: Option<&str>, reason: String, at_ms: i64) -> Self {
        Self {
            kind,
            order_no: order_no.map(str::to_owned),
            reason,
            package_name: None,
            price: None,
            occurred_at_ms: at_ms,
            command: order_no.map(show_order_command),
        }
    }

    /// An event of `event`'s order that notifies no customer: a conflict, a COMPLETED order
    /// without a usable activation code, an unrecognised result. Carries the package and the
    /// contract price.
    pub fn about_event(kind: AlertKind, event: &OrderEvent, reason: String, at_ms: i64) -> Self {
        Self {
            package_name: event.package_name.clone(),
            price: event.contract_price.as_ref().map(ToString::to_string),
            ..Self::about(kind, Some(event.order_no.as_str()), reason, at_ms)
        }
    }

    /// An authenticated webhook was refused (and its body quarantined) with `status`.
    pub fn webhook_rejected(order_no: Option<&str>, status: u16, why: &str, at_ms: i64) -> Self {
        Self::about(
            AlertKind::WebhookRejected,
            order_no,
            format!("an authenticated webhook was refused with {status} ({why}) and quarantined"),
            at_ms,
        )
    }

    /// A COMPLETED order's customer was not registered within `waited`.
    pub fn customer_unknown(
        order_no: Option<&str>,
        waited: std::time::Duration,
        at_ms: i64,
    ) -> Self {
        Self::about(
            AlertKind::CustomerUnknown,
            order_no,
            format!(
                "no customer was registered within {} minutes; the activation email waits for PUT /api/v1/orders/{{orderNo}}",
                waited.as_secs() / 60
            ),
            at_ms,
        )
    }

    /// A delivery (job `job_id`) gave up; the command retries it.
    pub fn dead_letter(order_no: Option<&str>, reason: String, job_id: i64, at_ms: i64) -> Self {
        Self {
            command: Some(format!("esim-courier dead-letters retry {job_id}")),
            ..Self::about(AlertKind::DeadLetter, order_no, reason, at_ms)
        }
    }

    /// `order_no` has no result after `waited`: no webhook came, and the provider's order API
    /// still says `status` (or does not know the order). The command retries the lookups.
    pub fn order_overdue(
        order_no: &str,
        status: &str,
        waited: std::time::Duration,
        job_id: i64,
        at_ms: i64,
    ) -> Self {
        Self {
            command: Some(format!("esim-courier dead-letters retry {job_id}")),
            ..Self::about(
                AlertKind::OrderOverdue,
                Some(order_no),
                format!(
                    "no result after {} minutes: no webhook came and the provider's order API says {status}; ask the provider, then retry the lookups",
                    waited.as_secs() / 60
                ),
                at_ms,
            )
        }
    }

    /// A COMPLETED webhook of `order_no` was not sent to the customer: `reason` says what
    /// differs from the provider's record, or why it could not be confirmed.
    pub fn webhook_unverified(order_no: &str, reason: String, at_ms: i64) -> Self {
        Self::about(AlertKind::WebhookUnverified, Some(order_no), reason, at_ms)
    }

    /// The provider refused placement `reference` (its job `job_id`) because of the
    /// reseller's account: `cause` is the provider's code and its meaning. With `retry` the
    /// placement goes on retrying by itself; otherwise it stopped, and the command places it
    /// again once the account is fixed.
    pub fn provider_account(
        reference: &str,
        cause: &str,
        retry: bool,
        job_id: i64,
        at_ms: i64,
    ) -> Self {
        let (then, command) = if retry {
            (
                "the placement keeps retrying by itself (for up to 24 hours)",
                None,
            )
        } else {
            (
                "the placement stopped; once the account is fixed, retry it",
                Some(format!("esim-courier dead-letters retry {job_id}")),
            )
        };
        Self {
            command,
            ..Self::about(
                AlertKind::ProviderAccount,
                None,
                format!("the provider refused placement {reference:?}: {cause}; {then}"),
                at_ms,
            )
        }
    }

    /// The provider refused to confirm `order_no`'s COMPLETED webhook (`verify_webhooks`) for
    /// a reason operators must fix: `cause` is its code and its meaning. The activation email
    /// waits, and the confirmation is asked for again by itself for up to `give_up_after`: once
    /// the account or the credentials are fixed, the email goes out without a command.
    pub fn confirmation_refused(
        order_no: &str,
        cause: &str,
        give_up_after: std::time::Duration,
        at_ms: i64,
    ) -> Self {
        Self::about(
            AlertKind::ProviderAccount,
            Some(order_no),
            format!(
                "the provider refused to confirm the webhook of order {order_no}: {cause}; its \
                 activation email waits, and goes out by itself once the account or the \
                 credentials are fixed (the provider is asked again for up to {} hours)",
                give_up_after.as_secs() / 3600
            ),
            at_ms,
        )
    }

    /// Job `job_id` of `order_no` stopped because a stored value it needs does not decrypt
    /// (`why` names the column and the row, never the value).
    pub fn decrypt_failed(order_no: Option<&str>, why: &str, job_id: i64, at_ms: i64) -> Self {
        Self {
            command: Some(format!("esim-courier dead-letters retry {job_id}")),
            ..Self::about(
                AlertKind::DecryptFailed,
                order_no,
                format!(
                    "{why}; nothing was sent. Configure the key it names (or restore the row from a backup), then retry"
                ),
                at_ms,
            )
        }
    }

    /// Placement `reference` stopped: `why`. When the provider refused it (`refused`), no
    /// order was placed; otherwise (it kept failing, or its answer could not be read) the
    /// provider may have placed it. Either way `job_id`'s dead letter places it again with
    /// the same idempotency key, which never buys a second eSIM: a new reference would.
    pub fn placement_failed(
        reference: &str,
        why: &str,
        refused: bool,
        job_id: i64,
        at_ms: i64,
    ) -> Self {
        let outcome = if refused {
            "the provider placed no order for it"
        } else {
            "the provider may have placed the order: retry it (the same reference never buys a second eSIM), do not place it again under a new reference"
        };
        Self {
            command: Some(format!("esim-courier dead-letters retry {job_id}")),
            ..Self::about(
                AlertKind::PlacementFailed,
                None,
                format!("placement {reference:?} failed: {why}; {outcome}"),
                at_ms,
            )
        }
    }

    /// Requests with wrong tokens passed the configured rate.
    pub fn auth_failures(reason: String, at_ms: i64) -> Self {
        Self::about(AlertKind::AuthFailures, None, reason, at_ms)
    }

    /// A one-line summary: `[dead_letter] order 123: reason`.
    pub fn summary(&self) -> String {
        match &self.order_no {
            Some(o) => format!("[{}] order {o}: {}", self.kind, self.reason),
            None => format!("[{}] {}", self.kind, self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_show_command_is_quoted_and_ends_the_options_before_the_order_number() {
        assert_eq!(
            show_order_command("B2405011234"),
            "esim-courier orders show -- B2405011234"
        );
        for (hostile, shown) in [
            ("a; rm -rf ~", "'a; rm -rf ~'"),
            ("$(curl evil)", "'$(curl evil)'"),
            ("--config=/tmp/x", "'--config=/tmp/x'"),
            ("-h", "-h"),
            ("it's", r"'it'\''s'"),
        ] {
            assert_eq!(
                show_order_command(hostile),
                format!("esim-courier orders show -- {shown}")
            );
        }
        let dead = Alert::dead_letter(Some("A 1"), "gave up".into(), 42, 0);
        assert_eq!(
            dead.command.as_deref(),
            Some("esim-courier dead-letters retry 42")
        );
        let unknown = Alert::customer_unknown(Some("A;1"), std::time::Duration::from_secs(1800), 0);
        assert_eq!(
            unknown.command.as_deref(),
            Some("esim-courier orders show -- 'A;1'")
        );
        assert!(unknown.reason.contains("30 minutes"));
    }
}
