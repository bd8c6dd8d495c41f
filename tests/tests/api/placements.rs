//! The placement API and its store: one placement and one job per reference, whatever the
//! concurrency; a clear refusal when no provider is configured.

use esim_courier_core::{Customer, EmailAddress};
use esim_courier_store::{NewPlacement, Placement, PlacementStatus};
use esim_courier_tests::{on_both_backends, spawn_app, AppOptions, Backend, API_TOKEN};
use serde_json::json;

on_both_backends!(
    without_the_provider_a_placement_is_refused_and_nothing_is_recorded,
    one_reference_asked_at_once_is_one_placement_with_one_job,
    a_failed_placement_retried_from_its_dead_letter_is_placing_again,
);

async fn without_the_provider_a_placement_is_refused_and_nothing_is_recorded(backend: Backend) {
    let Some(app) = spawn_app(backend, AppOptions::default()).await else {
        return;
    };
    let res = app
        .client
        .post(format!("{}/api/v1/placements", app.base))
        .bearer_auth(API_TOKEN)
        .json(&json!({"reference": "r-1", "packageCode": "JP-7D-5GB", "email": "ana@example.com"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 503);
    // Only a configuration change clears it: no hint to retry in a second.
    assert!(res.headers().get("retry-after").is_none());
    let answer: serde_json::Value = res.json().await.expect("JSON");
    assert_eq!(answer["error"], "provider_not_configured", "{answer}");
    assert!(answer["message"]
        .as_str()
        .is_some_and(|m| m.contains("[provider]")));
    assert_eq!(app.count("SELECT COUNT(*) FROM placements").await, 0);

    // Without the bearer token: 401 before anything else.
    let res = app
        .client
        .post(format!("{}/api/v1/placements", app.base))
        .json(&json!({}))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 401);
    let res = app
        .client
        .get(format!("{}/api/v1/placements/r-1", app.base))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 404);
    app.stop().await;
}

fn asked(reference: &str, package: &str) -> NewPlacement {
    NewPlacement {
        reference: reference.into(),
        package_code: package.into(),
        customer: Customer {
            email: EmailAddress::parse("ana@example.com").expect("an address"),
            name: Some("Ana".into()),
            locale: None,
            retail_price: None,
        },
    }
}

async fn one_reference_asked_at_once_is_one_placement_with_one_job(backend: Backend) {
    let Some(app) = spawn_app(
        backend,
        AppOptions {
            dispatcher: false,
            ..AppOptions::default()
        },
    )
    .await
    else {
        return;
    };
    let same = asked("shop-77", "JP-7D-5GB");
    let answers = futures_util::future::join_all((0..8).map(|_| app.store.place(&same))).await;
    let mut created = 0;
    for answer in answers {
        match answer.expect("recorded") {
            Placement::Created(p) => {
                created += 1;
                assert_eq!(p.status, PlacementStatus::Placing);
            }
            Placement::Existing(p) => assert!(p.is_same_request(&same)),
            Placement::Conflict(p) => panic!("the same request is no conflict: {p:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM placements").await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE kind = 'place_order'")
            .await,
        1
    );

    // Another package under the same reference: a conflict, and the placement unchanged.
    match app.store.place(&asked("shop-77", "TH-3D-1GB")).await {
        Ok(Placement::Conflict(p)) => assert_eq!(p.package_code, "JP-7D-5GB"),
        other => panic!("expected a conflict: {other:?}"),
    }
    let stored = app.store.placement("shop-77").await.expect("read");
    assert_eq!(stored.map(|p| p.package_code), Some("JP-7D-5GB".into()));
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox_jobs WHERE kind = 'place_order'")
            .await,
        1
    );
    app.stop().await;
}

async fn a_failed_placement_retried_from_its_dead_letter_is_placing_again(backend: Backend) {
    let Some(app) = spawn_app(
        backend,
        AppOptions {
            dispatcher: false,
            ..AppOptions::default()
        },
    )
    .await
    else {
        return;
    };
    let Placement::Created(_) = app
        .store
        .place(&asked("shop-88", "NO-SUCH"))
        .await
        .expect("recorded")
    else {
        panic!("a new placement");
    };
    let jobs = app.store.claim("w1", 60_000, 10).await.expect("claimed");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].payload.as_deref(), Some("shop-88"));
    let attempt = esim_courier_store::Attempt {
        worker: "w1",
        started_at: 1,
        finished_at: 2,
        recipient: None,
    };
    let why = "the package does not exist";
    let failed = app
        .store
        .placement_failed(
            &jobs[0],
            &attempt,
            (esim_courier_store::AttemptOutcome::Permanent, why),
            &[Vec::new()],
        )
        .await
        .expect("written");
    assert!(failed);
    let p = app
        .store
        .placement("shop-88")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        (p.status, p.error.as_deref()),
        (PlacementStatus::Failed, Some(why))
    );

    // The operator retries the dead letter: the placement is being placed again.
    assert_eq!(
        app.store
            .retry_dead(Some(jobs[0].id), "ops")
            .await
            .expect("retried"),
        1
    );
    let p = app
        .store
        .placement("shop-88")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(p.status, PlacementStatus::Placing);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM outbox_jobs WHERE kind = 'place_order' AND state = 'pending'"
        )
        .await,
        1
    );
    app.stop().await;
}
