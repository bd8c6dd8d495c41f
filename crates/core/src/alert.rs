//! Operator alerts: anything an operator must act on.

use std::fmt;

use serde::{Deserialize, Serialize};

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
}

impl AlertKind {
    /// Every kind, for configuration help and validation.
    pub const ALL: [AlertKind; 7] = [
        Self::DeadLetter,
        Self::WebhookRejected,
        Self::CustomerUnknown,
        Self::Conflict,
        Self::MissingActivationCode,
        Self::UnrecognisedResult,
        Self::AuthFailures,
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

impl Alert {
    /// A one-line summary: `[dead_letter] order 123: reason`.
    pub fn summary(&self) -> String {
        match &self.order_no {
            Some(o) => format!("[{}] order {o}: {}", self.kind, self.reason),
            None => format!("[{}] {}", self.kind, self.reason),
        }
    }
}
