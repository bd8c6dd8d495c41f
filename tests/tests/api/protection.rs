//! Encryption at rest through the real app: each stored value is bound to its own row.

use std::time::Duration;

use esim_courier_core::{EmailAddress, OrderNo};
use esim_courier_store::{now_ms, Retention, StoreError};
use esim_courier_tests::{
    migrated_store, on_both_backends, spawn_app, test_db, AppOptions, Backend, SAMPLE_COMPLETED,
};
use serde_json::json;
use sqlx::{AnyConnection, Connection, Row};

use crate::batched_writes::{deadlocks, deadlocks_after};

on_both_backends!(
    a_value_copied_into_another_row_does_not_decrypt,
    the_email_digest_index_holds_registered_customers_only,
    a_resend_given_back_after_its_address_was_forgotten_keeps_no_address,
);

async fn a_value_copied_into_another_row_does_not_decrypt(backend: Backend) {
    let options = AppOptions {
        dispatcher: false,
        ..AppOptions::default()
    };
    let Some(app) = spawn_app(backend, options).await else {
        return;
    };
    let mut other: serde_json::Value = serde_json::from_str(SAMPLE_COMPLETED).expect("JSON");
    other["orderNo"] = json!("COPY-B");
    for (order, email) in [
        ("2026032516xxxxxxxxxxx", "ana@example.com"),
        ("COPY-B", "bo@example.com"),
    ] {
        let (status, _) = app
            .register(order, json!({"email": email, "name": "N"}))
            .await;
        assert!((200..300).contains(&status), "{status}");
    }
    assert_eq!(app.webhook_json(SAMPLE_COMPLETED).await.0, 200);
    assert_eq!(app.webhook_json(other.to_string()).await.0, 200);

    // Someone with write access to the database moves Ana's sealed address and code onto
    // order B, hoping B's email goes to her address or shows her code.
    for (table, column) in [("orders", "customer_email"), ("order_events", "lpa")] {
        let sealed: String = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {column} FROM {table} WHERE order_no = '2026032516xxxxxxxxxxx'"
        )))
        .fetch_one(&app.db)
        .await
        .expect("A's value")
        .try_get(column)
        .expect("text");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET {column} = $1 WHERE order_no = 'COPY-B'"
        )))
        .bind(sealed)
        .execute(&app.db)
        .await
        .expect("copied");
    }
    let b = app.store.order("COPY-B").await;
    assert!(
        matches!(&b, Err(StoreError::Decrypt { field, row, .. })
            if field.to_string() == "orders.customer_email" && row == "COPY-B"),
        "{b:?}"
    );
    let details = app.store.order_details("2026032516xxxxxxxxxxx").await;
    let a = details.expect("A still reads").expect("A exists");
    assert_eq!(
        a.order.customer.expect("registered").email.as_str(),
        "ana@example.com"
    );
    assert!(a.events[0].activation_code.is_some());
    // B's event, with A's sealed code, does not open either.
    let event_id: i64 = sqlx::query("SELECT id FROM order_events WHERE order_no = 'COPY-B'")
        .fetch_one(&app.db)
        .await
        .expect("B's event")
        .try_get("id")
        .expect("id");
    let event = app.store.event(event_id).await;
    assert!(
        matches!(&event, Err(StoreError::Decrypt { field, .. }) if field.to_string() == "order_events.lpa"),
        "{event:?}"
    );
    app.stop().await;
}

/// An order made by its webhook has no customer yet: the index of customers' email digests
/// (the console's search, an erasure by address) takes no entry for it, and the search by a
/// digest still reads that index, with a generic plan on PostgreSQL.
async fn the_email_digest_index_holds_registered_customers_only(backend: Backend) {
    let options = AppOptions {
        dispatcher: false,
        ..AppOptions::default()
    };
    let Some(app) = spawn_app(backend, options).await else {
        return;
    };
    let mut body: serde_json::Value = serde_json::from_str(SAMPLE_COMPLETED).expect("JSON");
    for n in 0..3 {
        body["orderNo"] = json!(format!("HOOK-{n}"));
        assert_eq!(app.webhook_json(body.to_string()).await.0, 200);
    }
    let (status, _) = app
        .register("REG-1", json!({"email": "ana@example.com"}))
        .await;
    assert!((200..300).contains(&status), "{status}");
    assert_eq!(
        app.count("SELECT COUNT(*) FROM orders WHERE customer_email_index IS NOT NULL")
            .await,
        1,
        "the registered order has a digest, the webhooks' orders none"
    );

    let (definitions, plan) = match backend {
        Backend::Sqlite => (
            "SELECT name, sql FROM sqlite_master WHERE tbl_name = 'orders' AND type = 'index'
                AND sql LIKE '%customer_email_index%'",
            "EXPLAIN QUERY PLAN SELECT order_no FROM orders WHERE customer_email_index = 'digest'",
        ),
        Backend::Postgres => (
            "SELECT indexname::text, indexdef FROM pg_indexes WHERE tablename = 'orders'
                AND indexdef LIKE '%customer_email_index%'",
            "EXPLAIN EXECUTE by_digest ('digest')",
        ),
    };
    let indexes: Vec<(String, String)> = sqlx::query(definitions)
        .fetch_all(&app.db)
        .await
        .expect("the indexes")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    let (name, definition) = &indexes[0];
    assert_eq!(name, "orders_customer_email_known");
    assert!(
        definition.contains("WHERE (customer_email_index IS NOT NULL)")
            || definition.contains("WHERE customer_email_index IS NOT NULL"),
        "{definition}"
    );

    // A connection of its own (out of the pool), for the planner settings.
    let mut conn = app.db.acquire().await.expect("a connection").detach();
    if backend == Backend::Postgres {
        for setup in [
            "SET plan_cache_mode = force_generic_plan",
            // Four orders: a scan of the table would be cheaper than any index.
            "SET enable_seqscan = off",
            "PREPARE by_digest (text) AS SELECT order_no FROM orders WHERE customer_email_index = $1",
        ] {
            sqlx::query(setup)
                .execute(&mut conn)
                .await
                .expect("sets up");
        }
    }
    let column = if backend == Backend::Postgres { 0 } else { 3 };
    let plan: Vec<String> = sqlx::query(plan)
        .fetch_all(&mut conn)
        .await
        .expect("the plan")
        .iter()
        .map(|r| r.get(column))
        .collect();
    assert!(
        plan.iter()
            .any(|line| line.contains("orders_customer_email_known")),
        "{plan:?}"
    );
    app.stop().await;
}

/// An erasure (the retention purge, `customers forget`) that PostgreSQL ends to break a
/// deadlock with another transaction locking the same orders in the other order (a batch of
/// delivery outcomes, a registration) is done again, and erases all it was to erase.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_that_meets_a_deadlock_is_done_again() {
    for purge in [true, false] {
        let Some(db) = test_db(Backend::Postgres).await else {
            return;
        };
        let store = migrated_store(&db.url).await;
        let email = "ana@traveller.example";
        let customer = esim_courier_tests::customer(email);
        let mut other = AnyConnection::connect(&db.url).await.expect("connects");
        for (order, created_at) in [("ERASE-A", 1_i64), ("ERASE-B", 2)] {
            store
                .register_customer(&OrderNo::parse(order).expect("an order"), &customer)
                .await
                .expect("registered");
            // Erased in this order: the purge takes the oldest first, a `forget` goes by
            // order number.
            sqlx::query("UPDATE orders SET created_at = $1 WHERE order_no = $2")
                .bind(created_at)
                .bind(order)
                .execute(&mut other)
                .await
                .expect("dated");
        }
        let before = deadlocks(&mut other).await;
        // The other transaction waits longer before it looks for a deadlock: PostgreSQL
        // ends the erasure's.
        sqlx::raw_sql("BEGIN; SET LOCAL deadlock_timeout = '10s'")
            .execute(&mut other)
            .await
            .expect("begins");
        sqlx::query("SELECT order_no FROM orders WHERE order_no = 'ERASE-B' FOR UPDATE")
            .fetch_one(&mut other)
            .await
            .expect("locks the second order");

        let erasure = async {
            if purge {
                let retention = Retention {
                    customer_data: Some(Duration::from_secs(1)),
                    ..Retention::default()
                };
                store.purge(&retention, now_ms()).await
            } else {
                store.forget_customer(email, "test").await
            }
        };
        let other_side = async {
            // Once the erasure, holding the first order, waits for the second, this side
            // asks for the first: a deadlock.
            let mut watch = AnyConnection::connect(&db.url).await.expect("connects");
            let mut waiting = 0_i64;
            for _ in 0..200 {
                waiting = sqlx::query(
                    "SELECT COUNT(*) AS n FROM pg_stat_activity
                      WHERE datname = current_database() AND wait_event_type = 'Lock'",
                )
                .fetch_one(&mut watch)
                .await
                .expect("read")
                .try_get("n")
                .expect("n");
                if waiting > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(waiting, 1, "the erasure waits for the second order");
            let got =
                sqlx::query("SELECT order_no FROM orders WHERE order_no = 'ERASE-A' FOR UPDATE")
                    .fetch_one(&mut other)
                    .await
                    .map(|_| ());
            sqlx::raw_sql("ROLLBACK")
                .execute(&mut other)
                .await
                .expect("rolls back");
            got
        };
        let (erased, got) = tokio::join!(erasure, other_side);
        got.expect("the other transaction got the first order once the erasure was ended");
        let erased = erased.expect("the erasure is done again after the deadlock");
        assert_eq!(erased.customers, 2, "purge {purge}: {erased}");
        let left: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM orders WHERE customer_email IS NOT NULL OR customer_name IS NOT NULL",
        )
        .fetch_one(&mut other)
        .await
        .expect("counted")
        .try_get("n")
        .expect("n");
        assert_eq!(left, 0, "purge {purge}: no customer data is left");
        // The deadlock did happen, or this test shows nothing. A server process reports its
        // counts when it ends at the latest: close the store's connections first.
        store.close().await;
        let after = deadlocks_after(&mut other, before).await;
        assert_eq!(after, before + 1, "purge {purge}: one deadlock");
    }
}

/// A `resend --to` under way when its address is forgotten, then given back unfinished (a
/// shutdown's grace ran out, its order could not be read): given back, it keeps no address,
/// and its next claim carries the mark that cancels it there.
async fn a_resend_given_back_after_its_address_was_forgotten_keeps_no_address(backend: Backend) {
    let Some(db) = test_db(backend).await else {
        return;
    };
    let store = migrated_store(&db.url).await;
    let (event, receipt) = esim_courier_tests::received(SAMPLE_COMPLETED);
    store
        .intake(receipt, &event, |_, _| Vec::new().into())
        .await
        .expect("recorded");
    let customer = esim_courier_tests::customer("ana@traveller.example");
    store
        .register_customer(&event.order_no, &customer)
        .await
        .expect("registered");
    let bob = EmailAddress::parse("bob@traveller.example").expect("an address");
    store
        .resend(
            event.order_no.as_str(),
            &["customer".to_owned()],
            Some(&bob),
            "ops",
        )
        .await
        .expect("queued")
        .expect("a re-send");
    let claimed = store.claim("worker-a", 60_000, 10).await.expect("claims");
    assert_eq!(claimed.len(), 1);
    assert!(claimed[0].recipient.is_some() && claimed[0].customer_erased_at.is_none());

    let erased = store
        .forget_customer("Bob@traveller.example", "dpo")
        .await
        .expect("erased");
    assert_eq!(erased.under_way, 1, "{erased}");
    assert!(store.job_release(&claimed[0]).await.expect("given back"));
    let recipient: Option<String> = sqlx::query("SELECT recipient FROM outbox_jobs WHERE id = $1")
        .bind(claimed[0].id)
        .fetch_one(&*store_pool(&db.url).await)
        .await
        .expect("the job")
        .try_get("recipient")
        .expect("recipient");
    assert_eq!(recipient, None, "given back without the address");
    let again = store.claim("worker-b", 60_000, 10).await.expect("claims");
    assert_eq!(again.len(), 1);
    assert!(
        again[0].customer_erased_at.is_some(),
        "claimed with its mark"
    );
    assert!(store.job_cancel_erased(&again[0]).await.expect("cancelled"));
    store.close().await;
}

/// A pool on `url`, for reading what the store wrote.
async fn store_pool(url: &str) -> std::sync::Arc<sqlx::AnyPool> {
    sqlx::any::install_default_drivers();
    std::sync::Arc::new(
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .expect("connects"),
    )
}
