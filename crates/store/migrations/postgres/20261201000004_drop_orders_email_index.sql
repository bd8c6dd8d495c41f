-- no-transaction
-- Replaced by the partial index of 20261201000003. A statement of its own: a concurrent
-- index change cannot share its migration with another statement.
DROP INDEX CONCURRENTLY IF EXISTS orders_customer_email_index;
