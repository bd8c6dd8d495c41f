-- Reconciliation: where each event came from, and the provider rate limit shared by replicas.

-- How each receipt and event reached us: `webhook` (the provider's POST) or `reconciliation`
-- (a lookup at the provider's order API, whose raw record is the receipt's body). Rows from
-- before this migration all came by webhook.
ALTER TABLE webhook_receipts ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE order_events ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook';

-- The provider's rate limit for the whole deployment: every replica takes its turn for a
-- call to the provider's order API by moving `next_at` (Unix ms) on by one interval.
CREATE TABLE provider_gate (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    next_at  INTEGER NOT NULL
);
INSERT INTO provider_gate (id, next_at) VALUES (1, 0);
