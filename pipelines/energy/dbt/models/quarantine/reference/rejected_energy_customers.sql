-- Raw customers rows that cannot be staged, with the first rule they break.
with {{ validate_customers() }}

select * from judged
where rejection_reason is not null
