//! The composition root: the one place that knows every notifier plugin.
//!
//! Adding a notifier = a crate, a match arm in [`build_notifier`], and its config section.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context};
use esim_courier_core::{Audience, CurrencyTable, Notifier, RouteTrigger, Routes};
use esim_courier_dispatch::{default_worker_id, DispatcherConfig, Registered, RetryPolicy};
use esim_courier_notify_email::{EmailConfig, EmailNotifier};
use esim_courier_notify_log::{LogConfig, LogNotifier};
use esim_courier_notify_slack::{SlackConfig, SlackNotifier};
use esim_courier_notify_telegram::{TelegramConfig, TelegramNotifier};
use esim_courier_notify_webhook::{WebhookConfig, WebhookNotifier};
use esim_courier_receiver::{Hardening, RateLimit, ReceiverConfig, SignatureCheck};
use figment::value::Dict;
use std::num::NonZeroU32;

use crate::config::{self, notifier_section, notifier_type, retry_section, Config};

/// The notifier types this build knows.
pub const NOTIFIER_TYPES: &[&str] = &["email", "log", "slack", "telegram", "webhook"];

/// Operator notifications within this window go out as one message, unless a notifier's
/// `group_window` says otherwise.
pub const DEFAULT_GROUP_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

fn build_notifier(name: &str, section: &Dict) -> anyhow::Result<Arc<dyn Notifier>> {
    let kind = notifier_type(section).unwrap_or_default();
    Ok(match kind.as_str() {
        "email" => Arc::new(
            EmailNotifier::new(name, notifier_section::<EmailConfig>(name, section)?)
                .map_err(|e| anyhow::anyhow!("notifiers.{name}.{e}"))?,
        ),
        "log" => Arc::new(LogNotifier::new(
            name,
            notifier_section::<LogConfig>(name, section)?,
        )),
        "slack" => Arc::new(
            SlackNotifier::new(name, notifier_section::<SlackConfig>(name, section)?)
                .with_context(|| format!("notifiers.{name}"))?,
        ),
        "telegram" => Arc::new(
            TelegramNotifier::new(name, notifier_section::<TelegramConfig>(name, section)?)
                .with_context(|| format!("notifiers.{name}"))?,
        ),
        "webhook" => Arc::new(
            WebhookNotifier::new(name, notifier_section::<WebhookConfig>(name, section)?)
                .with_context(|| format!("notifiers.{name}"))?,
        ),
        other => bail!(
            "notifiers.{name}: type {other:?} is not one of {}",
            NOTIFIER_TYPES.join(", ")
        ),
    })
}

/// Every configured notifier with its retry policy.
pub fn notifiers(config: &Config) -> anyhow::Result<HashMap<String, Registered>> {
    let mut out = HashMap::new();
    for (name, section) in &config.notifiers {
        let retry = retry_section(name, section)?;
        if retry.max_attempts == 0 {
            bail!("notifiers.{name}.retry.max_attempts must be at least 1");
        }
        let policy = RetryPolicy {
            max_attempts: retry.max_attempts,
            max_age: retry.max_age,
            initial_delay: retry.initial_delay,
            max_delay: retry.max_delay,
            timeout: retry.timeout,
        };
        let notifier = build_notifier(name, section)?;
        let group_window = match (notifier.audience(), config::group_window(name, section)?) {
            (Audience::Customer, Some(w)) if !w.is_zero() => {
                bail!(
                    "notifiers.{name}.group_window: customer notifiers send each email on its own"
                )
            }
            (Audience::Customer, _) => None,
            (Audience::Operator, None) => Some(DEFAULT_GROUP_WINDOW),
            (Audience::Operator, Some(w)) => (!w.is_zero()).then_some(w),
        };
        out.insert(
            name.clone(),
            Registered {
                notifier,
                policy,
                group_window,
            },
        );
    }
    Ok(out)
}

/// The routes, checked against the configured notifiers.
pub fn routes(config: &Config, notifiers: &HashMap<String, Registered>) -> anyhow::Result<Routes> {
    let mut routes = Vec::new();
    for (i, r) in config.routes.iter().enumerate() {
        let trigger = r.when;
        for n in &r.notify {
            let Some(reg) = notifiers.get(n) else {
                bail!("routes[{i}] (when = \"{trigger}\") names notifier {n:?}, which is not configured under [notifiers]");
            };
            let audience = reg.notifier.audience();
            if audience == Audience::Customer && trigger != RouteTrigger::Completed {
                bail!("routes[{i}]: notifier {n:?} writes to customers, so it can only be routed on COMPLETED");
            }
        }
        routes.push((trigger, r.notify.clone()));
    }
    Ok(Routes::new(routes))
}

/// The currency table with the configured extra codes.
pub fn currencies(config: &Config) -> anyhow::Result<CurrencyTable> {
    CurrencyTable::with_extra(
        config
            .currencies
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    )
    .map_err(|e| anyhow::anyhow!("currencies: {e}"))
}

/// The receiver's configuration.
pub fn receiver_config(config: &Config, routes: Routes) -> anyhow::Result<ReceiverConfig> {
    if config.webhook.tokens.is_empty() {
        bail!("webhook.tokens is empty: the provider's webhook URL needs at least one token");
    }
    let mut rc = ReceiverConfig::new(config.webhook.tokens.clone(), config.api.tokens.clone());
    rc.max_body_bytes = config.webhook.max_body_bytes;
    rc.currencies = currencies(config)?;
    rc.routes = routes;
    rc.workers = config.server.workers;
    rc.hardening = hardening(config)?;
    rc.auth_failure_alert_per_minute = config.webhook.auth_failure_alert_per_minute;
    rc.metrics_on_main = config.server.admin_bind.is_none();
    Ok(rc)
}

fn hardening(config: &Config) -> anyhow::Result<Hardening> {
    let w = &config.webhook;
    let rate_limit = match &w.rate_limit {
        None => None,
        Some(r) => {
            let per_second = NonZeroU32::new(r.per_second)
                .context("webhook.rate_limit.per_second must be at least 1")?;
            let burst = NonZeroU32::new(r.burst.unwrap_or(r.per_second.saturating_mul(2)))
                .context("webhook.rate_limit.burst must be at least 1")?;
            Some(RateLimit { per_second, burst })
        }
    };
    let signature = w.signature.as_ref().map(|s| SignatureCheck {
        header: s.header.clone(),
        algorithm: s.algorithm,
        encoding: s.encoding,
        prefix: s.prefix.clone(),
        secret: s.secret.clone(),
    });
    Ok(Hardening {
        allow_sources: w.allow_sources.clone(),
        trusted_proxies: w.trusted_proxies.clone(),
        rate_limit,
        signature,
    })
}

/// The dispatcher's configuration.
pub fn dispatcher_config(config: &Config) -> DispatcherConfig {
    let d = &config.dispatcher;
    DispatcherConfig {
        worker_id: default_worker_id(),
        lease: d.lease,
        concurrency: d.concurrency.max(1),
        poll_interval: d.poll_interval,
        customer_wait: d.customer_wait,
        shutdown_grace: d.shutdown_grace,
    }
}

/// The configured email notifiers as their concrete type (for `preview` and `check`).
pub fn email_notifiers(config: &Config) -> anyhow::Result<Vec<(String, EmailNotifier)>> {
    let mut out = Vec::new();
    for (name, section) in &config.notifiers {
        if notifier_type(section).as_deref() == Some("email") {
            let notifier =
                EmailNotifier::new(name, notifier_section::<EmailConfig>(name, section)?)
                    .map_err(|e| anyhow::anyhow!("notifiers.{name}.{e}"))?;
            out.push((name.clone(), notifier));
        }
    }
    Ok(out)
}
