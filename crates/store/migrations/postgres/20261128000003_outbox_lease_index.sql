-- no-transaction
-- In-flight jobs by lease end, for the claim's expired leases (see the previous migration).
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_jobs_lease_end
    ON outbox_jobs (locked_until) WHERE state = 'in_flight';
