//! Encryption at rest through the real app: each stored value is bound to its own row.

use esim_courier_store::StoreError;
use esim_courier_tests::{on_both_backends, spawn_app, AppOptions, Backend, SAMPLE_COMPLETED};
use serde_json::json;
use sqlx::Row;

on_both_backends!(a_value_copied_into_another_row_does_not_decrypt);

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
