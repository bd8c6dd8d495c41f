use std::time::Duration;

use esim_courier_tests::{on_both_backends, test_db, Backend};
use serde_json::Value;

use crate::harness::{failed, run_cli, wait_until, write_config, Hook, Server};

on_both_backends!(kill_9_during_a_delivery_then_restart_delivers_exactly_once);

/// kill -9 while a delivery hangs, restart: the expired lease makes the job claimable, and
/// the endpoint gets exactly one completed delivery.
async fn kill_9_during_a_delivery_then_restart_delivers_exactly_once(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(1);
    let config = write_config(dir.path(), &db.url, &hook.url, "");
    let client = esim_courier_tests::http_client();

    let mut first = Server::start(&config, dir.path()).await;
    assert_eq!(first.post(&client, failed("CRASH-1")).await, 200);
    wait_until(20, "the delivery to reach the endpoint", || {
        !hook.started().is_empty()
    })
    .await;
    first.child.kill().await.expect("SIGKILL");
    assert!(
        hook.completed().is_empty(),
        "the first delivery never finished"
    );

    let mut second = Server::start(&config, dir.path()).await;
    wait_until(30, "the job to be delivered after the restart", || {
        !hook.completed().is_empty()
    })
    .await;
    // Give a duplicate every chance to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let completed = hook.completed();
    assert_eq!(
        completed.len(),
        1,
        "exactly one completed delivery: {completed:?}"
    );
    assert_eq!(
        hook.started().len(),
        2,
        "the interrupted attempt and the one after the restart"
    );
    assert_eq!(
        hook.started()[0],
        completed[0],
        "the same job, with the same webhook-id"
    );

    let (code, out, err) = run_cli(
        &config,
        dir.path(),
        &["orders", "show", "CRASH-1", "--json"],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let order: Value = serde_json::from_str(&out).expect("JSON");
    let job = &order["notifications"][0];
    assert_eq!(job["state"], "done");
    assert_eq!(job["attempts"], 2, "the crashed claim counts as an attempt");
    second.child.kill().await.expect("stopped");
}
