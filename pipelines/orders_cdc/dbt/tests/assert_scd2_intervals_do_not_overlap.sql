-- An order's versions, in change_order (the order of its changes), tile time: each ends where the next begins, none
-- ends before it begins, and only the current one is open.
with versions as (
    select
        order_id,
        change_order,
        valid_from,
        valid_to,
        is_current,
        lead(valid_from) over (partition by order_id order by change_order) as next_valid_from
    from {{ ref('orders_history_scd2') }}
)

select *
from versions
where (valid_to is null) <> is_current
    or valid_to < valid_from
    or (next_valid_from is not null and valid_to <> next_valid_from)
