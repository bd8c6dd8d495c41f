//! The raw actix-web baseline: the same route, body limit and JSON parsing as esim-courier's
//! webhook, with the same number of workers, and no store. It runs in its own process
//! (`esim-courier-bench baseline-server`), like esim-courier does, so both pay the same
//! process and scheduling costs.

use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;

/// The token in the baseline's webhook path.
pub const TOKEN: &str = "bench-token";

/// The fields of the provider's webhook; the values are read the tolerant way esim-courier
/// reads them (strings or numbers).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Parsed to pay the same cost as the real intake, then dropped.
struct Webhook {
    order_no: Option<String>,
    result: Option<String>,
    iccid: Option<String>,
    lpa: Option<String>,
    package_code: Option<String>,
    package_name: Option<String>,
    price: Option<serde_json::Value>,
    currency: Option<serde_json::Value>,
}

/// Serves `POST /webhooks/order/{token}` and `GET /healthz` on 127.0.0.1:`port` until killed.
pub fn serve(port: u16, workers: usize) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new()
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
        .await
    })?;
    Ok(())
}

async fn receive(token: web::Path<String>, body: web::Bytes) -> HttpResponse {
    match accept(&token, &body) {
        Ok(order_no) => accepted(&order_no),
        Err(refusal) => *refusal,
    }
}

/// The checks every webhook server of the benchmark makes before it records anything: the
/// token, then the JSON with an order number and a result. Gives the order number, or the
/// answer that refuses the request.
pub fn accept(token: &str, body: &[u8]) -> Result<String, Box<HttpResponse>> {
    if token != TOKEN {
        return Err(Box::new(
            HttpResponse::Unauthorized().json(serde_json::json!({"error": "unauthorized"})),
        ));
    }
    match serde_json::from_slice::<Webhook>(body) {
        Ok(Webhook {
            order_no: Some(order_no),
            result: Some(_),
            ..
        }) => Ok(order_no),
        Ok(_) => Err(Box::new(
            HttpResponse::UnprocessableEntity()
                .json(serde_json::json!({"error": "invalid_payload"})),
        )),
        Err(e) => Err(Box::new(HttpResponse::BadRequest().json(
            serde_json::json!({"error": "invalid_json", "message": e.to_string()}),
        ))),
    }
}

/// The 200 answer, as esim-courier gives it.
pub fn accepted(order_no: &str) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "accepted", "orderNo": order_no}))
}

/// Starts the baseline as a child process (this executable, `baseline-server`).
pub async fn start(
    workers: usize,
    log_dir: &std::path::Path,
) -> anyhow::Result<crate::process::Server> {
    let log = log_dir.join("baseline-server.log");
    start_child("the baseline", "baseline-server", &[], workers, log).await
}

/// Starts this executable's `subcommand --port <free> --workers <workers> <args>` as a child
/// server and waits for its `/healthz`; its output goes to the file `log`.
pub async fn start_child(
    name: &str,
    subcommand: &str,
    args: &[&str],
    workers: usize,
    log: std::path::PathBuf,
) -> anyhow::Result<crate::process::Server> {
    let port = crate::process::free_port()?;
    let exe = std::env::current_exe()?;
    let mut command = tokio::process::Command::new(exe);
    command
        .args([
            subcommand,
            "--port",
            &port.to_string(),
            "--workers",
            &workers.to_string(),
        ])
        .args(args);
    crate::process::Server::start(
        name,
        command,
        std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        "/healthz",
        log,
    )
    .await
}

/// The baseline's webhook path.
pub fn webhook_path() -> String {
    format!("/webhooks/order/{TOKEN}")
}
