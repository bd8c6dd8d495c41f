-- no-transaction
-- Pending and waiting jobs in due order, for the claim (outbox.rs, ClaimRequest::sql): it
-- reads only the due jobs it leases, however many done jobs or future retries the table
-- holds. CONCURRENTLY, outside a transaction, so that building it on a large table does not
-- hold up the webhooks being written meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_jobs_due_pending
    ON outbox_jobs (next_attempt_at) WHERE state IN ('pending', 'waiting');
