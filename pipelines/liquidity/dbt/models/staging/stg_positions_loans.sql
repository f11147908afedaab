{{ config(unique_key=['position_id', 'as_of_date']) }}

{{ stage_positions(ref('base_positions_loans')) }}
