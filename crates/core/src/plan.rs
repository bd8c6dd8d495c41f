//! Which notifications an event gets: a business rule, so a pure function here rather than a
//! branch in the HTTP handler or the store. The store writes what [`plan`] says as outbox
//! jobs in the event's own transaction.

use crate::{Alert, AlertKind, Disposition, OrderEvent, OrderResult, RouteTrigger, Routes};

/// What one job delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The COMPLETED order's activation (to a customer notifier, or an operator channel
    /// routed on COMPLETED).
    Activation,
    /// The FAILED order.
    FailedOrder,
    /// An operator alert.
    Alert(Alert),
}

/// The jobs to write, and an alert that no route takes (the caller logs it: it is then the
/// only place the alert shows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// One per routed notifier.
    pub jobs: Vec<PlannedJob>,
    /// An alert raised with no notifier routed for its kind.
    pub unrouted: Option<Alert>,
}

/// One job to write: a notifier and what it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedJob {
    /// The configured notifier's name.
    pub notifier: String,
    /// What it delivers.
    pub delivery: Delivery,
}

/// The jobs an event gets, by its disposition and result:
///
/// - a duplicate: none;
/// - a conflict: the `conflict` alert;
/// - an accepted COMPLETED with a usable activation code: the notifiers routed on
///   `COMPLETED`; without one: the `missing_activation_code` alert (nobody is emailed);
/// - an accepted FAILED: the notifiers routed on `FAILED`;
/// - an accepted unrecognised result: the `unrecognised_result` alert.
///
/// Alerts go to the notifiers routed on `alert` or `alert.<kind>`. `at_ms` is the alerts'
/// time.
pub fn plan(routes: &Routes, event: &OrderEvent, disposition: &Disposition, at_ms: i64) -> Plan {
    let alert = |kind: AlertKind, reason: String| {
        plan_alert(routes, &Alert::about_event(kind, event, reason, at_ms))
    };
    let routed = |trigger: RouteTrigger, delivery: Delivery| Plan {
        jobs: routes
            .for_trigger(trigger)
            .into_iter()
            .map(|n| PlannedJob {
                notifier: n.to_owned(),
                delivery: delivery.clone(),
            })
            .collect(),
        unrouted: None,
    };
    match (disposition, &event.result) {
        (Disposition::Duplicate, _) => Plan::default(),
        (Disposition::Conflict(why), _) => alert(
            AlertKind::Conflict,
            format!("conflicting event: {why}; the customer is not emailed again"),
        ),
        (Disposition::Accepted, OrderResult::Completed) => match &event.activation_code {
            Some(Ok(_)) => routed(RouteTrigger::Completed, Delivery::Activation),
            Some(Err(e)) => alert(
                AlertKind::MissingActivationCode,
                format!("COMPLETED with an unusable activation code ({e}); no email was sent"),
            ),
            None => alert(
                AlertKind::MissingActivationCode,
                "COMPLETED without an activation code; no email was sent".into(),
            ),
        },
        (Disposition::Accepted, OrderResult::Failed) => {
            routed(RouteTrigger::Failed, Delivery::FailedOrder)
        }
        (Disposition::Accepted, OrderResult::Unrecognised(r)) => alert(
            AlertKind::UnrecognisedResult,
            format!("result {r:?} is neither COMPLETED nor FAILED; recorded, nobody notified"),
        ),
    }
}

/// One job per notifier routed for the alert's kind (`alert` or `alert.<kind>`); when no
/// route takes it, the alert is returned as [`Plan::unrouted`].
pub fn plan_alert(routes: &Routes, alert: &Alert) -> Plan {
    let jobs: Vec<PlannedJob> = routes
        .for_alert(alert.kind)
        .into_iter()
        .map(|n| PlannedJob {
            notifier: n.to_owned(),
            delivery: Delivery::Alert(alert.clone()),
        })
        .collect();
    Plan {
        unrouted: jobs.is_empty().then(|| alert.clone()),
        jobs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CurrencyTable, WebhookPayload};

    fn event(body: &str) -> OrderEvent {
        WebhookPayload::from_slice(body.as_bytes())
            .and_then(|p| p.into_event(&CurrencyTable::default()))
            .expect("a usable webhook")
    }

    const COMPLETED: &str = r#"{"orderNo":"N-1","result":"COMPLETED","iccid":"8944500102198304826","lpa":"LPA:1$smdp.example.com$ABC123","packageName":"Japan 5GB","price":"4.50","currency":"2"}"#;
    const UNUSABLE_CODE: &str = r#"{"orderNo":"N-1","result":"COMPLETED","iccid":"8944500102198304826","lpa":"not a code"}"#;
    const NO_CODE: &str = r#"{"orderNo":"N-1","result":"COMPLETED","iccid":"8944500102198304826"}"#;
    const FAILED: &str = r#"{"orderNo":"N-1","result":"FAILED"}"#;
    const ODD: &str = r#"{"orderNo":"N-1","result":"PROCESSING"}"#;

    /// Every trigger routed to its own notifier, so the notifier names say which route fired.
    fn every_route() -> Routes {
        let mut routes = vec![
            (RouteTrigger::Completed, vec!["on-completed".to_owned()]),
            (RouteTrigger::Failed, vec!["on-failed".to_owned()]),
            (RouteTrigger::Alert(None), vec!["on-any-alert".to_owned()]),
        ];
        for kind in AlertKind::ALL {
            routes.push((RouteTrigger::Alert(Some(kind)), vec![format!("on-{kind}")]));
        }
        Routes::new(routes)
    }

    /// What a plan comes to: (notifier, what it delivers or the alert's kind), sorted.
    type Shape = Vec<(String, &'static str)>;

    fn shape(jobs: &[PlannedJob]) -> Shape {
        let mut out: Shape = jobs
            .iter()
            .map(|j| {
                let what = match &j.delivery {
                    Delivery::Activation => "activation",
                    Delivery::FailedOrder => "failed order",
                    Delivery::Alert(a) => a.kind.as_str(),
                };
                (j.notifier.clone(), what)
            })
            .collect();
        out.sort();
        out
    }

    fn alert_to(kind: &'static str) -> Shape {
        let mut v = vec![
            ("on-any-alert".to_owned(), kind),
            (format!("on-{kind}"), kind),
        ];
        v.sort();
        v
    }

    #[test]
    fn every_disposition_and_result_gets_its_jobs() {
        let routes = every_route();
        let conflict = Disposition::Conflict("FAILED after COMPLETED".into());
        let table: [(&str, &Disposition, Shape); 11] = [
            (
                COMPLETED,
                &Disposition::Accepted,
                vec![("on-completed".to_owned(), "activation")],
            ),
            (
                UNUSABLE_CODE,
                &Disposition::Accepted,
                alert_to("missing_activation_code"),
            ),
            (
                NO_CODE,
                &Disposition::Accepted,
                alert_to("missing_activation_code"),
            ),
            (
                FAILED,
                &Disposition::Accepted,
                vec![("on-failed".to_owned(), "failed order")],
            ),
            (ODD, &Disposition::Accepted, alert_to("unrecognised_result")),
            (COMPLETED, &Disposition::Duplicate, vec![]),
            (FAILED, &Disposition::Duplicate, vec![]),
            (ODD, &Disposition::Duplicate, vec![]),
            (COMPLETED, &conflict, alert_to("conflict")),
            (FAILED, &conflict, alert_to("conflict")),
            (ODD, &conflict, alert_to("conflict")),
        ];
        for (body, disposition, want) in table {
            let planned = plan(&routes, &event(body), disposition, 7);
            assert_eq!(shape(&planned.jobs), want, "{body} {disposition:?}");
            assert_eq!(planned.unrouted, None);
        }
    }

    #[test]
    fn an_event_alert_names_the_order_its_package_and_a_quoted_command() {
        let e = event(
            r#"{"orderNo":"N 1;x","result":"COMPLETED","packageName":"Japan 5GB","price":"4.50","currency":"2"}"#,
        );
        let jobs = plan(&every_route(), &e, &Disposition::Accepted, 7).jobs;
        let Some(Delivery::Alert(alert)) = jobs.first().map(|j| &j.delivery) else {
            panic!("an alert: {jobs:?}")
        };
        assert_eq!(alert.order_no.as_deref(), Some("N 1;x"));
        assert_eq!(alert.package_name.as_deref(), Some("Japan 5GB"));
        assert_eq!(alert.price.as_deref(), Some("4.50 USD"));
        assert_eq!(alert.occurred_at_ms, 7);
        assert_eq!(
            alert.command.as_deref(),
            Some("esim-courier orders show -- 'N 1;x'")
        );
    }

    #[test]
    fn nothing_is_planned_where_nothing_is_routed() {
        let routes = Routes::new(vec![(RouteTrigger::Completed, vec!["mail".to_owned()])]);
        assert_eq!(
            plan(&routes, &event(FAILED), &Disposition::Accepted, 0),
            Plan::default()
        );
        let missing = plan(&routes, &event(NO_CODE), &Disposition::Accepted, 0);
        assert!(missing.jobs.is_empty());
        assert_eq!(
            missing.unrouted.map(|a| a.kind),
            Some(AlertKind::MissingActivationCode),
            "an alert nobody is routed for is handed back to be logged"
        );
        let only_conflicts = Routes::new(vec![(
            RouteTrigger::Alert(Some(AlertKind::Conflict)),
            vec!["ops".to_owned()],
        )]);
        let alert = Alert::dead_letter(None, "x".into(), 1, 0);
        let planned = plan_alert(&only_conflicts, &alert);
        assert!(planned.jobs.is_empty());
        assert_eq!(planned.unrouted, Some(alert));
    }
}
