-- Exactly 30 forecast days, 1..30, for every portfolio and as-of date.
select
    as_of_date,
    portfolio_id,
    count(*) as forecast_days
from {{ ref('mart_cashflow_forecast') }}
group by as_of_date, portfolio_id
having count(*) <> 30 or count(distinct forecast_date) <> 30 or min(day_offset) <> 1 or max(day_offset) <> 30
