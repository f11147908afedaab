-- Spend, impressions, clicks, conversions and revenue per campaign and day, with the ratios a
-- marketer reads. A ratio whose denominator is zero is NULL (not 0, not an error): a paused
-- campaign has no CTR, a campaign without conversions has no CPA.
with daily as (
    select
        campaign_id,
        performance_date,
        sum(impressions) as impressions,
        sum(clicks) as clicks,
        -- Sums of decimals widen differently on DuckDB and Spark: one declared type for both.
        cast(sum(spend) as decimal(18, 2)) as spend,
        sum(conversions) as conversions,
        cast(sum(revenue) as decimal(18, 2)) as revenue
    from {{ ref('int_ad_daily') }}
    group by campaign_id, performance_date
)

select
    daily.campaign_id,
    campaigns.name as campaign_name,
    campaigns.channel,
    daily.performance_date,
    daily.impressions,
    daily.clicks,
    daily.spend,
    daily.conversions,
    daily.revenue,
    {{ ad_ratios('daily') }}
from daily
inner join {{ ref('stg_ads_campaigns') }} as campaigns on daily.campaign_id = campaigns.id
