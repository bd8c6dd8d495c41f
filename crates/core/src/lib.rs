//! The heart of esim-courier: what an order webhook *means*, and the contract every notifier
//! plugin implements.
//!
//! This crate does no I/O. Wire payloads are parsed once into the domain types of [`domain`]
//! ("parse, don't validate"); after that nothing re-checks them. Notifier plugins depend on
//! this crate only: see [`notifier::Notifier`] and the crate README for a worked example.

#![deny(missing_docs)]

pub mod alert;
pub mod domain;
pub mod intake;
pub mod notifier;
pub mod plan;
pub mod provider;
pub mod routing;
pub mod summary;
pub mod testing;

pub use alert::{show_order_command, Alert, AlertKind};
pub use domain::{
    ActivationCode, ActivationCodeError, Currency, CurrencyTable, Customer, CustomerError,
    EmailAddress, Iccid, IccidError, JsonScalar, Locale, Money, OrderEvent, OrderNo, OrderResult,
    PayloadError, WebhookPayload,
};
pub use intake::{classify, Disposition, EventFingerprint, EventSource};
pub use notifier::{
    Audience, CompletedOrder, Content, FailedOrder, Notification, Notifier, NotifyError, Receipt,
};
pub use plan::{plan, plan_alert, Delivery, Plan, PlannedJob};
pub use provider::{
    CallGate, OrderStatus, PlaceOrder, Provider, ProviderError, ProviderOrder, ProviderPage,
};
pub use routing::{RouteTrigger, Routes};

/// Re-exported so plugin crates use the same `async_trait` as the contract.
pub use async_trait::async_trait;
