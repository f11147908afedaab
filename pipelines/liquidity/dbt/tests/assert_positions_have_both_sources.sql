-- Every as-of date must hold loans AND deposits: a missing extract is a failed feed, not a quiet day.
select
    as_of_date,
    count(distinct source_system) as source_systems
from {{ ref('mart_positions') }}
group by as_of_date
having count(distinct source_system) < 2
