-- Valid customers, one per customer_id (rebuilt whole: the extract is replaced in place).
with {{ validate_customers() }}

select
    customer_id,
    segment,
    region,
    tariff_id,
    cast(contracted_kw as double) as contracted_kw,
    signup_date,
    _source_file,
    _batch_date
from judged
where rejection_reason is null
