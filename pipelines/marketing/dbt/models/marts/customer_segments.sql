-- Every customer with an order and their segment: the training customers as the model assigned
-- them, the later arrivals as it scored them, with the RFM features of today. This is what the
-- CRM receives (the postgres_sync delivery to crm.customer_segments).
with assigned as (
    select
        customer_id,
        segment,
        model_run_id,
        'trained' as assigned_by
    from {{ ref('py_ml_customer_segmentation') }}
    union all
    select
        customer_id,
        segment,
        model_run_id,
        'scored' as assigned_by
    from {{ ref('score_new_customers') }}
)

select
    rfm.customer_id,
    assigned.segment,
    assigned.assigned_by,
    assigned.model_run_id,
    rfm.as_of_date,
    rfm.recency_days,
    rfm.frequency,
    rfm.monetary
from {{ ref('customer_rfm') }} as rfm
inner join assigned on rfm.customer_id = assigned.customer_id
