-- Raw calendar rows that cannot be staged, with the first rule they break.
with {{ validate_calendar() }}

select * from judged
where rejection_reason is not null
