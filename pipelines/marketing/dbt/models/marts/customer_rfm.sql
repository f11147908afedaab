{#- One row per customer of the shop (erased customers are gone with their orders): recency,
    frequency and monetary value as of the run's day, the features the segmentation clusters on.
    recency_days: days from the last order to the as-of day; frequency: orders placed; monetary:
    revenue of the orders not returned (quantity x price paid). The as-of day is the run's
    data_interval_start, or the day of the latest order when dbt runs without one. -#}
{%- set as_of = var('data_interval_start', none) -%}

with orders as (
    select
        orders.order_id,
        orders.customer_id,
        orders.status,
        cast(orders.ordered_at as date) as order_date,
        sum(items.quantity * items.unit_price) as order_value
    from {{ ref('stg_shop_orders') }} as orders
    inner join {{ ref('stg_shop_order_items') }} as items on orders.order_id = items.order_id
    group by orders.order_id, orders.customer_id, orders.status, cast(orders.ordered_at as date)
),

per_customer as (
    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as last_order_date,
        count(*) as frequency,
        sum(case when status = 'returned' then 0 else order_value end) as monetary
    from orders
    group by customer_id
),

as_of as (
    {% if as_of -%}
        select cast('{{ as_of[:10] }}' as date) as as_of_date
    {%- else -%}
        select max(order_date) as as_of_date from orders
    {%- endif %}
)

select
    customers.customer_id,
    customers.country,
    cast(customers.signed_up_at as date) as signed_up_on,
    per_customer.first_order_date,
    per_customer.last_order_date,
    as_of.as_of_date,
    {{ dbt.datediff('per_customer.last_order_date', 'as_of.as_of_date', 'day') }} as recency_days,
    coalesce(per_customer.frequency, 0) as frequency,
    cast(coalesce(per_customer.monetary, 0) as decimal(18, 2)) as monetary
from {{ ref('stg_shop_customers') }} as customers
cross join as_of
left join per_customer on customers.customer_id = per_customer.customer_id
