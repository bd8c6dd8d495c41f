-- Encryption at rest (crates/store/src/crypto.rs). Activation codes, receipt bodies,
-- customers' addresses and names, and recipients are stored sealed; a database from before
-- this migration holds them in plaintext until the first start encrypts them
-- (`encryption_state.upgraded`).

-- The blind index of a customer's address (HMAC-SHA256 under the index key): search and
-- erasure find a customer by it, never by the address.
ALTER TABLE orders ADD COLUMN customer_email_index TEXT;
DROP INDEX orders_customer_email;
CREATE INDEX orders_customer_email_index ON orders (customer_email_index);
ALTER TABLE placements ADD COLUMN customer_email_index TEXT;
CREATE INDEX placements_customer_email_index ON placements (customer_email_index);

-- `index_check`: a keyed hash of a fixed text under the index key the blind indexes were
-- made with (a start with another index key is refused). `upgraded`: whether every value
-- written before encryption has been sealed.
CREATE TABLE encryption_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    index_check  TEXT,
    upgraded     INTEGER NOT NULL
);
INSERT INTO encryption_state (id, index_check, upgraded) VALUES (1, NULL, 0);

-- Every key id that may have sealed a stored value: each process adds its active key when it
-- starts; `keys rotate` removes a key once no value needs it. A start without one of these
-- keys is refused, naming it. `key_check`: a fixed text the key sealed when first used; a
-- start with other key material under that id is refused.
CREATE TABLE encryption_keys (
    key_id      TEXT PRIMARY KEY,
    key_check   TEXT,
    first_used  INTEGER NOT NULL
);
