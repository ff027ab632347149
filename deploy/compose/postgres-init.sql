-- Run once by the postgres image when its volume is new (/docker-entrypoint-initdb.d).
-- The table the `orders` stream loads; Hydrant never creates destination tables.
CREATE TABLE IF NOT EXISTS public.orders (
    id       bigint PRIMARY KEY,
    customer text NOT NULL,
    amount   numeric(12, 2)
);
