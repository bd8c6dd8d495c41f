-- When a job's retry budget began (Unix ms), if not at its creation: the registration that
-- released a job waiting for its customer, or an operator's retry of a dead letter. A
-- delivery retries for `retry.max_age` from here; counted from the job's creation, an
-- activation email registered for a day after its webhook, or a dead letter retried after a
-- weekend, was given up at its first transient failure. NULL: from `created_at`. A nullable
-- column without a default: added without rewriting the table.
ALTER TABLE outbox_jobs ADD COLUMN retry_from BIGINT;
