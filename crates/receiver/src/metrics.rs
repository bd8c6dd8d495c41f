//! `GET /metrics`: Prometheus text. The counters are recorded through the `metrics` facade
//! where things happen; the outbox gauges are read from the store at scrape time.

use esim_courier_store::JobState;
use std::sync::Arc;

use actix_web::{web, HttpResponse};

use crate::AppState;

/// Renders the process's metrics in the Prometheus text format (installed by the binary).
#[derive(Clone)]
pub struct MetricsRender(Arc<dyn Fn() -> String + Send + Sync>);

impl MetricsRender {
    /// Wraps a render function, e.g. `PrometheusHandle::render`.
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(render))
    }
}

impl std::fmt::Debug for MetricsRender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsRender")
    }
}

/// Every job state, so a state with no jobs reads 0 rather than vanishing.
pub(crate) async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    let Some(render) = &state.config.metrics else {
        return HttpResponse::NotFound()
            .json(serde_json::json!({"error": "not_found", "message": "metrics are not enabled"}));
    };
    match state.store.job_counts().await {
        Ok(counts) => {
            for s in JobState::ALL {
                let n = counts
                    .iter()
                    .find(|(state, _)| *state == s)
                    .map_or(0, |(_, n)| *n);
                // Counts of rows fit an f64 exactly up to 2^53.
                #[allow(clippy::cast_precision_loss)]
                metrics::gauge!("esim_courier_outbox_jobs", "state" => s.as_str()).set(n as f64);
            }
        }
        Err(e) => {
            metrics::counter!("esim_courier_store_errors_total", "component" => "metrics")
                .increment(1);
            tracing::warn!(error = %e, "metrics: reading outbox counts failed");
        }
    }
    match state.store.oldest_awaiting_result().await {
        Ok(oldest) => {
            let waiting_ms = oldest.map_or(0, |at| (esim_courier_store::now_ms() - at).max(0));
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("esim_courier_oldest_awaiting_result_seconds")
                .set(waiting_ms as f64 / 1000.0);
        }
        Err(e) => {
            metrics::counter!("esim_courier_store_errors_total", "component" => "metrics")
                .increment(1);
            tracing::warn!(error = %e, "metrics: reading the oldest waiting order failed");
        }
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body((render.0)())
}
