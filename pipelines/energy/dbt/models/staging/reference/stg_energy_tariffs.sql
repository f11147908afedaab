-- Valid tariffs, one per tariff_id.
with {{ validate_tariffs() }}

select
    tariff_id,
    tariff_name,
    segment,
    pricing,
    cast(markup_eur_kwh as double) as markup_eur_kwh,
    cast(standing_charge_eur_day as double) as standing_charge_eur_day,
    _source_file,
    _batch_date
from judged
where rejection_reason is null
