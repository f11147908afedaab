-- Raw day ahead prices rows that cannot be staged, with the first rule they break; rebuilt file by file.
{{ quarantine_files(
    validate_day_ahead_prices(),
    key=['zone', 'delivery_hour'],
    columns=['zone', 'delivery_hour', 'price_eur_mwh', 'auction_date', 'published_at'],
) }}
