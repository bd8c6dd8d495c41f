-- When the order's customer was erased while this job was being delivered (Unix ms). The
-- delivery's outcome is written after the erasure, and its attempt then keeps no recipient:
-- the finishing statement reads this column from the job row it updates (on PostgreSQL it
-- waits for the erasure's lock on that row), so no address outlives an erasure that ran
-- while an email was under way. NULL: no erasure during a delivery. A nullable column
-- without a default: added without rewriting the table.
ALTER TABLE outbox_jobs ADD COLUMN customer_erased_at BIGINT;
