-- Tweets per UTC day, with the busiest hour: pipelines/tweets/README.md ("Marts").
with tweets as (
    {{ tweets_of_touched_days() }}
),

per_day as (
    select
        created_date as tweet_date,
        cast(count(*) as bigint) as tweets,
        cast(count(distinct screen_name) as bigint) as authors,
        cast(count(distinct lang) as bigint) as languages,
        cast(sum(retweet_count) as bigint) as retweets,
        cast(sum(like_count) as bigint) as likes
    from tweets
    group by created_date
),

busiest_hour as (
    select
        tweet_date,
        hour_of_day as peak_hour_utc,
        tweets as peak_hour_tweets,
        row_number() over (partition by tweet_date order by tweets desc, hour_of_day asc) as hour_rank
    from {{ ref('tweets_per_hour') }}
    where tweet_date in (select tweet_date from per_day)
)

select
    per_day.tweet_date,
    per_day.tweets,
    per_day.authors,
    per_day.languages,
    per_day.retweets,
    per_day.likes,
    busiest_hour.peak_hour_utc,
    busiest_hour.peak_hour_tweets
from per_day
inner join busiest_hour
    on per_day.tweet_date = busiest_hour.tweet_date
    and busiest_hour.hour_rank = 1
