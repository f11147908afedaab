"""ML inference on the customer mart: segments for the customers the model was not trained on.

Loads exactly the fitted model that py_ml_customer_segmentation's rows name (their model_run_id)
and predicts the customers of customer_rfm that are not among them: those who arrived after the
training. Empty until someone arrives.
"""


def model(dbt, session):
    from lakehouse.loader import pipeline_module

    segmentation = pipeline_module("marketing", "segmentation")
    trained = dbt.ref("py_ml_customer_segmentation").df()
    customers = dbt.ref("customer_rfm").df()
    if trained.empty:
        raise ValueError("py_ml_customer_segmentation is empty: there is no trained model to score with")
    kept = segmentation.current(run_id=str(trained["model_run_id"].iloc[0]))
    arrivals = customers[~customers["customer_id"].isin(trained["customer_id"])]
    return segmentation.predict(kept, arrivals)
