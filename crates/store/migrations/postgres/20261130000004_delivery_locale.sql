-- The language each activation email was written in (the locale the customer's preferences
-- resolved to), recorded with its delivery and shown by `orders show`.
ALTER TABLE delivery_attempts ADD COLUMN locale TEXT;
