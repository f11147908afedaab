-- Valid day-ahead prices, one per (zone, delivery_hour); rebuilt file by file.
with {{ validate_day_ahead_prices() }},

{{ file_rows('judged', ['zone', 'delivery_hour']) }}

{{ file_rows_select([
    'picked.zone',
    'picked.delivery_hour',
    'cast(picked.price_eur_mwh as double) as price_eur_mwh',
    'picked.auction_date',
    'picked.published_at',
    'picked._batch_date',
    'picked._source_row',
]) }}
