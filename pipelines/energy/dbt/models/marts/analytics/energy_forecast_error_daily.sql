-- The demand model against metered actuals per reading date and segment, over the (region, hour)
-- cells that have both. Replaces the dates a run touched.
with cells as (
    select
        reading_date,
        segment,
        metered_kwh,
        forecast_kwh
    from {{ ref('demand_price_elasticity') }}
    where forecast_kwh is not null and metered_kwh > 0
        and reading_date in (select reading_date from ({{ changed_reading_dates() }}) as changed)
)

select
    reading_date,
    segment,
    cast(count(*) as bigint) as cells,
    sum(metered_kwh) as metered_kwh,
    sum(forecast_kwh) as forecast_kwh,
    avg(abs(forecast_kwh - metered_kwh)) as mae_kwh,
    sqrt(avg((forecast_kwh - metered_kwh) * (forecast_kwh - metered_kwh))) as rmse_kwh,
    100 * avg(abs(forecast_kwh - metered_kwh) / metered_kwh) as mape_pct,
    100 * sum(abs(forecast_kwh - metered_kwh)) / sum(metered_kwh) as wape_pct,
    100 * (sum(forecast_kwh) - sum(metered_kwh)) / sum(metered_kwh) as bias_pct
from cells
group by reading_date, segment
