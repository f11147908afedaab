-- Raw tariffs rows that cannot be staged, with the first rule they break.
with {{ validate_tariffs() }}

select * from judged
where rejection_reason is not null
