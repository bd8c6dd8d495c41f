-- no-transaction
-- Every outbox job is written three times (written, claimed, delivered) and, as the state is
-- part of the key, each write added an entry to this index. Nothing reads it any more: the
-- claim and the dispatcher's wake-up read the partial indexes of due jobs and leases
-- (20261128000002 and 3), dead letters have theirs (20261201000001). SQLite keeps it: its
-- claim reads it. CONCURRENTLY, so that the webhooks being written are not held up.
DROP INDEX CONCURRENTLY IF EXISTS outbox_jobs_due;
