//! Routing rules: which notifiers hear of what.
//!
//! Configured as `[[routes]] when = "COMPLETED" notify = ["customer-email"]`. `when` is
//! `COMPLETED`, `FAILED`, `alert` (every alert) or `alert.<kind>` (e.g. `alert.dead_letter`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::AlertKind;

/// What a route listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteTrigger {
    /// A COMPLETED order with a usable activation code.
    Completed,
    /// A FAILED order.
    Failed,
    /// Alerts: all of them (`None`) or one kind.
    Alert(Option<AlertKind>),
}

impl FromStr for RouteTrigger {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "COMPLETED" => Ok(Self::Completed),
            "FAILED" => Ok(Self::Failed),
            "alert" => Ok(Self::Alert(None)),
            other => other
                .strip_prefix("alert.")
                .and_then(AlertKind::parse)
                .map(|k| Self::Alert(Some(k)))
                .ok_or_else(|| {
                    let kinds: Vec<String> = AlertKind::ALL
                        .iter()
                        .map(|k| format!("alert.{k}"))
                        .collect();
                    format!(
                        "route trigger {other:?} is not one of COMPLETED, FAILED, alert, {}",
                        kinds.join(", ")
                    )
                }),
        }
    }
}

/// Read from configuration as its text (`"COMPLETED"`, `"alert.dead_letter"`, ...), so a
/// loaded configuration holds only valid triggers.
impl<'de> serde::Deserialize<'de> for RouteTrigger {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for RouteTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Completed => f.write_str("COMPLETED"),
            Self::Failed => f.write_str("FAILED"),
            Self::Alert(None) => f.write_str("alert"),
            Self::Alert(Some(k)) => write!(f, "alert.{k}"),
        }
    }
}

/// The configured routes. A clone shares them: each intake takes one into its planner.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Arc<[(RouteTrigger, Vec<String>)]>,
}

impl Routes {
    /// Routes from `(trigger, notifier names)` pairs, in configuration order.
    pub fn new(routes: Vec<(RouteTrigger, Vec<String>)>) -> Self {
        Self {
            routes: routes.into(),
        }
    }

    /// The notifiers for an order result (COMPLETED or FAILED), each once, in order.
    pub fn for_trigger(&self, trigger: RouteTrigger) -> Vec<&str> {
        self.collect(|t| *t == trigger)
    }

    /// The notifiers for an alert kind: those routed on `alert` and on `alert.<kind>`.
    pub fn for_alert(&self, kind: AlertKind) -> Vec<&str> {
        self.collect(|t| {
            matches!(t, RouteTrigger::Alert(None)) || *t == RouteTrigger::Alert(Some(kind))
        })
    }

    /// Every notifier name any route mentions.
    pub fn notifier_names(&self) -> impl Iterator<Item = &str> {
        self.routes
            .iter()
            .flat_map(|(_, n)| n.iter().map(String::as_str))
    }

    fn collect(&self, matches: impl Fn(&RouteTrigger) -> bool) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (trigger, names) in self.routes.iter() {
            if matches(trigger) {
                for n in names {
                    if !out.contains(&n.as_str()) {
                        out.push(n);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_route_by_kind_and_to_catch_all_routes() {
        let routes = Routes::new(vec![
            (
                "COMPLETED".parse().expect("valid"),
                vec!["customer-email".into()],
            ),
            ("FAILED".parse().expect("valid"), vec!["ops-email".into()]),
            ("alert".parse().expect("valid"), vec!["ops-email".into()]),
            (
                "alert.dead_letter".parse().expect("valid"),
                vec!["slack".into(), "ops-email".into()],
            ),
        ]);
        assert_eq!(
            routes.for_trigger(RouteTrigger::Completed),
            ["customer-email"]
        );
        assert_eq!(
            routes.for_alert(AlertKind::DeadLetter),
            ["ops-email", "slack"]
        );
        assert_eq!(routes.for_alert(AlertKind::Conflict), ["ops-email"]);
        let err = "alert.nope"
            .parse::<RouteTrigger>()
            .expect_err("unknown kind");
        assert!(err.contains("alert.dead_letter"), "{err}");
    }
}
