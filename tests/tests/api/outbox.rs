//! Outbox claims at the store level: leases and concurrent claimers.

use std::collections::HashSet;

use esim_courier_core::{CurrencyTable, WebhookPayload};
use esim_courier_store::{now_ms, Attempt, JobKind, NewJob, NewReceipt, Store, StoreOptions};
use esim_courier_tests::{on_both_backends, test_db, Backend};

on_both_backends!(
    an_expired_lease_makes_the_job_claimable_again,
    two_claimers_never_take_the_same_job
);

async fn store(url: &str) -> Store {
    let store = Store::connect(&StoreOptions::new(url))
        .await
        .expect("connects");
    store.migrate().await.expect("migrates");
    store
}

async fn add_jobs(store: &Store, n: usize) {
    for i in 0..n {
        let body = format!(r#"{{"orderNo":"JOB-{i}","result":"FAILED"}}"#);
        let event = WebhookPayload::from_slice(body.as_bytes())
            .and_then(|p| p.into_event(&CurrencyTable::default()))
            .expect("parses");
        let receipt = NewReceipt {
            received_at_ms: now_ms(),
            remote_addr: None,
            body: body.as_bytes(),
        };
        store
            .intake(receipt, &event, |_| {
                vec![NewJob {
                    notifier: "n".into(),
                    kind: JobKind::OrderFailed,
                    payload: None,
                }]
            })
            .await
            .expect("recorded");
    }
}

async fn an_expired_lease_makes_the_job_claimable_again(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = store(&db.url).await;
    add_jobs(&store, 1).await;
    let a = store.claim("worker-a", 300, 10).await.expect("claims");
    assert_eq!(a.len(), 1);
    assert!(
        store
            .claim("worker-b", 300, 10)
            .await
            .expect("claims")
            .is_empty(),
        "leased to A"
    );
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let b = store.claim("worker-b", 30_000, 10).await.expect("claims");
    assert_eq!(b.len(), 1, "A's lease expired (A crashed): B takes the job");
    assert_eq!(b[0].attempts, 2);
    let late = Attempt {
        worker: "worker-a",
        started_at: now_ms(),
        finished_at: now_ms(),
    };
    assert!(
        !store.job_delivered(&a[0], &late, None).await.expect("runs"),
        "A no longer owns it"
    );
    let on_time = Attempt {
        worker: "worker-b",
        started_at: now_ms(),
        finished_at: now_ms(),
    };
    assert!(store
        .job_delivered(&b[0], &on_time, Some("ok"))
        .await
        .expect("runs"));
    assert!(
        store
            .claim("worker-c", 300, 10)
            .await
            .expect("claims")
            .is_empty(),
        "done jobs stay done"
    );
    store.close().await;
}

async fn two_claimers_never_take_the_same_job(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let setup = store(&db.url).await;
    add_jobs(&setup, 300).await;
    // Two stores = two connection pools, as two replicas would have.
    let claimer = |name: &'static str| {
        let url = db.url.clone();
        tokio::spawn(async move {
            let store = store(&url).await;
            let mut ids = Vec::new();
            loop {
                let jobs = store.claim(name, 60_000, 7).await.expect("claims");
                if jobs.is_empty() {
                    break;
                }
                for job in &jobs {
                    let attempt = Attempt {
                        worker: name,
                        started_at: now_ms(),
                        finished_at: now_ms(),
                    };
                    assert!(store
                        .job_delivered(job, &attempt, None)
                        .await
                        .expect("records"));
                }
                ids.extend(jobs.iter().map(|j| j.id));
            }
            store.close().await;
            ids
        })
    };
    let (a, b) = tokio::join!(claimer("replica-a"), claimer("replica-b"));
    let (a, b) = (a.expect("a runs"), b.expect("b runs"));
    let all: HashSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(
        a.len() + b.len(),
        300,
        "every job claimed once: a={} b={}",
        a.len(),
        b.len()
    );
    assert_eq!(all.len(), 300);
    setup.close().await;
}
