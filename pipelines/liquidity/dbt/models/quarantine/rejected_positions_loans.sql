select * from {{ ref('base_positions_loans') }}
where rejection_reason is not null
    and {{ lakehouse.interval_filter('_batch_date') }}
