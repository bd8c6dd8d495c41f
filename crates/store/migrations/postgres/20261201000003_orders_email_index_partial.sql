-- no-transaction
-- Orders by their customer's keyed email digest (the console's search, an erasure by
-- address): only an order whose customer registered has one. The index of 20261130000007
-- took an entry for every order, a NULL for each one that the provider's webhook makes
-- first, in the intake's statement; this one takes entries only for the digests it is
-- searched by (`customer_email_index = $1` implies `IS NOT NULL`, so every such read can
-- use it, with a generic plan too). CONCURRENTLY, so the webhooks are not held up while it
-- is built; 20261201000004 drops the former index.
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_email_known
    ON orders (customer_email_index) WHERE customer_email_index IS NOT NULL;
