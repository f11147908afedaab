-- Valid meter readings, one per (customer_id, reading_hour); rebuilt file by file (macros/energy_files.sql).
with {{ validate_meter_readings() }},

{{ file_rows('judged', ['customer_id', 'reading_hour']) }}

{{ file_rows_select([
    'picked.customer_id',
    'picked.reading_hour',
    'cast(picked.reading_hour as date) as reading_date',
    'cast(picked.kwh as double) as kwh',
    'picked.read_at',
    'picked._batch_date',
    'picked._source_row',
]) }}
