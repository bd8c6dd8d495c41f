-- Every delivery of the provider's webhook, as received (the audit trail).
CREATE TABLE webhook_receipts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at  BIGINT  NOT NULL,           -- Unix milliseconds
    remote_addr  TEXT,
    order_no     TEXT,
    outcome      TEXT    NOT NULL,           -- accepted | duplicate | conflict | quarantined
    http_status  BIGINT  NOT NULL,
    reason       TEXT,                       -- why it was quarantined
    body         BYTEA   NOT NULL            -- the raw body, unknown fields included
);
CREATE INDEX webhook_receipts_order_no ON webhook_receipts (order_no);

-- One row per order: what the provider said last, and the customer the shop registered.
CREATE TABLE orders (
    order_no         TEXT PRIMARY KEY,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    state            TEXT    NOT NULL,       -- awaiting_webhook | COMPLETED | FAILED | <other result>
    customer_email   TEXT,
    customer_name    TEXT,
    customer_locale  TEXT,
    retail_price     TEXT,
    retail_currency  TEXT,
    registered_at    BIGINT
);

-- Each distinct event of an order. Provider retries hit the unique fingerprint.
CREATE TABLE order_events (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_no      TEXT    NOT NULL REFERENCES orders (order_no),
    receipt_id    BIGINT  NOT NULL REFERENCES webhook_receipts (id),
    received_at   BIGINT  NOT NULL,
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
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key        TEXT    NOT NULL UNIQUE,
    notifier         TEXT    NOT NULL,
    kind             TEXT    NOT NULL,       -- order_completed | order_failed | alert
    order_no         TEXT,
    event_id         BIGINT  REFERENCES order_events (id),
    payload          TEXT,                   -- the alert, as JSON
    state            TEXT    NOT NULL,       -- pending | waiting | in_flight | done | dead
    attempts         BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    next_attempt_at  BIGINT  NOT NULL,
    locked_until     BIGINT,
    locked_by        TEXT,
    last_error       TEXT,
    customer_alerted BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX outbox_jobs_due ON outbox_jobs (state, next_attempt_at);
CREATE INDEX outbox_jobs_order_no ON outbox_jobs (order_no);

-- Every delivery attempt: when, outcome, error, the channel's receipt.
CREATE TABLE delivery_attempts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id       BIGINT  NOT NULL REFERENCES outbox_jobs (id),
    attempt      BIGINT  NOT NULL,
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT  NOT NULL,
    outcome      TEXT    NOT NULL,           -- delivered | transient | permanent | resend
    error        TEXT,
    receipt      TEXT,
    worker       TEXT    NOT NULL
);
CREATE INDEX delivery_attempts_job_id ON delivery_attempts (job_id);
