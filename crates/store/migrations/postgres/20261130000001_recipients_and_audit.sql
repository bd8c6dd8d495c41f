-- Where each delivery attempt went: the customer's address for an activation email (read
-- when the job was claimed), NULL for operator channels and for attempts recorded before
-- this migration.
ALTER TABLE delivery_attempts ADD COLUMN recipient TEXT;

-- A job addressed to someone other than the order's registered customer (`resend --to`).
ALTER TABLE outbox_jobs ADD COLUMN recipient TEXT;

-- Operator actions, from the CLI now and from the console and data-protection commands
-- later: who, when, what, on which order.
CREATE TABLE audit_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT  NOT NULL,              -- Unix milliseconds
    actor     TEXT    NOT NULL,              -- --by NAME, or the OS user
    action    TEXT    NOT NULL,              -- resend | dead_letter_retry | ...
    order_no  TEXT,
    detail    TEXT    NOT NULL               -- one sentence; addresses masked
);
CREATE INDEX audit_log_order_no ON audit_log (order_no);
