-- 30-day contractual cash-flow ladder per portfolio: pipelines/liquidity/README.md.
with positions as (
    select * from {{ ref('mart_positions') }}
    where {{ lakehouse.interval_filter('as_of_date') }}
),

horizon as (
    {{ lakehouse.integer_series(1, 30, 'day_offset') }}
),

portfolio_days as (
    select
        portfolios.as_of_date,
        portfolios.portfolio_id,
        horizon.day_offset,
        {{ lakehouse.add_days('portfolios.as_of_date', 'horizon.day_offset') }} as forecast_date
    from (
        select distinct
            as_of_date,
            portfolio_id
        from positions
    ) as portfolios
    cross join horizon
),

maturing as (
    select
        as_of_date,
        portfolio_id,
        days_to_maturity as day_offset,
        source_system,
        cast(round(notional_usd * (1 + interest_rate * days_to_maturity / 360), 2) as decimal(18, 2)) as flow_usd
    from positions
    where days_to_maturity between 1 and 30
),

daily as (
    select
        as_of_date,
        portfolio_id,
        day_offset,
        sum(case when source_system = 'LOANS' then flow_usd else 0 end) as inflow_usd,
        sum(case when source_system = 'DEPOSITS' then flow_usd else 0 end) as outflow_usd
    from maturing
    group by as_of_date, portfolio_id, day_offset
),

ladder as (
    select
        portfolio_days.as_of_date,
        portfolio_days.portfolio_id,
        portfolio_days.forecast_date,
        portfolio_days.day_offset,
        cast(coalesce(daily.inflow_usd, 0) as decimal(18, 2)) as inflow_usd,
        cast(coalesce(daily.outflow_usd, 0) as decimal(18, 2)) as outflow_usd
    from portfolio_days
    left join daily
        on portfolio_days.as_of_date = daily.as_of_date
        and portfolio_days.portfolio_id = daily.portfolio_id
        and portfolio_days.day_offset = daily.day_offset
)

select
    *,
    cast(inflow_usd - outflow_usd as decimal(18, 2)) as net_flow_usd,
    cast(sum(inflow_usd - outflow_usd) over (
        partition by as_of_date, portfolio_id
        order by day_offset
        rows between unbounded preceding and current row
    ) as decimal(18, 2)) as cumulative_net_flow_usd
from ladder
