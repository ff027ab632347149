-- Run by the cluster-init service (the `cluster` profile) on every `up`, against the default
-- profile's postgres: the table the cluster's `orders` stream loads, beside public.orders so
-- that the single node and the cluster never load into one table.
CREATE TABLE IF NOT EXISTS public.cluster_orders (
    id       bigint PRIMARY KEY,
    customer text NOT NULL,
    amount   numeric(12, 2)
);
