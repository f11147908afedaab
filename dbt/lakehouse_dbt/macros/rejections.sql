{#- The tail of a staging model's validation: CTEs that give every row of `checked_cte` a
    rejection_reason, NULL for the rows to stage.

    `checked_cte` must carry `invalid_reason` (NULL when the row breaks no rule). Among the valid rows,
    one per `key` survives: the first by `latest_first` (an ORDER BY list); the others are rejected
    with `duplicate_reason`. Every input row comes out exactly once, so
    rows in = staged (reason NULL) + quarantined (reason set).

    with source as (...),
    checked as (select *, case when ... then 'missing id' end as invalid_reason from source),
    {{ lakehouse.judge_rows('checked', columns, ['id', 'day'], ['updated_at desc'], 'duplicate id') }}
    select * from judged
-#}
{% macro judge_rows(checked_cte, columns, key, latest_first, duplicate_reason) %}
ranked as (
    select
        *,
        row_number() over (partition by {{ key | join(', ') }} order by {{ latest_first | join(', ') }}) as recency_rank
    from {{ checked_cte }}
    where invalid_reason is null
),

judged as (
    select {{ columns | join(', ') }}, invalid_reason as rejection_reason
    from {{ checked_cte }}
    where invalid_reason is not null

    union all

    select
        {{ columns | join(', ') }},
        case when recency_rank > 1 then '{{ duplicate_reason }}' end as rejection_reason
    from ranked
)
{% endmacro %}
