{{ config(partition_by=['week_start']) }}
-- The demand model against metered actuals per ISO week (Monday week_start) and segment, over every
-- (region, hour) cell of the week that has both. Replaces the weeks of the dates a run touched.
with changed_weeks as (
    select distinct week_start
    from {{ ref('demand_price_elasticity') }}
    where reading_date in (select reading_date from ({{ changed_reading_dates() }}) as changed)
),

cells as (
    select
        week_start,
        reading_date,
        segment,
        metered_kwh,
        forecast_kwh
    from {{ ref('demand_price_elasticity') }}
    where forecast_kwh is not null and metered_kwh > 0
        and week_start in (select week_start from changed_weeks)
)

select
    week_start,
    segment,
    cast(count(distinct reading_date) as bigint) as days,
    cast(count(*) as bigint) as cells,
    sum(metered_kwh) as metered_kwh,
    sum(forecast_kwh) as forecast_kwh,
    avg(abs(forecast_kwh - metered_kwh)) as mae_kwh,
    sqrt(avg((forecast_kwh - metered_kwh) * (forecast_kwh - metered_kwh))) as rmse_kwh,
    100 * avg(abs(forecast_kwh - metered_kwh) / metered_kwh) as mape_pct,
    100 * sum(abs(forecast_kwh - metered_kwh)) / sum(metered_kwh) as wape_pct,
    100 * (sum(forecast_kwh) - sum(metered_kwh)) / sum(metered_kwh) as bias_pct
from cells
group by week_start, segment
