-- Tweets per UTC hour, hours with at least one tweet: pipelines/tweets/README.md ("Marts").
with tweets as (
    {{ tweets_of_touched_days() }}
)

select
    created_date as tweet_date,
    created_hour as hour_start_utc,
    hour_of_day,
    cast(count(*) as bigint) as tweets,
    cast(count(distinct screen_name) as bigint) as authors,
    cast(sum(retweet_count) as bigint) as retweets,
    cast(sum(like_count) as bigint) as likes
from tweets
group by created_date, created_hour, hour_of_day
