{#- Validation of every raw row (rules: pipelines/energy/README.md): one macro per source that emits
    the CTEs ending in `judged`, every raw row once with its rejection_reason (NULL: stage it). The
    staging model keeps the rows without a reason, the quarantine model the others:

      with {{ validate_meter_readings() }},
      ...
      select ... from judged where rejection_reason is null

    (Macros rather than ephemeral models: the same SQL without an Airflow task each.) -#}


{#- Every raw meter reading with the reason it cannot be staged (NULL when it can). -#}
{% macro validate_meter_readings() %}
{%- set columns = ['customer_id', 'reading_hour', 'kwh', 'read_at'] + file_lineage_columns() %}

source as (
    select * from {{ source('energy_files', 'energy_meter_readings') }}
),

customers as (
    select customer_id from {{ ref('stg_energy_customers') }}
),

checked as (
    select
        source.*,
        case
            when {{ lakehouse.is_blank('source.customer_id') }} then 'missing customer_id'
            when source.reading_hour is null then 'missing reading_hour'
            when source.kwh is null then 'missing kwh'
            when source.kwh < 0 then 'negative kwh'
            when customers.customer_id is null then 'unknown customer_id'
        end as invalid_reason
    from source
    left join customers on source.customer_id = customers.customer_id
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['customer_id', 'reading_hour'],
    latest_first=['read_at desc nulls last', '_batch_date desc', '_source_file desc', '_source_row desc'],
    duplicate_reason='duplicate reading: superseded by a later one',
) }}
{% endmacro %}

{#- Every raw forecast row with the reason it cannot be staged (NULL when it can). -#}
{% macro validate_demand_forecast() %}
{%- set columns = ['segment', 'region', 'forecast_hour', 'forecast_kwh', 'model_version', 'issued_at'] + file_lineage_columns() %}

source as (
    select * from {{ source('energy_files', 'energy_demand_forecast') }}
),

regions as (
    select region from {{ ref('stg_energy_price_zones') }}
),

checked as (
    select
        source.*,
        case
            when {{ lakehouse.is_blank('source.segment') }} then 'missing segment'
            when {{ lakehouse.is_blank('source.region') }} then 'missing region'
            when source.forecast_hour is null then 'missing forecast_hour'
            when source.forecast_kwh is null then 'missing forecast_kwh'
            when source.forecast_kwh < 0 then 'negative forecast_kwh'
            when source.segment not in {{ segment_list() }} then 'unknown segment'
            when regions.region is null then 'unknown region'
        end as invalid_reason
    from source
    left join regions on source.region = regions.region
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['segment', 'region', 'forecast_hour'],
    latest_first=['issued_at desc nulls last', '_batch_date desc', '_source_file desc', '_source_row desc'],
    duplicate_reason='duplicate forecast: superseded by a later one',
) }}
{% endmacro %}

{#- Every raw day-ahead price with the reason it cannot be staged (NULL when it can). A negative price is valid (power markets clear below zero when renewables flood them). -#}
{% macro validate_day_ahead_prices() %}
{%- set columns = ['zone', 'delivery_hour', 'price_eur_mwh', 'auction_date', 'published_at'] + file_lineage_columns() %}

source as (
    select * from {{ source('energy_files', 'energy_day_ahead_prices') }}
),

zones as (
    select distinct zone from {{ ref('stg_energy_price_zones') }}
),

checked as (
    select
        source.*,
        case
            when {{ lakehouse.is_blank('source.zone') }} then 'missing zone'
            when source.delivery_hour is null then 'missing delivery_hour'
            when source.price_eur_mwh is null then 'missing price_eur_mwh'
            when zones.zone is null then 'unknown zone'
        end as invalid_reason
    from source
    left join zones on source.zone = zones.zone
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['zone', 'delivery_hour'],
    latest_first=['published_at desc nulls last', '_batch_date desc', '_source_file desc', '_source_row desc'],
    duplicate_reason='duplicate price: superseded by a later one',
) }}
{% endmacro %}

{#- Every raw weather observation with the reason it cannot be staged (NULL when it can). -#}
{% macro validate_weather() %}
{%- set columns = ['region', 'observation_hour', 'temperature_c', 'wind_speed_ms', 'cloud_cover_pct'] + file_lineage_columns() %}

source as (
    select * from {{ source('energy_files', 'energy_weather') }}
),

regions as (
    select region from {{ ref('stg_energy_price_zones') }}
),

checked as (
    select
        source.*,
        case
            when {{ lakehouse.is_blank('source.region') }} then 'missing region'
            when source.observation_hour is null then 'missing observation_hour'
            when source.temperature_c is null then 'missing temperature_c'
            when source.temperature_c < {{ var('temperature_min_c') }}
                or source.temperature_c > {{ var('temperature_max_c') }} then 'implausible temperature_c'
            when regions.region is null then 'unknown region'
        end as invalid_reason
    from source
    left join regions on source.region = regions.region
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['region', 'observation_hour'],
    latest_first=['_batch_date desc', '_source_file desc', '_source_row desc'],
    duplicate_reason='duplicate observation: superseded by a later one',
) }}
{% endmacro %}

{#- Every raw customer row with the reason it cannot be staged (NULL when it can). -#}
{% macro validate_customers() %}
{%- set columns = ['customer_id', 'segment', 'region', 'tariff_id', 'contracted_kw', 'signup_date'] + file_lineage_columns() %}

source as (
    select * from {{ source('energy_files', 'energy_customers') }}
),

regions as (
    select region from {{ ref('stg_energy_price_zones') }}
),

tariffs as (
    select tariff_id from {{ ref('stg_energy_tariffs') }}
),

checked as (
    select
        source.*,
        case
            when {{ lakehouse.is_blank('source.customer_id') }} then 'missing customer_id'
            when source.segment is null or source.segment not in {{ segment_list() }} then 'unknown segment'
            when regions.region is null then 'unknown region'
            when tariffs.tariff_id is null then 'unknown tariff_id'
        end as invalid_reason
    from source
    left join regions on source.region = regions.region
    left join tariffs on source.tariff_id = tariffs.tariff_id
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['customer_id'],
    latest_first=['_source_modified desc', '_source_file desc', '_source_row desc'],
    duplicate_reason='duplicate customer_id: superseded by a later row',
) }}
{% endmacro %}

{#- Every raw tariff row with the reason it cannot be staged (NULL when it can). -#}
{% macro validate_tariffs() %}
{%- set columns = ['tariff_id', 'tariff_name', 'segment', 'pricing', 'markup_eur_kwh', 'standing_charge_eur_day'] + file_lineage_columns() %}

checked as (
    select
        *,
        case
            when {{ lakehouse.is_blank('tariff_id') }} then 'missing tariff_id'
            when markup_eur_kwh is null or markup_eur_kwh < 0 then 'invalid markup_eur_kwh'
        end as invalid_reason
    from {{ source('energy_files', 'energy_tariffs') }}
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['tariff_id'],
    latest_first=['_source_modified desc', '_source_file desc', '_source_row desc'],
    duplicate_reason='duplicate tariff_id: superseded by a later row',
) }}
{% endmacro %}

{#- Every raw calendar row with the reason it cannot be staged (NULL when it can). -#}
{% macro validate_calendar() %}
{%- set columns = ['calendar_date', 'iso_weekday', 'weekday_name', 'iso_week', 'week_start', 'is_weekend', 'is_holiday', 'holiday_name'] + file_lineage_columns() %}

checked as (
    select
        *,
        case
            when calendar_date is null then 'missing calendar_date'
            when week_start is null or is_holiday is null or is_weekend is null then 'incomplete calendar row'
        end as invalid_reason
    from {{ source('energy_files', 'energy_calendar') }}
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['calendar_date'],
    latest_first=['_source_modified desc', '_source_file desc', '_source_row desc'],
    duplicate_reason='duplicate calendar_date: superseded by a later row',
) }}
{% endmacro %}

{#- Every raw region -> price zone row with the reason it cannot be staged (NULL when it can). -#}
{% macro validate_price_zones() %}
{%- set columns = ['region', 'zone', 'zone_name'] + file_lineage_columns() %}

checked as (
    select
        *,
        case
            when {{ lakehouse.is_blank('region') }} then 'missing region'
            when {{ lakehouse.is_blank('zone') }} then 'missing zone'
        end as invalid_reason
    from {{ source('energy_files', 'energy_price_zones') }}
),

{{ lakehouse.judge_rows(
    'checked', columns,
    key=['region'],
    latest_first=['_source_modified desc', '_source_file desc', '_source_row desc'],
    duplicate_reason='duplicate region: superseded by a later row',
) }}
{% endmacro %}
