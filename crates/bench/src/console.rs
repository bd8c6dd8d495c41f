//! The `console` command: the operators' console over a store holding many orders (one
//! million by default), through the real actix app on a port, logged in as an operator. Each
//! scenario (the first page of orders, a page deep in the list, searches by order number,
//! ICCID and customer address) is requested sequentially; the baseline in the same run is the
//! console's stylesheet, the same HTTP path and middleware without the database.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::Context;
use esim_courier_console::{hash_password, ConsoleConfig};
use esim_courier_store::{Role, Store, StoreOptions};
use sqlx::any::AnyPoolOptions;

/// The `console` command's options.
#[derive(Debug, Clone, clap::Args)]
pub struct ConsoleBenchOptions {
    /// Orders in the store (each with a customer and one COMPLETED event).
    #[arg(long, default_value_t = 1_000_000)]
    pub orders: u64,
    /// Requests per scenario.
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// The database (default: a fresh SQLite file under target/bench); a PostgreSQL URL
    /// names an empty database to fill.
    #[arg(long)]
    pub url: Option<String>,
}

const SQLITE_SEED: [&str; 3] = [
    "INSERT INTO webhook_receipts (id, received_at, remote_addr, order_no, outcome, http_status, body)
     VALUES (1, 1700000000000, NULL, NULL, 'accepted', 200, X'7B7D')",
    "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < $1)
     INSERT INTO orders (order_no, created_at, updated_at, state, customer_email, customer_name, recorded_events)
     SELECT printf('BENCH%07d', i), 1700000000000 + i * 1000, 1700000000000 + i * 1000, 'COMPLETED',
            printf('t%d@traveller.example', i), 'Traveller', 1 FROM n",
    "INSERT INTO order_events (order_no, receipt_id, received_at, result, disposition, fingerprint, iccid,
                               lpa, package_code, package_name, currency, price, warnings)
     SELECT order_no, 1, created_at, 'COMPLETED', 'accepted', order_no,
            '8944' || substr(order_no, 6) || '00000000', 'LPA:1$rsp.bench.example$69C32E7D00000001',
            'JP-7D-5GB', 'Japan, 7 Days, 5GB', '2', '4.20', '[]' FROM orders WHERE $1 > 0",
];

const POSTGRES_SEED: [&str; 3] = [
    "INSERT INTO webhook_receipts (id, received_at, remote_addr, order_no, outcome, http_status, body)
     OVERRIDING SYSTEM VALUE VALUES (1, 1700000000000, NULL, NULL, 'accepted', 200, '\\x7b7d')",
    "INSERT INTO orders (order_no, created_at, updated_at, state, customer_email, customer_name, recorded_events)
     SELECT 'BENCH' || lpad(i::text, 7, '0'), 1700000000000 + i * 1000, 1700000000000 + i * 1000, 'COMPLETED',
            't' || i || '@traveller.example', 'Traveller', 1 FROM generate_series(0, $1 - 1) AS i",
    "INSERT INTO order_events (order_no, receipt_id, received_at, result, disposition, fingerprint, iccid,
                               lpa, package_code, package_name, currency, price, warnings)
     SELECT order_no, 1, created_at, 'COMPLETED', 'accepted', order_no,
            '8944' || substr(order_no, 6) || '00000000', 'LPA:1$rsp.bench.example$69C32E7D00000001',
            'JP-7D-5GB', 'Japan, 7 Days, 5GB', '2', '4.20', '[]' FROM orders WHERE $1 > 0",
];

/// Runs the `console` command.
pub async fn run(options: ConsoleBenchOptions) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let url = options.url.clone().unwrap_or_else(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("console.db");
        let _ = std::fs::remove_file(&file);
        format!("sqlite://{}", file.display())
    });
    let postgres = url.starts_with("postgres");
    let store = Store::connect(&StoreOptions::new(
        &url,
        std::sync::Arc::new(esim_courier_store::Keyring::random()),
    ))
    .await
    .context("the store")?;
    store.migrate().await.context("migrations")?;
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await?;
    let existing: i64 = sqlx::Row::try_get(
        &sqlx::query("SELECT COUNT(*) AS n FROM orders")
            .fetch_one(&pool)
            .await?,
        "n",
    )?;
    anyhow::ensure!(
        existing == 0,
        "--url must name an empty database ({existing} orders in it)"
    );
    let started = Instant::now();
    let n = i64::try_from(options.orders)?;
    for sql in if postgres { POSTGRES_SEED } else { SQLITE_SEED } {
        let q = sqlx::query(sql);
        let q = if sql.contains("$1") { q.bind(n) } else { q };
        q.execute(&pool)
            .await
            .with_context(|| format!("seeding: {sql}"))?;
    }
    println!(
        "{} orders (and as many events) written in {:.1} s",
        options.orders,
        started.elapsed().as_secs_f64()
    );
    // Written in plaintext as a database from before encryption: the store's first start
    // seals them (and keys the fingerprints and the address index), as an upgrade would.
    let started = Instant::now();
    store
        .prepare_encryption(&|_| {})
        .await
        .context("encrypting the seeded orders")?;
    println!(
        "encrypted as an upgraded database in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if postgres {
        sqlx::query("ANALYZE").execute(&pool).await?;
    }

    let hash = hash_password("a long bench passphrase").map_err(anyhow::Error::msg)?;
    store
        .add_console_user("bench", Role::Operator, &hash, "bench")
        .await?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let routes = esim_courier_console::configure(store.clone(), ConsoleConfig::default());
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
            .workers(2)
            .disable_signals()
            .listen(listener)?
            .run();
    let handle = server.handle();
    tokio::spawn(server);

    let client = esim_courier_test_support::http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session = esim_courier_test_support::console::log_in(
        &client,
        &base,
        "bench",
        "a long bench passphrase",
    )
    .await
    .map_err(anyhow::Error::msg)?;

    let last = options.orders.saturating_sub(1);
    let middle = options.orders / 2;
    let scenarios: Vec<(&str, String)> = vec![
        (
            "baseline: the stylesheet (no database)",
            "/admin/console.css".into(),
        ),
        ("orders, first page", "/admin/orders".into()),
        (
            "orders, a page from the middle (keyset)",
            format!(
                "/admin/orders?after={}%3ABENCH{middle:07}",
                1_700_000_000_000 + middle * 1000
            ),
        ),
        (
            "search: an order number",
            format!("/admin/orders?q=BENCH{last:07}"),
        ),
        (
            "search: an order number prefix",
            format!("/admin/orders?q=BENCH{:05}", middle / 100),
        ),
        (
            "search: an ICCID",
            format!("/admin/orders?q=8944{middle:07}00000000"),
        ),
        (
            "search: a customer's address",
            format!("/admin/orders?q=t{middle}%40traveller.example"),
        ),
        (
            "orders, filter emailed (none match)",
            "/admin/orders?filter=emailed".into(),
        ),
    ];
    println!(
        "\n{:<44} {:>9} {:>9} {:>9} {:>10}",
        "scenario", "p50 ms", "p95 ms", "max ms", "p95/base"
    );
    let mut base_p95 = None;
    for (name, path) in scenarios {
        let mut times = Vec::with_capacity(options.requests);
        for _ in 0..options.requests {
            let t = Instant::now();
            let res = client
                .get(format!("{base}{path}"))
                .header("cookie", session.clone())
                .send()
                .await?;
            anyhow::ensure!(res.status().is_success(), "{path}: {}", res.status());
            let body = res.text().await?;
            // A page that should list orders must: an empty one would be fast for nothing.
            let lists = body.contains("href=\"/admin/orders/");
            anyhow::ensure!(
                lists == (path.starts_with("/admin/orders") && !path.contains("filter=")),
                "{path}: {} orders listed",
                if lists { "some" } else { "no" }
            );
            times.push(t.elapsed());
        }
        times.sort();
        let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
        let (p50, p95, max) = (at(0.5), at(0.95), times[times.len() - 1]);
        let ratio = base_p95.map_or_else(
            || "1.0".to_owned(),
            |b: Duration| format!("{:.1}", p95.as_secs_f64() / b.as_secs_f64()),
        );
        base_p95.get_or_insert(p95);
        println!(
            "{name:<44} {:>9.2} {:>9.2} {:>9.2} {:>10}",
            ms(p50),
            ms(p95),
            ms(max),
            ratio
        );
    }
    handle.stop(true).await;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
