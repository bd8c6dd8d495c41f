-- How many of an order's events count for the intake's rules (every event but those set
-- aside as `unverified`). Kept in the same transaction as the events, under the order's row
-- lock; zero means the next delivery is the order's first result. PostgreSQL's intake
-- records such a delivery in one statement (crates/store/src/intake.rs, FIRST_EVENT_PG).
ALTER TABLE orders ADD COLUMN recorded_events INTEGER NOT NULL DEFAULT 0;
UPDATE orders SET recorded_events = (
    SELECT COUNT(*) FROM order_events e
     WHERE e.order_no = orders.order_no AND e.disposition <> 'unverified');
