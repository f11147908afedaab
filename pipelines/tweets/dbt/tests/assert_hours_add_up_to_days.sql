-- Every day's tweets, retweets and likes equal the sums of its hours (the two marts agree).
with hours as (
    select
        tweet_date,
        sum(tweets) as tweets,
        sum(retweets) as retweets,
        sum(likes) as likes
    from {{ ref('tweets_per_hour') }}
    group by tweet_date
)

select days.tweet_date
from {{ ref('tweets_per_day') }} as days
full outer join hours
    on days.tweet_date = hours.tweet_date
where days.tweet_date is null
    or hours.tweet_date is null
    or days.tweets <> hours.tweets
    or days.retweets <> hours.retweets
    or days.likes <> hours.likes
