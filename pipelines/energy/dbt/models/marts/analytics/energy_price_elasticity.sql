{{ config(materialized='table', partition_by=none) }}
-- The price elasticity of demand per segment over all history: the slope of log demand on log price
-- in a panel of (region, hour) cells, with region fixed effects (each region's customer base), hour
-- fixed effects (the hour of day, the day, holidays, whatever all regions share at that hour) and
-- heating degrees (regional weather) controlled for. Estimated by within (two-way demeaned)
-- regression and Frisch-Waugh-Lovell for heating degrees: plain aggregates and regr_slope, the same
-- SQL on DuckDB and Spark. Rules and the reasoning: pipelines/energy/README.md.
with cells as (
    select
        segment,
        region,
        reading_hour,
        reading_date,
        log_demand as y,
        log_price as x,
        heating_degrees as h
    from {{ ref('demand_price_elasticity') }}
    where log_demand is not null and log_price is not null and heating_degrees is not null
),

regions as (
    select
        segment,
        count(distinct region) as n_regions
    from cells
    group by segment
),

hours as (
    select
        segment,
        reading_hour,
        count(*) as n_cells
    from cells
    group by segment, reading_hour
),

-- A balanced panel (every region of the segment in every hour kept), so two-way demeaning is exact.
panel as (
    select cells.*
    from cells
    inner join hours on cells.segment = hours.segment and cells.reading_hour = hours.reading_hour
    inner join regions on cells.segment = regions.segment
    where hours.n_cells = regions.n_regions
),

demeaned as (
    select
        segment,
        (
            y - avg(y) over (partition by segment, region) - avg(y) over (partition by segment, reading_hour)
            + avg(y) over (partition by segment)
        ) as y,
        (
            x - avg(x) over (partition by segment, region) - avg(x) over (partition by segment, reading_hour)
            + avg(x) over (partition by segment)
        ) as x,
        (
            h - avg(h) over (partition by segment, region) - avg(h) over (partition by segment, reading_hour)
            + avg(h) over (partition by segment)
        ) as h
    from panel
),

-- Frisch-Waugh-Lovell: take heating degrees out of both sides (no heating at all: nothing to take out).
on_heating as (
    select
        segment,
        coalesce(regr_slope(y, h), 0) as y_on_h,
        coalesce(regr_slope(x, h), 0) as x_on_h
    from demeaned
    group by segment
),

residuals as (
    select
        demeaned.segment,
        demeaned.y - on_heating.y_on_h * demeaned.h as y,
        demeaned.x - on_heating.x_on_h * demeaned.h as x
    from demeaned
    inner join on_heating on demeaned.segment = on_heating.segment
),

fit as (
    select
        segment,
        regr_slope(y, x) as elasticity,
        sum(x * x) as sxx,
        count(*) as observations
    from residuals
    group by segment
),

errors as (
    select
        residuals.segment,
        sum((residuals.y - fit.elasticity * residuals.x) * (residuals.y - fit.elasticity * residuals.x)) as sse
    from residuals
    inner join fit on residuals.segment = fit.segment
    group by residuals.segment
),

shape as (
    select
        segment,
        count(distinct region) as regions,
        count(distinct reading_hour) as hours,
        min(reading_date) as first_date,
        max(reading_date) as last_date,
        regr_slope(y, x) as naive_elasticity
    from panel
    group by segment
),

final as (
    select
        fit.segment,
        fit.elasticity,
        -- OLS standard error; degrees of freedom: cells - region effects - hour effects + 1 - 2 slopes
        sqrt(errors.sse / (fit.observations - shape.regions - shape.hours - 1) / fit.sxx) as std_error,
        cast(fit.observations as bigint) as observations,
        cast(shape.regions as bigint) as regions,
        cast(shape.hours as bigint) as hours,
        shape.first_date,
        shape.last_date,
        -- the pooled slope without any control, for contrast: prices are high when demand is high anyway
        shape.naive_elasticity
    from fit
    inner join errors on fit.segment = errors.segment
    inner join shape on fit.segment = shape.segment
    where fit.observations > shape.regions + shape.hours + 1
)

select
    segment,
    elasticity,
    std_error,
    elasticity - 1.96 * std_error as ci95_low,
    elasticity + 1.96 * std_error as ci95_high,
    observations,
    regions,
    hours,
    first_date,
    last_date,
    naive_elasticity
from final
