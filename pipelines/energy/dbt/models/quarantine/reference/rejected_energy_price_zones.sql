-- Raw price zones rows that cannot be staged, with the first rule they break.
with {{ validate_price_zones() }}

select * from judged
where rejection_reason is not null
