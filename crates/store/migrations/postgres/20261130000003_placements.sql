-- Orders esim-courier places with the provider (POST /api/v1/placements).
--
-- One row per caller's reference, which is also the provider's idempotentKey: the same
-- reference never places a second order. The customer waits here, in the same columns as an
-- order's, until the provider's order number binds it to that order as a registration does.
CREATE TABLE placements (
    reference        TEXT PRIMARY KEY,
    package_code     TEXT    NOT NULL,
    customer_email   TEXT    NOT NULL,
    customer_name    TEXT,
    customer_locale  TEXT,
    retail_price     TEXT,
    retail_currency  TEXT,
    status           TEXT    NOT NULL,           -- placing | placed | failed
    order_no         TEXT,                       -- the provider's, once placed
    error            TEXT,                       -- why it failed, in the provider's words
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX placements_order_no ON placements (order_no);
