//! The naive peer: the webhook intake a developer would write in an afternoon with the same
//! crates, actix-web and sqlx. It checks the token and parses the JSON as the baseline does,
//! then runs one transaction per request (the raw body and one outbox row, see
//! [`crate::minimal::record`]) through a pool of the same size as esim-courier's, and answers
//! 200 after the commit. No group commit, no duplicate or conflict detection, no encryption,
//! no dispatcher. It runs in its own process (`esim-courier-bench naive-server`) with the same
//! worker count, like esim-courier and the baseline.

use actix_web::{web, App, HttpResponse, HttpServer};

use crate::baseline::{accept, accepted};
use crate::minimal;

/// Serves `POST /webhooks/order/{token}` and `GET /healthz` on 127.0.0.1:`port`, recording
/// into the database at `url`, until killed.
pub fn serve(port: u16, workers: usize, url: String) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let pool = minimal::pool(&url, minimal::POOL_SIZE).await?;
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(pool.clone()))
                .app_data(web::PayloadConfig::new(65_536))
                .route("/webhooks/order/{token}", web::post().to(receive))
                .route(
                    "/healthz",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                )
        })
        .workers(workers.max(1))
        .bind(("127.0.0.1", port))?
        .run()
        .await?;
        anyhow::Ok(())
    })
}

async fn receive(
    pool: web::Data<sqlx::AnyPool>,
    token: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let order_no = match accept(&token, &body) {
        Ok(order_no) => order_no,
        Err(refusal) => return *refusal,
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return HttpResponse::BadRequest().json(serde_json::json!({"error": "invalid_json"}));
    };
    match minimal::record(&pool, &order_no, text).await {
        Ok(()) => accepted(&order_no),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(serde_json::json!({"error": "unavailable", "message": e.to_string()})),
    }
}

/// Starts the naive peer on `url` as a child process.
pub async fn start(
    url: &str,
    workers: usize,
    log_dir: &std::path::Path,
) -> anyhow::Result<crate::process::Server> {
    let engine = minimal::engine(url);
    // One log per engine: the second peer of a run must not overwrite the first one's.
    let log = log_dir.join(format!("naive-server-{}.log", engine.to_lowercase()));
    crate::baseline::start_child(
        &format!("the naive peer ({engine})"),
        "naive-server",
        &["--url", url],
        workers,
        log,
    )
    .await
}
