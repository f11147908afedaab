-- Raw demand forecast rows that cannot be staged, with the first rule they break; rebuilt file by file.
{{ quarantine_files(
    validate_demand_forecast(),
    key=['segment', 'region', 'forecast_hour'],
    columns=['segment', 'region', 'forecast_hour', 'forecast_kwh', 'model_version', 'issued_at'],
) }}
