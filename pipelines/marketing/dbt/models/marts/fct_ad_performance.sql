{#- One row per ad and day. Incremental by the run's data interval: a run rebuilds the days from
    `restatement_days` before its interval to its end (platforms restate recent stats), replacing
    exactly those days' partitions; a first run or --full-refresh builds every day. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='insert_overwrite',
    partition_by=['performance_date'],
) }}

{%- set start = var('data_interval_start', none) -%}
{%- set end = var('data_interval_end', none) -%}

select
    ads.ad_id,
    ads.ad_group_id,
    ads.campaign_id,
    campaigns.campaign_name,
    campaigns.channel,
    ads.performance_date,
    ads.impressions,
    ads.clicks,
    ads.spend,
    ads.conversions,
    ads.revenue,
    {{ ad_ratios('ads') }},
    cast(ads.spend as double) / nullif(cast(campaigns.spend as double), 0) as share_of_campaign_spend
from {{ ref('int_ad_daily') }} as ads
inner join {{ ref('int_campaign_performance') }} as campaigns
    on ads.campaign_id = campaigns.campaign_id and ads.performance_date = campaigns.performance_date
{% if is_incremental() and start and end %}
    {%- set first = (modules.datetime.date.fromisoformat(start[:10])
                     - modules.datetime.timedelta(days=var('restatement_days'))).isoformat() %}
    where
        ads.performance_date >= cast('{{ first }}' as date)
        and ads.performance_date < cast('{{ end[:10] }}' as date)
{% endif %}
