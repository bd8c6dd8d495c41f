//! Turning a claimed job and its stored context into the [`Notification`] a plugin receives.
//! The store hands back the domain types intake parsed, so nothing is parsed again here.

use esim_courier_core::{Alert, CompletedOrder, Content, FailedOrder, Notification};
use esim_courier_store::{ClaimedJob, JobContext, JobKind};

/// Why a job cannot become a notification. Retrying does not help: the job is dead-lettered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("the job's event is missing")]
    NoEvent,
    #[error("the event has no usable activation code")]
    NoActivationCode,
    #[error("the alert payload is unreadable: {0}")]
    Alert(String),
    #[error("a {0} job is scheduled work, not a notification")]
    NotANotification(&'static str),
}

pub(crate) fn build(job: &ClaimedJob, ctx: &JobContext) -> Result<Notification, BuildError> {
    let content = match job.kind {
        JobKind::ReconcileSweep
        | JobKind::ReconcileLookup
        | JobKind::PlaceOrder
        | JobKind::RetentionPurge => {
            return Err(BuildError::NotANotification(job.kind.as_str()));
        }
        JobKind::Alert => {
            let payload = job.payload.as_deref().unwrap_or_default();
            let alert: Alert =
                serde_json::from_str(payload).map_err(|e| BuildError::Alert(e.to_string()))?;
            Content::Alert(alert)
        }
        JobKind::OrderFailed => {
            let event = ctx.event.as_ref().ok_or(BuildError::NoEvent)?;
            Content::OrderFailed(FailedOrder {
                order_no: event.order_no.clone(),
                package_code: event.package_code.clone(),
                package_name: event.package_name.clone(),
                contract_price: event.contract_price.clone(),
                received_at_ms: event.received_at,
            })
        }
        JobKind::OrderCompleted => {
            let event = ctx.event.as_ref().ok_or(BuildError::NoEvent)?;
            let activation_code = event
                .activation_code
                .clone()
                .ok_or(BuildError::NoActivationCode)?;
            Content::OrderCompleted(CompletedOrder {
                order_no: event.order_no.clone(),
                iccid: event.iccid.clone(),
                activation_code,
                package_code: event.package_code.clone(),
                package_name: event.package_name.clone(),
                contract_price: event.contract_price.clone(),
                customer: ctx.customer.clone(),
                received_at_ms: event.received_at,
            })
        }
    };
    Ok(Notification {
        key: job.dedup_key.clone(),
        content,
    })
}
