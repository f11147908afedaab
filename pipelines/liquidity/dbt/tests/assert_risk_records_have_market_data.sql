-- A risk record without market data has no tier worth reporting.
select
    as_of_date,
    source_system,
    position_id
from {{ ref('mart_liquidity_risk') }}
where mid_price is null or avg_daily_volume is null or haircut_class is null
