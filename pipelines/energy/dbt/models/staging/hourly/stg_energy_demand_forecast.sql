-- The demand model's valid forecasts, one per (segment, region, forecast_hour); rebuilt file by file.
with {{ validate_demand_forecast() }},

{{ file_rows('judged', ['segment', 'region', 'forecast_hour']) }}

{{ file_rows_select([
    'picked.segment',
    'picked.region',
    'picked.forecast_hour',
    'cast(picked.forecast_kwh as double) as forecast_kwh',
    'picked.model_version',
    'picked.issued_at',
    'picked._batch_date',
    'picked._source_row',
]) }}
