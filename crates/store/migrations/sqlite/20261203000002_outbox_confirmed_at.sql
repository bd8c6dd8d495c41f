-- When the provider's order API confirmed the webhook of an activation email (Unix ms), with
-- `[reconcile] verify_webhooks`. The rounds it waited for that used the job's attempts as
-- their clock; from the confirmation on, the delivery gets its own attempts and `max_age`
-- (the job's attempts restart and `retry_from` is set), and a later attempt does not ask the
-- provider again. Without it, an email confirmed after a few hours of provider lag was given
-- up at its first transient failure. NULL: not confirmed (or not verified at all). A nullable
-- column without a default: added without rewriting the table.
ALTER TABLE outbox_jobs ADD COLUMN confirmed_at BIGINT;
