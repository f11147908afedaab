-- The most tweeted languages of each UTC day: pipelines/tweets/README.md ("Marts").
with tweets as (
    {{ tweets_of_touched_days() }}
),

per_language as (
    select
        created_date as tweet_date,
        lang,
        cast(count(*) as bigint) as tweets,
        cast(count(distinct screen_name) as bigint) as authors
    from tweets
    group by created_date, lang
),

ranked as (
    select
        *,
        cast(row_number() over (partition by tweet_date order by tweets desc, lang asc) as integer) as language_rank,
        sum(tweets) over (partition by tweet_date) as day_tweets
    from per_language
)

select
    tweet_date,
    language_rank,
    lang,
    tweets,
    authors,
    cast(round(tweets * 100.0 / day_tweets, 2) as decimal(5, 2)) as share_pct
from ranked
where language_rank <= {{ var('top_languages') }}
