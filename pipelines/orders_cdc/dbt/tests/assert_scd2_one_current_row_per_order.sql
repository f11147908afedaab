-- Every order in the history has exactly one current version.
select
    order_id,
    sum(case when is_current then 1 else 0 end) as current_versions
from {{ ref('orders_history_scd2') }}
group by order_id
having sum(case when is_current then 1 else 0 end) <> 1
