-- Valid region -> price zone rows, one per region.
with {{ validate_price_zones() }}

select
    region,
    zone,
    zone_name,
    _source_file,
    _batch_date
from judged
where rejection_reason is null
