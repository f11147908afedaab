-- Valid calendar days, one per calendar_date; a day off is a weekend or a public holiday.
with {{ validate_calendar() }}

select
    calendar_date,
    cast(iso_weekday as int) as iso_weekday,
    weekday_name,
    cast(iso_week as int) as iso_week,
    week_start,
    is_weekend,
    is_holiday,
    holiday_name,
    (is_weekend or is_holiday) as is_day_off,
    _source_file,
    _batch_date
from judged
where rejection_reason is null
