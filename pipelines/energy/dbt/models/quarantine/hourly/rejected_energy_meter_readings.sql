-- Raw meter readings rows that cannot be staged, with the first rule they break; rebuilt file by file.
{{ quarantine_files(
    validate_meter_readings(),
    key=['customer_id', 'reading_hour'],
    columns=['customer_id', 'reading_hour', 'kwh', 'read_at'],
) }}
