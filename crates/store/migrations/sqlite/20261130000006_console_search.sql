-- What the console's order list pages and searches by: newest first (keyset on created_at,
-- order_no), an ICCID (exact or prefix), a customer's address (exact, any case).
CREATE INDEX orders_created ON orders (created_at, order_no);
CREATE INDEX order_events_iccid ON order_events (iccid);
CREATE INDEX orders_customer_email ON orders (lower(customer_email));
