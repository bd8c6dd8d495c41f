//! Logging: readable text by default, JSON by configuration. `RUST_LOG` overrides the level.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Logs go to stderr so command output on stdout stays clean.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    // Already installed (tests): keep the first.
    drop(result);
}

/// Installs the Prometheus recorder and returns what renders it for `GET /metrics`.
pub fn metrics() -> anyhow::Result<esim_courier_receiver::MetricsRender> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    // Latency buckets from 0.5 ms to 60 s: intake is milliseconds, deliveries seconds.
    let buckets = [
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
        60.0,
    ];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)?
        .install_recorder()?;
    metrics::describe_counter!(
        "esim_courier_webhooks_received_total",
        "Webhook deliveries by outcome"
    );
    metrics::describe_histogram!(
        "esim_courier_intake_duration_seconds",
        "Time to answer a webhook, commit included"
    );
    metrics::describe_gauge!("esim_courier_outbox_jobs", "Outbox jobs by state");
    metrics::describe_counter!(
        "esim_courier_deliveries_total",
        "Delivery attempts by notifier and outcome"
    );
    metrics::describe_histogram!(
        "esim_courier_delivery_latency_seconds",
        "From the webhook's commit to the notifier's success"
    );
    metrics::describe_counter!(
        "esim_courier_dead_letters_total",
        "Jobs given up, by notifier"
    );
    metrics::describe_counter!(
        "esim_courier_alerts_lost_total",
        "Operator alerts that could not be delivered"
    );
    metrics::describe_counter!(
        "esim_courier_store_errors_total",
        "Store failures by component"
    );
    Ok(esim_courier_receiver::MetricsRender::new(move || {
        handle.render()
    }))
}
