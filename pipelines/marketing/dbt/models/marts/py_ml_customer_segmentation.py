"""Customer segments from KMeans on the RFM features (pipelines/marketing/segmentation.py).

The first run trains and keeps the fitted model under its run id (lakehouse.model_store); later runs
reuse it, so a customer's segment does not move because the clusters were fitted again, until a run
asks for a retraining (`lakehouse run marketing --conf retrain_segmentation=true`). The table holds
the training customers still in the shop (an erased customer's row goes) with the segment the model
gave them; customers who arrived after the training are scored by score_new_customers.
"""


def model(dbt, session):
    from lakehouse.loader import pipeline_module

    segmentation = pipeline_module("marketing", "segmentation")
    customers = dbt.ref("customer_rfm").df()
    retrain = str(dbt.config.get("retrain")).lower() == "true"
    kept = None if retrain else segmentation.current()
    if kept is None:
        kept = segmentation.train(customers, run_id=dbt.config.get("run_id"), seed=int(dbt.config.get("seed")))
    assignments = kept["assignments"]
    present = assignments[assignments["customer_id"].isin(customers["customer_id"])]
    return segmentation.labelled(kept, present["customer_id"], present["cluster"])
