{#- Loans and deposits arrive in the same extract layout from two systems: one validation and one
    staging step serve both (rules: pipelines/liquidity/README.md). -#}

{% macro validate_positions(source_relation) %}
{%- set columns = [
    'position_id', 'portfolio_id', 'instrument_id', 'notional_cents', 'currency', 'maturity_date',
    'interest_rate', 'as_of_date', 'extracted_at', '_batch_date', '_source_row', '_ingested_at',
] -%}
with source as (
    select * from {{ source_relation }}
),

instruments as (
    select instrument_id from {{ ref('instrument_reference') }}
),

currencies as (
    select currency_code from {{ ref('currencies') }}
),

checked as (
    select
        source.*,
        case
            when {{ lakehouse.is_blank('source.position_id') }} then 'missing position_id'
            when {{ lakehouse.is_blank('source.portfolio_id') }} then 'missing portfolio_id'
            when {{ lakehouse.is_blank('source.instrument_id') }} then 'missing instrument_id'
            when instruments.instrument_id is null then 'unknown instrument_id'
            when {{ lakehouse.parse_date('source.as_of_date') }} is null then 'unparsable as_of_date'
            when {{ lakehouse.parse_date('source.maturity_date') }} is null then 'unparsable maturity_date'
            when not {{ lakehouse.is_integer_text('source.notional_cents') }} then 'non-numeric notional_cents'
            when cast(source.notional_cents as decimal(20, 0)) < 0 then 'negative notional_cents'
            when currencies.currency_code is null then 'unknown currency'
            when not {{ lakehouse.is_decimal_text('source.interest_rate') }} then 'non-numeric interest_rate'
        end as invalid_reason
    from source
    left join instruments on source.instrument_id = instruments.instrument_id
    left join currencies on source.currency = currencies.currency_code
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['position_id', 'as_of_date'],
    latest_first=['try_cast(extracted_at as timestamp) desc nulls last', '_batch_date desc', '_source_row desc'],
    duplicate_reason='duplicate position_id: superseded by a later record',
) }}

select * from judged
{% endmacro %}


{% macro stage_positions(validated_relation) %}
with validated as (
    select * from {{ validated_relation }}
    where rejection_reason is null
      and {{ lakehouse.interval_filter('_batch_date') }}
),

renamed as (
    select
        -- ids
        position_id,
        portfolio_id,
        instrument_id,

        -- amounts
        {{ lakehouse.cents_to_units('notional_cents') }} as notional_amount,
        currency,
        cast(interest_rate as decimal(9, 6)) as interest_rate,

        -- dates
        {{ lakehouse.parse_date('as_of_date') }} as as_of_date,
        {{ lakehouse.parse_date('maturity_date') }} as maturity_date,
        cast(extracted_at as timestamp) as extracted_at,

        -- lineage
        _batch_date
    from validated
)

select * from renamed
{% endmacro %}
