select * from {{ ref('base_market_data') }}
where rejection_reason is not null
    and {{ lakehouse.interval_filter('_batch_date') }}
