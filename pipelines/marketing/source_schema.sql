-- The shop's operational database: schema `shop` (customers, products, orders, order items), read by
-- the sql_database ingest (incremental on updated_at, deletes detected by key), and schema `crm`,
-- where the reverse ETL writes the customer segments back. Idempotent: applied before every ingest.
-- Comments are part of the schema: `lakehouse codegen` turns them into the dbt sources' descriptions.

SELECT pg_advisory_xact_lock(hashtext('lakehouse.marketing_schema'));  -- concurrent appliers take turns

CREATE SCHEMA IF NOT EXISTS shop;
CREATE SCHEMA IF NOT EXISTS crm;

CREATE TABLE IF NOT EXISTS shop.customers (
    customer_id  bigint      PRIMARY KEY,
    email        text        NOT NULL,
    first_name   text        NOT NULL,
    last_name    text        NOT NULL,
    country      char(2)     NOT NULL,
    signed_up_at timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
COMMENT ON TABLE shop.customers IS 'People with a shop account; erased on request (GDPR), so rows are deleted.';
COMMENT ON COLUMN shop.customers.customer_id IS 'The customer''s id, never reused.';
COMMENT ON COLUMN shop.customers.email IS 'Login e-mail address (personal data).';
COMMENT ON COLUMN shop.customers.first_name IS 'Given name (personal data).';
COMMENT ON COLUMN shop.customers.last_name IS 'Family name (personal data).';
COMMENT ON COLUMN shop.customers.country IS 'ISO 3166-1 alpha-2 country of the billing address.';
COMMENT ON COLUMN shop.customers.signed_up_at IS 'When the account was created.';
COMMENT ON COLUMN shop.customers.updated_at IS 'Last change of the row; the incremental cursor.';

CREATE TABLE IF NOT EXISTS shop.products (
    product_id bigint        PRIMARY KEY,
    sku        text          NOT NULL UNIQUE,
    name       text          NOT NULL,
    category   text          NOT NULL,
    price      numeric(10,2) NOT NULL CHECK (price >= 0),
    updated_at timestamptz   NOT NULL
);
COMMENT ON TABLE shop.products IS 'The catalogue; prices change over time (the order item keeps the price paid).';
COMMENT ON COLUMN shop.products.product_id IS 'The product''s id.';
COMMENT ON COLUMN shop.products.sku IS 'Stock keeping unit, unique.';
COMMENT ON COLUMN shop.products.name IS 'Display name.';
COMMENT ON COLUMN shop.products.category IS 'Catalogue category.';
COMMENT ON COLUMN shop.products.price IS 'Current list price in EUR.';
COMMENT ON COLUMN shop.products.updated_at IS 'Last change of the row; the incremental cursor.';

CREATE TABLE IF NOT EXISTS shop.orders (
    order_id    bigint      PRIMARY KEY,
    customer_id bigint      NOT NULL REFERENCES shop.customers ON DELETE CASCADE,
    status      text        NOT NULL CHECK (status IN ('placed', 'shipped', 'delivered', 'returned')),
    ordered_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
COMMENT ON TABLE shop.orders IS 'One row per order; a returned order earns no revenue.';
COMMENT ON COLUMN shop.orders.order_id IS 'The order''s id.';
COMMENT ON COLUMN shop.orders.customer_id IS 'Who ordered (shop.customers).';
COMMENT ON COLUMN shop.orders.status IS 'placed, shipped, delivered or returned.';
COMMENT ON COLUMN shop.orders.ordered_at IS 'When the order was placed.';
COMMENT ON COLUMN shop.orders.updated_at IS 'Last change of the row; the incremental cursor.';

CREATE TABLE IF NOT EXISTS shop.order_items (
    order_item_id bigint        PRIMARY KEY,
    order_id      bigint        NOT NULL REFERENCES shop.orders ON DELETE CASCADE,
    product_id    bigint        NOT NULL REFERENCES shop.products,
    quantity      integer       NOT NULL CHECK (quantity > 0),
    unit_price    numeric(10,2) NOT NULL,
    updated_at    timestamptz   NOT NULL
);
COMMENT ON TABLE shop.order_items IS 'The lines of an order, at the price paid.';
COMMENT ON COLUMN shop.order_items.order_item_id IS 'The line''s id.';
COMMENT ON COLUMN shop.order_items.order_id IS 'Its order (shop.orders).';
COMMENT ON COLUMN shop.order_items.product_id IS 'The product (shop.products).';
COMMENT ON COLUMN shop.order_items.quantity IS 'Units ordered.';
COMMENT ON COLUMN shop.order_items.unit_price IS 'Price paid per unit in EUR.';
COMMENT ON COLUMN shop.order_items.updated_at IS 'Last change of the row; the incremental cursor.';

-- Which simulated days the demo generator has written (pipelines/marketing/generator.py): a day is
-- generated once, so a rerun of the same day finds nothing new to ingest. Outside `shop`: it is the
-- demo's bookkeeping, not the shop's data, and the ingest copies every table of `shop`.
CREATE TABLE IF NOT EXISTS public.marketing_simulated_days (
    day          date PRIMARY KEY,
    generated_at timestamptz NOT NULL DEFAULT now()
);

-- The roles the marts' `grants` name (dbt's grants config, applied by the PostgreSQL deliveries):
-- the CRM reads the synced segments as crm_reader, dashboards read the ad performance as bi_reader.
-- No login: a person or a service is given one of them (GRANT crm_reader TO ...). USAGE on the
-- schemas lets them see the tables they are granted; nothing else is granted here.
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'crm_reader') THEN
        CREATE ROLE crm_reader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bi_reader') THEN
        CREATE ROLE bi_reader NOLOGIN;
    END IF;
END $$;
CREATE SCHEMA IF NOT EXISTS analytics;
GRANT USAGE ON SCHEMA crm TO crm_reader;
GRANT USAGE ON SCHEMA analytics TO bi_reader;
