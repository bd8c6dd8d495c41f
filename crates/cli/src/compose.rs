//! The composition root: notifiers built through the plugin registry (`plugins.rs`), routes,
//! and the receiver's and dispatcher's settings from the configuration.

use std::collections::HashMap;

use anyhow::{bail, Context};
use esim_courier_core::{Audience, CurrencyTable, RouteTrigger, Routes};
use esim_courier_dispatch::{default_worker_id, DispatcherConfig, Registered, RetryPolicy};
use esim_courier_receiver::{Hardening, RateLimit, ReceiverConfig, SignatureCheck};
use std::num::NonZeroU32;

use crate::config::{Config, NotifierCommon};
use crate::plugins::Registry;

/// Operator notifications within this window go out as one message, unless a notifier's
/// `group_window` says otherwise.
pub const DEFAULT_GROUP_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Every configured notifier, built by its type in `registry`, with its retry policy and
/// grouping window.
pub fn notifiers(
    config: &Config,
    registry: &Registry,
) -> anyhow::Result<HashMap<String, Registered>> {
    let mut out = HashMap::new();
    for (name, section) in &config.notifiers {
        let common = NotifierCommon::of(name, section)?;
        let retry = common.retry;
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
        let notifier = registry.build(&common.kind, name, section)?;
        let group_window = match (notifier.audience(), common.group_window) {
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

/// The notifiers a deliberate re-send queues the activation email for: the customer-audience
/// ones routed on COMPLETED (`esim-courier resend` and the console's resend).
pub fn resend_targets(notifiers: &HashMap<String, Registered>, routes: &Routes) -> Vec<String> {
    routes
        .for_trigger(RouteTrigger::Completed)
        .into_iter()
        .filter(|n| {
            notifiers
                .get(*n)
                .is_some_and(|r| r.notifier.audience() == Audience::Customer)
        })
        .map(str::to_owned)
        .collect()
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
    if config.reconcile.verify_webhooks && config.provider.is_none() {
        bail!("reconcile.verify_webhooks needs a [provider] section: webhooks are confirmed at the provider's order API");
    }
    let mut rc = ReceiverConfig::new(config.webhook.tokens.clone(), config.api.tokens.clone());
    rc.max_body_bytes = config.webhook.max_body_bytes;
    rc.currencies = currencies(config)?;
    rc.routes = routes;
    rc.workers = config.server.workers;
    rc.hardening = hardening(config)?;
    rc.auth_failure_alert_per_minute = config.webhook.auth_failure_alert_per_minute;
    rc.metrics_on_main = config.server.admin_bind.is_none();
    rc.lookup_after = config
        .provider
        .is_some()
        .then_some(config.reconcile.expect_within);
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

/// The configured provider client, if there is a `[provider]` section. Its keys are the
/// type's own (unknown ones refused by name); `type` names the provider.
/// With `store`, its lookups take turns through the database with every other replica's
/// (`Store::provider_gate`), so the provider's rate holds for the whole deployment.
pub fn provider(
    config: &Config,
    store: Option<&esim_courier_store::Store>,
) -> anyhow::Result<Option<std::sync::Arc<dyn esim_courier_core::Provider>>> {
    let Some(section) = &config.provider else {
        return Ok(None);
    };
    let kind = section
        .get("type")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("provider: key \"type\" is missing (yoni)"))?;
    match kind {
        "yoni" => {
            let yoni: esim_courier_provider_yoni::YoniConfig =
                crate::plugins::section_config("provider", section, &["type"])?;
            let mut client =
                esim_courier_provider_yoni::YoniProvider::new(yoni, currencies(config)?)
                    .map_err(|e| anyhow::anyhow!("provider: {e}"))?;
            if let Some(store) = store {
                let gate = store.provider_gate(client.requests_per_second());
                client = client.with_gate(std::sync::Arc::new(gate));
            }
            Ok(Some(std::sync::Arc::new(client)))
        }
        other => anyhow::bail!("provider: type {other:?} is not one of yoni"),
    }
}

/// The reconciler and what it does, with a `[provider]`: lookups of known orders always,
/// sweeps unless `[reconcile] sweep_interval = "0s"`.
pub fn reconciler(
    config: &Config,
    store: &esim_courier_store::Store,
    routes: &Routes,
) -> anyhow::Result<
    Option<(
        esim_courier_dispatch::reconcile::Reconciler,
        esim_courier_dispatch::reconcile::ReconcileSettings,
    )>,
> {
    use esim_courier_dispatch::reconcile::{ReconcileSettings, Reconciler, SweepSchedule};
    let r = &config.reconcile;
    let Some(provider) = provider(config, Some(store))? else {
        return Ok(None);
    };
    if r.lookup_interval.is_zero() {
        bail!("reconcile.lookup_interval must be above 0s");
    }
    let sweep = if r.sweep_interval.is_zero() {
        None
    } else {
        if r.sweep_window < r.sweep_interval {
            bail!("reconcile.sweep_window must be at least reconcile.sweep_interval: a shorter window leaves orders no sweep looks at");
        }
        Some(SweepSchedule {
            interval: r.sweep_interval,
            window: r.sweep_window,
        })
    };
    Ok(Some((
        Reconciler::new(store.clone(), provider, routes.clone()),
        ReconcileSettings {
            expect_within: r.expect_within,
            sweep,
            lookup_interval: r.lookup_interval,
            give_up_after: r.give_up_after,
            verify_webhooks: r.verify_webhooks,
        },
    )))
}

/// The retention purge's settings, `None` when `[retention]` keeps everything.
pub fn retention_settings(
    config: &Config,
) -> anyhow::Result<Option<esim_courier_dispatch::RetentionSettings>> {
    let Some(retention) = config.retention.periods() else {
        return Ok(None);
    };
    if config.retention.purge_interval.is_zero() {
        bail!("retention.purge_interval must be more than 0s");
    }
    Ok(Some(esim_courier_dispatch::RetentionSettings {
        retention,
        interval: config.retention.purge_interval,
    }))
}

/// The dispatcher's configuration. A lease under a second is refused: a delivery renews its
/// lease every third of it, and a job whose lease ends mid-delivery is claimed again and sent
/// twice. A poll interval of 0s would claim in a busy loop.
pub fn dispatcher_config(config: &Config) -> anyhow::Result<DispatcherConfig> {
    let d = &config.dispatcher;
    if d.lease < std::time::Duration::from_secs(1) {
        bail!("dispatcher.lease must be at least 1s (and above every notifier's retry.timeout)");
    }
    if d.poll_interval.is_zero() {
        bail!("dispatcher.poll_interval must be more than 0s");
    }
    Ok(DispatcherConfig {
        worker_id: default_worker_id(),
        lease: d.lease,
        concurrency: d.concurrency.max(1),
        poll_interval: d.poll_interval,
        customer_wait: d.customer_wait,
        shutdown_grace: d.shutdown_grace,
    })
}

/// The console's configuration: `tls` when esim-courier serves TLS itself (its cookies are
/// then `Secure` unless `[console] secure_cookies` says otherwise), `resend_to` the
/// notifiers its resend uses. No login allowed at all, or a session that ends before its
/// first page, is refused by name rather than served as a console nobody can use.
pub fn console_config(
    config: &Config,
    tls: bool,
    resend_to: Vec<String>,
) -> anyhow::Result<esim_courier_console::ConsoleConfig> {
    let c = &config.console;
    if c.login_attempts_per_minute == 0 {
        bail!(
            "console.login_attempts_per_minute must be at least 1: with 0 every login is refused"
        );
    }
    if c.session_idle < std::time::Duration::from_secs(60) {
        bail!("console.session_idle must be at least 1m: a shorter one ends sessions between two pages");
    }
    Ok(esim_courier_console::ConsoleConfig {
        session_idle: c.session_idle,
        login_attempts_per_minute: c.login_attempts_per_minute,
        secure_cookies: c.secure_cookies.unwrap_or(tls),
        trusted_proxies: config.webhook.trusted_proxies.clone(),
        resend_to,
    })
}

/// The configured email notifiers as their concrete type (for `preview`, which renders
/// emails to files).
#[cfg(feature = "email")]
pub fn email_notifiers(
    config: &Config,
) -> anyhow::Result<Vec<(String, esim_courier_notify_email::EmailNotifier)>> {
    let mut out = Vec::new();
    for (name, section) in &config.notifiers {
        if NotifierCommon::of(name, section)?.kind == "email" {
            let config = crate::plugins::own_config(name, section)?;
            let notifier = esim_courier_notify_email::EmailNotifier::new(name, config)
                .map_err(|e| anyhow::anyhow!("notifiers.{name}: {e}"))?;
            out.push((name.clone(), notifier));
        }
    }
    Ok(out)
}
