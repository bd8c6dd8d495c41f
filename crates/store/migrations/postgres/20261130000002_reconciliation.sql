-- How each receipt and event reached us: `webhook` (the provider's POST) or `reconciliation`
-- (a lookup at the provider's order API, whose raw record is the receipt's body). Rows from
-- before this migration all came by webhook.
ALTER TABLE webhook_receipts ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook';
ALTER TABLE order_events ADD COLUMN source TEXT NOT NULL DEFAULT 'webhook';
