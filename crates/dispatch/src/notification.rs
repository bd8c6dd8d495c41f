//! Turning a claimed job and its stored context into the [`Notification`] a plugin receives.

use esim_courier_core::{
    ActivationCode, Alert, CompletedOrder, Content, CurrencyTable, Customer, EmailAddress,
    FailedOrder, Locale, Money, Notification, OrderNo,
};
use esim_courier_store::{ClaimedJob, CustomerRecord, EventRecord, JobContext, JobKind};

/// Why a job cannot become a notification. Retrying does not help: the job is dead-lettered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("the job's event is missing")]
    NoEvent,
    #[error("the event has no usable activation code")]
    NoActivationCode,
    #[error("stored order data is unusable: {0}")]
    Data(String),
    #[error("the alert payload is unreadable: {0}")]
    Alert(String),
}

pub(crate) fn build(job: &ClaimedJob, ctx: &JobContext) -> Result<Notification, BuildError> {
    let content = match job.kind {
        JobKind::Alert => {
            let payload = job.payload.as_deref().unwrap_or_default();
            let alert: Alert =
                serde_json::from_str(payload).map_err(|e| BuildError::Alert(e.to_string()))?;
            Content::Alert(alert)
        }
        JobKind::OrderFailed => {
            let event = ctx.event.as_ref().ok_or(BuildError::NoEvent)?;
            Content::OrderFailed(FailedOrder {
                order_no: order_no(event)?,
                package_code: event.package_code.clone(),
                package_name: event.package_name.clone(),
                contract_price: contract_price(event),
                received_at_ms: event.received_at,
            })
        }
        JobKind::OrderCompleted => {
            let event = ctx.event.as_ref().ok_or(BuildError::NoEvent)?;
            let lpa = event.lpa.as_deref().ok_or(BuildError::NoActivationCode)?;
            let activation_code =
                ActivationCode::parse(lpa).map_err(|_| BuildError::NoActivationCode)?;
            let customer = ctx.customer.as_ref().map(customer).transpose()?;
            Content::OrderCompleted(CompletedOrder {
                order_no: order_no(event)?,
                iccid: event.iccid.clone(),
                activation_code,
                package_code: event.package_code.clone(),
                package_name: event.package_name.clone(),
                contract_price: contract_price(event),
                customer,
                received_at_ms: event.received_at,
            })
        }
    };
    Ok(Notification {
        key: job.dedup_key.clone(),
        content,
    })
}

fn order_no(event: &EventRecord) -> Result<OrderNo, BuildError> {
    OrderNo::parse(&event.order_no).map_err(BuildError::Data)
}

fn contract_price(event: &EventRecord) -> Option<Money> {
    let currency = CurrencyTable::default().parse(event.currency.as_deref()?);
    Money::parse(event.price.as_deref()?, currency).ok()
}

fn customer(record: &CustomerRecord) -> Result<Customer, BuildError> {
    let data = |e: esim_courier_core::CustomerError| BuildError::Data(e.to_string());
    let retail_price = match (&record.retail_price, &record.retail_currency) {
        (Some(p), Some(c)) => {
            Some(Money::parse(p, CurrencyTable::default().parse(c)).map_err(BuildError::Data)?)
        }
        _ => None,
    };
    Ok(Customer {
        email: EmailAddress::parse(&record.email).map_err(data)?,
        name: record.name.clone(),
        locale: record
            .locale
            .as_deref()
            .map(Locale::parse)
            .transpose()
            .map_err(data)?,
        retail_price,
    })
}
