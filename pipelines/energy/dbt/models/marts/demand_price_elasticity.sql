-- The master table: metered demand against price per segment, region and hour, with the demand
-- model's forecast, the weather and the calendar alongside. Grain (reading_hour, segment, region).
-- A run replaces the reading dates its newly landed files touched (macros/energy_files.sql).
with changed_dates as (
    {{ changed_reading_dates() }}
),

readings as (
    select
        readings.customer_id,
        readings.reading_hour,
        readings.reading_date,
        readings.kwh
    from {{ ref('stg_energy_meter_readings') }} as readings
    where readings.reading_date in (select reading_date from changed_dates)
),

customers as (
    select
        customer_id,
        segment,
        region,
        tariff_id
    from {{ ref('stg_energy_customers') }}
),

tariffs as (
    select
        tariff_id,
        markup_eur_kwh
    from {{ ref('stg_energy_tariffs') }}
),

metered as (
    select
        readings.reading_date,
        readings.reading_hour,
        customers.segment,
        customers.region,
        count(*) as customers_metered,
        sum(readings.kwh) as metered_kwh,
        sum(readings.kwh * tariffs.markup_eur_kwh) as markup_cost_eur
    from readings
    inner join customers on readings.customer_id = customers.customer_id
    left join tariffs on customers.tariff_id = tariffs.tariff_id
    group by readings.reading_date, readings.reading_hour, customers.segment, customers.region
),

zones as (
    select
        region,
        zone
    from {{ ref('stg_energy_price_zones') }}
),

prices as (
    select
        zone,
        delivery_hour,
        price_eur_mwh
    from {{ ref('stg_energy_day_ahead_prices') }}
),

weather as (
    select
        region,
        observation_hour,
        temperature_c,
        heating_degrees
    from {{ ref('stg_energy_weather') }}
),

forecast as (
    select
        segment,
        region,
        forecast_hour,
        forecast_kwh
    from {{ ref('stg_energy_demand_forecast') }}
),

calendar as (
    select
        calendar_date,
        iso_weekday,
        week_start,
        is_holiday,
        is_day_off
    from {{ ref('stg_energy_calendar') }}
),

final as (
    select
        -- grain
        metered.reading_date,
        metered.reading_hour,
        metered.segment,
        metered.region,

        -- when
        cast(hour(metered.reading_hour) as int) as hour_of_day,
        calendar.iso_weekday,
        calendar.week_start,
        calendar.is_holiday,
        calendar.is_day_off,

        -- demand: metered actuals and the model's forecast
        cast(metered.customers_metered as bigint) as customers_metered,
        metered.metered_kwh,
        forecast.forecast_kwh,
        forecast.forecast_kwh - metered.metered_kwh as forecast_error_kwh,

        -- price
        zones.zone,
        prices.price_eur_mwh,
        metered.metered_kwh * prices.price_eur_mwh / 1000 + metered.markup_cost_eur as energy_cost_eur,

        -- weather
        weather.temperature_c,
        weather.heating_degrees,

        -- the log-log regression's variables (a non-positive price has no log)
        case when metered.metered_kwh > 0 then ln(metered.metered_kwh) end as log_demand,
        case when prices.price_eur_mwh > 0 then ln(prices.price_eur_mwh) end as log_price
    from metered
    left join zones on metered.region = zones.region
    left join prices on zones.zone = prices.zone and metered.reading_hour = prices.delivery_hour
    left join weather on metered.region = weather.region and metered.reading_hour = weather.observation_hour
    left join forecast
        on metered.segment = forecast.segment
        and metered.region = forecast.region
        and metered.reading_hour = forecast.forecast_hour
    left join calendar on metered.reading_date = calendar.calendar_date
)

select * from final
