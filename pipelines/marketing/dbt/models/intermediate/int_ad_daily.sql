-- One row per ad and day: the platform's delivery stats with the conversions credited to the ad
-- that day. Every ad has a stats row for every day it existed (a paused ad has zeros), and a
-- conversion is only ever credited to an ad with clicks that day, so stats drive the rows.
with stats as (
    select
        ad_id,
        date as performance_date,
        impressions,
        clicks,
        spend
    from {{ ref('stg_ads_ad_stats') }}
),

ads as (
    select
        id as ad_id,
        ad_group_id,
        campaign_id
    from {{ ref('stg_ads_ads') }}
),

conversions as (
    select
        ad_id,
        cast(converted_at as date) as performance_date,
        count(*) as conversions,
        sum(revenue) as revenue
    from {{ ref('stg_ads_conversions') }}
    group by ad_id, cast(converted_at as date)
)

select
    stats.ad_id,
    ads.ad_group_id,
    ads.campaign_id,
    stats.performance_date,
    stats.impressions,
    stats.clicks,
    stats.spend,
    coalesce(conversions.conversions, 0) as conversions,
    cast(coalesce(conversions.revenue, 0) as decimal(18, 2)) as revenue
from stats
-- Stats of an ad the platform does not list (a malformed record that passed typing) have no campaign.
inner join ads on stats.ad_id = ads.ad_id
left join conversions
    on stats.ad_id = conversions.ad_id and stats.performance_date = conversions.performance_date
