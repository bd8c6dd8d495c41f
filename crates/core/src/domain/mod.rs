//! Domain types. Each is built only through its parser, so holding one means it is valid.

mod activation_code;
mod currency;
mod customer;
mod iccid;
mod json_scalar;
mod money;
mod order_no;
mod order_result;
mod payload;

pub use activation_code::{ActivationCode, ActivationCodeError};
pub use currency::{Currency, CurrencyTable};
pub use customer::{Customer, CustomerError, EmailAddress, Locale};
pub use iccid::{Iccid, IccidError};
pub use json_scalar::JsonScalar;
pub use money::Money;
pub use order_no::OrderNo;
pub use order_result::OrderResult;
pub use payload::{event_digest, OrderEvent, PayloadError, WebhookPayload};
