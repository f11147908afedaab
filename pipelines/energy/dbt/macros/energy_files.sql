{#- File-based incremental staging (rules: pipelines/energy/README.md).

    Every raw row carries the file it came in (_source_file) and the date of the run that landed
    it (_batch_date); a changed file is reloaded by the ingest with its old rows replaced. A staging
    or quarantine model of a time-based source rebuilds, per run, exactly the files of the run:

      files landed in the run's data interval
      + every other file holding a key one of them holds (a duplicate there may now win or lose),

    with delete+insert on _source_file: each of those files' earlier rows go, its rows of now come
    in. A file with no row to write gets one tombstone row (is_tombstone), which deletes its earlier
    rows and is not stored. So after any sequence of runs, reloads included, every raw row is in
    exactly one of staging and quarantine. A first run or --full-refresh takes every file. -#}

{#- The lineage columns of every raw row of a table_map ingest. -#}
{% macro file_lineage_columns() %}
  {{ return(['_batch_date', '_source_row', '_ingested_at', '_source_file', '_source_size', '_source_modified', '_source_sha256']) }}
{% endmacro %}


{#- A relation of the distinct _source_file values to (re)build, from a judged relation (raw rows with
    rejection_reason) and the source's business key. -#}
{% macro files_to_rebuild(judged, key) %}
    select distinct _source_file from {{ judged }}
    where {{ lakehouse.interval_filter('_batch_date') }}
    {%- if is_incremental() %}

    union

    select distinct others._source_file
    from {{ judged }} as others
    inner join (
        select distinct {{ key | join(', ') }} from {{ judged }}
        where {{ lakehouse.interval_filter('_batch_date') }}
    ) as landed
        on {% for column in key %}others.{{ column }} = landed.{{ column }}{% if not loop.last %} and {% endif %}{% endfor %}
    {%- endif %}
{% endmacro %}


{#- The rows of the files to rebuild that are staged (rejected=false) or quarantined (rejected=true),
    as CTEs `files` and `picked`; finish the model with file_rows_select(...). -#}
{% macro file_rows(judged, key, rejected=false) %}
files as (
    {{ files_to_rebuild(judged, key) }}
),

picked as (
    select {{ judged }}.*
    from {{ judged }}
    inner join files on {{ judged }}._source_file = files._source_file
    where rejection_reason is {{ 'not ' if rejected else '' }}null
)
{% endmacro %}


{#- select <expressions over `picked`>, one tombstone row for a file with no picked row. -#}
{% macro file_rows_select(expressions) %}
select
    files._source_file,
    {%- for expression in expressions %}
    {{ expression }},
    {%- endfor %}
    picked._source_file is null as is_tombstone
from files
left join picked on picked._source_file = files._source_file
{% endmacro %}


{#- The quarantine model of a time-based source: its raw columns, lineage and rejection_reason.
    `validation`: the CTEs of its validate_<source>() macro. -#}
{% macro quarantine_files(validation, key, columns) %}
with {{ validation }},

{{ file_rows('judged', key, rejected=true) }}

{%- set expressions = [] %}
{%- for column in columns + file_lineage_columns() if column != '_source_file' %}
  {%- do expressions.append('picked.' ~ column) %}
{%- endfor %}
{%- do expressions.append('picked.rejection_reason') %}
{{ file_rows_select(expressions) }}
{% endmacro %}


{#- Reading dates whose rows a run changed: dates of the staged rows landed in the run's interval,
    in any of the time-based sources. Everything on a first run or --full-refresh. -#}
{% macro changed_reading_dates() %}
    select reading_date from {{ ref('stg_energy_meter_readings') }} where {{ lakehouse.interval_filter('_batch_date') }}
    union
    select cast(forecast_hour as date) from {{ ref('stg_energy_demand_forecast') }} where {{ lakehouse.interval_filter('_batch_date') }}
    union
    select cast(delivery_hour as date) from {{ ref('stg_energy_day_ahead_prices') }} where {{ lakehouse.interval_filter('_batch_date') }}
    union
    select cast(observation_hour as date) from {{ ref('stg_energy_weather') }} where {{ lakehouse.interval_filter('_batch_date') }}
{% endmacro %}


{#- SQL list of the known segments, e.g. ('residential', 'commercial'). -#}
{% macro segment_list() %}({% for s in var('segments') %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor %}){% endmacro %}
