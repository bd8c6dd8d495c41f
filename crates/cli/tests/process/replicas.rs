use std::collections::HashSet;
use std::time::Duration;

use esim_courier_tests::{test_db, Backend};

use crate::harness::{failed, wait_until, write_config, Hook, Server};

/// Two `serve` processes on one PostgreSQL database, polling hard so their claims overlap:
/// `FOR UPDATE SKIP LOCKED` must keep every one of 500 jobs to a single delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_deliver_500_jobs_exactly_once() {
    let Some(db) = test_db(Backend::Postgres).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let config = write_config(
        dir.path(),
        &db.url,
        &hook.url,
        "poll_interval = \"20ms\"\nconcurrency = 8",
    );
    let a = Server::start(&config, dir.path()).await;
    let b = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();

    let mut posts = (0..500)
        .map(|i| {
            let server = if i % 2 == 0 { &a } else { &b };
            let client = client.clone();
            async move { server.post(&client, failed(&format!("REPLICA-{i}"))).await }
        })
        .collect::<Vec<_>>();
    let mut statuses = Vec::new();
    while !posts.is_empty() {
        let batch: Vec<_> = posts.drain(..posts.len().min(16)).collect();
        statuses.extend(futures_util::future::join_all(batch).await);
    }
    assert!(statuses.iter().all(|s| *s == 200));

    wait_until(60, "500 deliveries", || hook.completed().len() >= 500).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let completed = hook.completed();
    let distinct: HashSet<&String> = completed.iter().collect();
    assert_eq!(distinct.len(), 500, "every job delivered");
    assert_eq!(completed.len(), 500, "no job delivered twice");
    assert_eq!(hook.started().len(), 500);
    for server in [&a, &b] {
        assert!(
            server.log_text().contains("delivered"),
            "both replicas delivered jobs"
        );
    }
    drop(posts);
    drop((a, b));
}
