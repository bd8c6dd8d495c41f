-- Retention and erasure (crates/store/src/retention.rs).

-- What is left of an erased activation code: the masked form operators see
-- (`LPA:1$smdp.example.com$***********1B6Q`), never usable.
ALTER TABLE order_events ADD COLUMN lpa_masked TEXT;
-- When the receipt's body was redacted (its sealed body then says so instead).
ALTER TABLE webhook_receipts ADD COLUMN redacted_at BIGINT;
-- When the order's customer data was erased (by retention or `customers forget`).
ALTER TABLE orders ADD COLUMN customer_erased_at BIGINT;
