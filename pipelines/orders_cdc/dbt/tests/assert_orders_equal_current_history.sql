-- The current state and the history agree: orders holds exactly the current, not deleted versions.
{%- set history = ref('orders_history_scd2') -%}
{%- set current_state = ref('orders') -%}
{%- set columns = staged_order_columns(ref('stg_ecomm_audit_log_dml_orders_flattened')) | map(attribute=0) | list
    or ['order_id'] %}

with current_versions as (
    select {{ columns | join(', ') }} from {{ history }}
    where is_current and not is_deleted
),

current_state as (
    select {{ columns | join(', ') }} from {{ current_state }}
),

only_in_history as (
    select * from current_versions
    except
    select * from current_state
),

only_in_orders as (
    select * from current_state
    except
    select * from current_versions
)

select
    'only in history' as side,
    *
from only_in_history
union all
select
    'only in orders' as side,
    *
from only_in_orders
