{{ config(partition_by=['as_of_date', 'source_system']) }}

with loans as (
    select
        'LOANS' as source_system,
        *
    from {{ ref('stg_positions_loans') }}
    where {{ lakehouse.interval_filter('as_of_date') }}
),

deposits as (
    select
        'DEPOSITS' as source_system,
        *
    from {{ ref('stg_positions_deposits') }}
    where {{ lakehouse.interval_filter('as_of_date') }}
),

positions as (
    select * from loans
    union all
    select * from deposits
),

instruments as (
    select
        instrument_id,
        asset_class
    from {{ ref('instrument_reference') }}
),

currencies as (
    select
        currency_code,
        usd_rate
    from {{ ref('currencies') }}
),

final as (
    select
        -- grain
        positions.as_of_date,
        positions.source_system,
        positions.position_id,

        -- ids
        positions.portfolio_id,
        positions.instrument_id,
        instruments.asset_class,

        -- amounts
        positions.currency,
        positions.notional_amount,
        cast(round(positions.notional_amount * currencies.usd_rate, 2) as decimal(18, 2)) as notional_usd,
        positions.interest_rate,

        -- dates
        positions.maturity_date,
        {{ lakehouse.days_between('positions.as_of_date', 'positions.maturity_date') }} as days_to_maturity
    from positions
    left join instruments on positions.instrument_id = instruments.instrument_id
    left join currencies on positions.currency = currencies.currency_code
)

select * from final
