-- Valid weather observations, one per (region, observation_hour), with heating degrees; rebuilt file by file.
with {{ validate_weather() }},

{{ file_rows('judged', ['region', 'observation_hour']) }}

{{ file_rows_select([
    'picked.region',
    'picked.observation_hour',
    'cast(picked.temperature_c as double) as temperature_c',
    'greatest(0.0, ' ~ var('heating_degree_base_c') ~ ' - cast(picked.temperature_c as double)) as heating_degrees',
    'cast(picked.wind_speed_ms as double) as wind_speed_ms',
    'cast(picked.cloud_cover_pct as double) as cloud_cover_pct',
    'picked._batch_date',
    'picked._source_row',
]) }}
