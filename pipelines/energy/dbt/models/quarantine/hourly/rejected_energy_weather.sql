-- Raw weather rows that cannot be staged, with the first rule they break; rebuilt file by file.
{{ quarantine_files(
    validate_weather(),
    key=['region', 'observation_hour'],
    columns=['region', 'observation_hour', 'temperature_c', 'wind_speed_ms', 'cloud_cover_pct'],
) }}
