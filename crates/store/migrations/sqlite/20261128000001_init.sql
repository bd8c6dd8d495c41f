-- Every delivery of the provider's webhook, as received (the audit trail).
CREATE TABLE webhook_receipts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at  INTEGER NOT NULL,           -- Unix milliseconds
    remote_addr  TEXT,
    order_no     TEXT,
    outcome      TEXT    NOT NULL,           -- accepted | duplicate | conflict | quarantined
    http_status  INTEGER NOT NULL,
    reason       TEXT,                       -- why it was quarantined
    body         BLOB    NOT NULL            -- the raw body, unknown fields included
);
CREATE INDEX webhook_receipts_order_no ON webhook_receipts (order_no);

-- One row per order: what the provider said last, and the customer the shop registered.
CREATE TABLE orders (
    order_no         TEXT PRIMARY KEY,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    state            TEXT    NOT NULL,       -- awaiting_webhook | COMPLETED | FAILED | <other result>
    customer_email   TEXT,
    customer_name    TEXT,
    customer_locale  TEXT,
    retail_price     TEXT,
    retail_currency  TEXT,
    registered_at    INTEGER
);

-- Each distinct event of an order. Provider retries hit the unique fingerprint.
CREATE TABLE order_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    order_no      TEXT    NOT NULL REFERENCES orders (order_no),
    receipt_id    INTEGER NOT NULL REFERENCES webhook_receipts (id),
    received_at   INTEGER NOT NULL,
    result        TEXT    NOT NULL,
    disposition   TEXT    NOT NULL,          -- accepted | conflict
    fingerprint   TEXT    NOT NULL,
    iccid         TEXT    NOT NULL,
    lpa           TEXT,                      -- the usable activation code (a secret)
    package_code  TEXT,
    package_name  TEXT,
    currency      TEXT,
    price         TEXT,
    warnings      TEXT    NOT NULL,          -- JSON array of strings
    UNIQUE (order_no, fingerprint)
);

-- The transactional outbox: one job per (event, notifier), written with the event.
CREATE TABLE outbox_jobs (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key        TEXT    NOT NULL UNIQUE,
    notifier         TEXT    NOT NULL,
    kind             TEXT    NOT NULL,       -- order_completed | order_failed | alert
    order_no         TEXT,
    event_id         INTEGER REFERENCES order_events (id),
    payload          TEXT,                   -- the alert, as JSON
    state            TEXT    NOT NULL,       -- pending | waiting | in_flight | done | dead
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    locked_until     INTEGER,
    locked_by        TEXT,
    last_error       TEXT,
    customer_alerted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_jobs_due ON outbox_jobs (state, next_attempt_at);
CREATE INDEX outbox_jobs_order_no ON outbox_jobs (order_no);

-- Every delivery attempt: when, outcome, error, the channel's receipt.
CREATE TABLE delivery_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id       INTEGER NOT NULL REFERENCES outbox_jobs (id),
    attempt      INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,           -- delivered | transient | permanent | resend
    error        TEXT,
    receipt      TEXT,
    worker       TEXT    NOT NULL
);
CREATE INDEX delivery_attempts_job_id ON delivery_attempts (job_id);
