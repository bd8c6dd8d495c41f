-- no-transaction
-- Dead letters, newest first (the console's and the CLI's list, their count, `retry-dead`):
-- the reads by state that the (state, next_attempt_at) index of the first migration served
-- besides the claim. Partial, so it gets an entry only when a job dies, not at each of the
-- three writes of every job (see 20261201000002). CONCURRENTLY, outside a transaction, so
-- that building it on a large table does not hold up the webhooks being written meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS outbox_jobs_dead
    ON outbox_jobs (updated_at) WHERE state = 'dead';
