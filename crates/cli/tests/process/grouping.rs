use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{edit_config, failed, table, wait_until, write_config, Hook, Server};

/// A provider outage: 300 FAILED webhooks in a burst. The operator channel gets a handful of
/// messages that together name every order, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_300_failed_orders_makes_a_few_grouped_messages_naming_them_all() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hook = Hook::start(0);
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}/g.db", dir.path().display()),
        &hook.url,
        "",
    );
    edit_config(&config, |doc| {
        let hook = table(table(doc, "notifiers"), "hook");
        assert!(hook.contains_key("group_window"));
        hook.insert("group_window".into(), "2s".into());
    });
    let server = Server::start(&config, dir.path()).await;
    let client = esim_courier_tests::http_client();
    for chunk in (0..300).collect::<Vec<_>>().chunks(25) {
        let posts = chunk
            .iter()
            .map(|i| server.post(&client, failed(&format!("OUTAGE-{i}"))));
        assert!(futures_util::future::join_all(posts)
            .await
            .iter()
            .all(|s| *s == 200));
    }
    let named = || {
        let state = hook.state.lock().expect("lock");
        let mut orders = Vec::new();
        for body in state.bodies.values() {
            let v: Value = serde_json::from_str(body).expect("JSON");
            let items = match v["type"].as_str() {
                Some("digest") => v["data"]["items"].as_array().cloned().unwrap_or_default(),
                _ => vec![v.clone()],
            };
            for item in items {
                if let Some(o) = item["data"]["orderNo"].as_str() {
                    orders.push(o.to_owned());
                }
            }
        }
        orders
    };
    wait_until(60, "all 300 orders named", || named().len() >= 300).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let orders = named();
    let distinct: HashSet<&String> = orders.iter().collect();
    assert_eq!(distinct.len(), 300, "every failed order is named");
    assert_eq!(orders.len(), 300, "each exactly once");
    let messages = hook.completed().len();
    assert!(messages <= 5, "{messages} messages for one outage");
    let digests = hook
        .state
        .lock()
        .expect("lock")
        .bodies
        .values()
        .filter(|b| b.contains("\"type\":\"digest\""))
        .count();
    assert!(digests >= 1, "the burst went out grouped");
    drop(server);
}
