//! The intake rules: what a new delivery of an order webhook means, given the events already
//! recorded for that order.

use crate::OrderResult;

/// What identifies an event already recorded for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFingerprint {
    /// The event's result.
    pub result: OrderResult,
    /// [`crate::OrderEvent::fingerprint`].
    pub digest: String,
    /// Set aside as unverified (the provider's order API did not confirm it): the same
    /// delivery again is still its duplicate, but it no longer counts towards the order's
    /// result. `false` for a delivery being classified.
    pub set_aside: bool,
}

/// How an order's news reached esim-courier. Either way the same intake rules apply, so the
/// webhook of an order reconciliation already recovered is its duplicate, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    /// The provider's order webhook.
    Webhook,
    /// A lookup of the order at the provider's order API (`esim-courier reconcile`).
    Reconciliation,
}

impl EventSource {
    /// Every source.
    pub const ALL: [EventSource; 2] = [Self::Webhook, Self::Reconciliation];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Reconciliation => "reconciliation",
        }
    }

    /// The source of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// A new event: record it and route it to its notifiers.
    Accepted,
    /// The same event again (a provider retry): record the receipt only.
    Duplicate,
    /// Contradicts what was recorded: record it, alert operators, notify no customer.
    Conflict(String),
}

/// Decides what a delivery means.
///
/// - the same result, ICCID and activation code as a recorded event: duplicate (also of an
///   event set aside as unverified: its sender retrying);
/// - the first event of an order, or COMPLETED after FAILED: accepted (an event set aside
///   does not count);
/// - FAILED (or anything else) after COMPLETED, or a second COMPLETED with another ICCID or
///   activation code: conflict;
/// - another FAILED with other details: accepted (operators hear of it again).
pub fn classify(recorded: &[EventFingerprint], new: &EventFingerprint) -> Disposition {
    if recorded.iter().any(|e| e.digest == new.digest) {
        return Disposition::Duplicate;
    }
    let completed_before = recorded
        .iter()
        .any(|e| !e.set_aside && e.result == OrderResult::Completed);
    if !completed_before {
        return Disposition::Accepted;
    }
    Disposition::Conflict(match &new.result {
        OrderResult::Completed => {
            "a second COMPLETED with another ICCID or activation code".to_owned()
        }
        OrderResult::Failed => "FAILED after the order was COMPLETED".to_owned(),
        OrderResult::Unrecognised(r) => format!("result {r:?} after the order was COMPLETED"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(result: OrderResult, digest: &str) -> EventFingerprint {
        EventFingerprint {
            result,
            digest: digest.into(),
            set_aside: false,
        }
    }

    /// An event set aside as unverified.
    fn aside(result: OrderResult, digest: &str) -> EventFingerprint {
        EventFingerprint {
            set_aside: true,
            ..fp(result, digest)
        }
    }

    #[test]
    fn intake_rules() {
        use OrderResult::{Completed as C, Failed as F};
        let unknown = OrderResult::Unrecognised("REFUNDED".into());
        let cases: Vec<(Vec<EventFingerprint>, EventFingerprint, &str)> = vec![
            (vec![], fp(C, "c1"), "accepted"),
            (vec![], fp(F, "f1"), "accepted"),
            (vec![fp(C, "c1")], fp(C, "c1"), "duplicate"),
            (vec![fp(F, "f1")], fp(F, "f1"), "duplicate"),
            (vec![fp(F, "f1")], fp(C, "c1"), "accepted"),
            (vec![fp(F, "f1"), fp(C, "c1")], fp(F, "f1"), "duplicate"),
            (vec![fp(C, "c1")], fp(F, "f1"), "conflict"),
            (vec![fp(C, "c1")], fp(C, "c2"), "conflict"),
            (vec![fp(F, "f1")], fp(F, "f2"), "accepted"),
            (vec![fp(C, "c1")], fp(unknown.clone(), "u1"), "conflict"),
            (vec![], fp(unknown, "u1"), "accepted"),
            // A forged COMPLETED set aside, then the provider's own result recorded.
            (vec![aside(C, "c1")], fp(C, "c1"), "duplicate"),
            (vec![aside(C, "c1")], fp(F, "f1"), "accepted"),
            (vec![aside(C, "c1")], fp(C, "c2"), "accepted"),
            (vec![aside(C, "c1"), fp(C, "c2")], fp(C, "c1"), "duplicate"),
            (vec![aside(C, "c1"), fp(C, "c2")], fp(F, "f1"), "conflict"),
        ];
        for (recorded, new, want) in cases {
            let got = match classify(&recorded, &new) {
                Disposition::Accepted => "accepted",
                Disposition::Duplicate => "duplicate",
                Disposition::Conflict(_) => "conflict",
            };
            assert_eq!(got, want, "{recorded:?} then {new:?}");
        }
    }
}
