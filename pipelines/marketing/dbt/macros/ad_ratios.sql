{#- The ad metrics of a row with impressions, clicks, spend, conversions and revenue, as doubles
    (the same IEEE division on DuckDB and Spark), NULL where the denominator is zero:
    CTR = clicks / impressions, CPC = spend / clicks, CPA = spend / conversions, ROAS = revenue / spend. -#}
{% macro ad_ratios(relation) -%}
    cast({{ relation }}.clicks as double) / nullif({{ relation }}.impressions, 0) as ctr,
    cast({{ relation }}.spend as double) / nullif({{ relation }}.clicks, 0) as cpc,
    cast({{ relation }}.spend as double) / nullif({{ relation }}.conversions, 0) as cpa,
    cast({{ relation }}.revenue as double) / nullif(cast({{ relation }}.spend as double), 0) as roas
{%- endmacro %}
