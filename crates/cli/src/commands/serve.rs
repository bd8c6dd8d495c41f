use std::net::TcpListener;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use esim_courier_dispatch::Dispatcher;
use tokio_util::sync::CancellationToken;

use super::{load, open_store};
use crate::compose;

/// `esim-courier serve`: receiver and dispatcher in one process, stopped gracefully on
/// SIGTERM or Ctrl-C: stop accepting, finish requests under way, let deliveries under way
/// finish and release the leases of jobs not started.
pub async fn run(path: &Path, registry: &crate::plugins::Registry) -> anyhow::Result<ExitCode> {
    let config = load(path)?;
    let notifiers = compose::notifiers(&config, registry)?;
    let routes = compose::routes(&config, &notifiers)?;
    let mut receiver_config = compose::receiver_config(&config, routes.clone())?;
    receiver_config.metrics = Some(crate::telemetry::metrics()?);
    let tls = config
        .server
        .tls
        .as_ref()
        .map(crate::tls::server_config)
        .transpose()?;
    let store = open_store(&config).await?;
    // Every setting is checked before the port opens: a refused one answers no webhook.
    let reconcile = compose::reconciler(&config, &store, &routes)?;
    let dispatcher_config = compose::dispatcher_config(&config)?;
    let retention = compose::retention_settings(&config)?;
    let console = config
        .console
        .enabled
        .then(|| {
            let resend_to = compose::resend_targets(&notifiers, &routes);
            compose::console_config(&config, tls.is_some(), resend_to)
        })
        .transpose()?;

    let listener = TcpListener::bind(&config.server.bind)
        .with_context(|| format!("cannot listen on {}", config.server.bind))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let admin = match &config.server.admin_bind {
        Some(bind) => {
            let admin_listener = TcpListener::bind(bind)
                .with_context(|| format!("cannot listen on server.admin_bind {bind}"))?;
            let admin_addr = admin_listener.local_addr()?;
            let server = esim_courier_receiver::serve_admin(
                admin_listener,
                store.clone(),
                receiver_config.clone(),
            )?;
            tracing::info!(%admin_addr, "metrics on http://{admin_addr}/metrics");
            let handle = server.handle();
            tokio::spawn(server);
            Some(handle)
        }
        None => None,
    };
    let console = console.map(|c| esim_courier_console::configure(store.clone(), c));
    let server = esim_courier_receiver::serve(
        listener,
        store.clone(),
        receiver_config,
        tls,
        move |cfg: &mut actix_web::web::ServiceConfig| {
            if let Some(console) = console {
                console(cfg);
            }
        },
    )?;
    let handle = server.handle();
    let mut server_task = tokio::spawn(server);

    let shutdown = CancellationToken::new();
    let mut dispatcher =
        Dispatcher::new(store.clone(), notifiers, routes, dispatcher_config.clone());
    if let Some((reconciler, settings)) = reconcile {
        if let Some(schedule) = settings.sweep {
            // A sweep at once (a start is the likeliest end of an outage), and the next
            // periodic one, should the replica that scheduled it have died before doing so.
            let now = esim_courier_store::now_ms();
            store
                .schedule_start_sweep(&dispatcher_config.worker_id)
                .await
                .context("cannot schedule the reconciliation sweep")?;
            let interval = esim_courier_store::duration_ms(schedule.interval);
            store
                .schedule_sweep(schedule.slot(now) + interval)
                .await
                .context("cannot schedule the reconciliation sweep")?;
            tracing::info!(
                interval = %humantime::format_duration(schedule.interval),
                window = %humantime::format_duration(schedule.window),
                "reconciliation sweeps the provider's recent orders"
            );
        }
        dispatcher = dispatcher.with_reconciler(reconciler, settings);
    }
    if let Some(settings) = retention {
        // A purge at once, and the next slot's, should the replica that scheduled it die.
        let now = esim_courier_store::now_ms();
        for at in [
            now,
            settings.slot(now) + esim_courier_store::duration_ms(settings.interval),
        ] {
            store
                .schedule_purge(at)
                .await
                .context("cannot schedule the retention purge")?;
        }
        tracing::info!(
            interval = %humantime::format_duration(settings.interval),
            "retention purges what is past its period"
        );
        dispatcher = dispatcher.with_retention(settings);
    }
    let dispatcher = std::sync::Arc::new(dispatcher);
    let dispatcher_task = tokio::spawn(dispatcher.run(shutdown.clone()));
    tracing::info!(%addr, "esim-courier is listening; webhook URL: {scheme}://{addr}/webhooks/order/<token>");

    let outcome = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "shutting down: no new requests, finishing those under way");
            Ok(())
        }
        ended = &mut server_task => Err(anyhow::anyhow!("the HTTP server stopped unexpectedly: {ended:?}")),
    };
    handle.stop(true).await;
    if let Some(admin) = admin {
        admin.stop(true).await;
    }
    shutdown.cancel();
    if let Err(e) = dispatcher_task.await {
        tracing::error!(error = %e, "the dispatcher ended abnormally");
    }
    store.close().await;
    tracing::info!("stopped");
    outcome.map(|()| ExitCode::SUCCESS)
}

async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "SIGINT",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
