{{ config(unique_key=['tweet_id']) }}

-- One row per tweet. A run takes the ids in its day's files, and for each the copy from the latest
-- file (greatest _batch_date, then _source_file, then _source_row): a tweet re-exported in a later
-- day's file keeps one row, with the newest counts, whatever order the days are loaded in.
with landed as (
    select * from {{ source('tweets_export', 'tweets') }}
),

batch_ids as (
    select distinct id from landed
    where {{ lakehouse.interval_filter('_batch_date') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by id
            order by _batch_date desc, _source_file desc, _source_row desc
        ) as copy_rank
    from landed
    where id in (select id from batch_ids)
)

select
    -- ids
    id as tweet_id,
    {{ adapter.quote('user') }} as screen_name,

    -- time, in UTC
    created_at,
    {{ utc_date('created_at') }} as created_date,
    {{ utc_hour_start('created_at') }} as created_hour,
    {{ utc_hour_of_day('created_at') }} as hour_of_day,
    utc_offset_minutes,

    -- content
    text as tweet_text,
    lang,

    -- engagement when exported
    retweet_count,
    like_count,

    -- lineage
    _batch_date,
    _source_file,
    _source_row
from ranked
where copy_rank = 1
