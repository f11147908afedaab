"""Customer segmentation on RFM features: the training and the inference the dbt Python models call.

KMeans with four clusters on recency_days, frequency and monetary, standardised first (recency is
in days, monetary in EUR: unscaled, the largest unit would decide alone). Clusters get business names
from their centres, in this order: the highest monetary value is `champions`; of the rest, the fewest
orders is `occasional`; of the two left, the longer since the last order is `at_risk`, the other
`loyal`. (Recency alone cannot tell at_risk from occasional: one-off buyers are long gone too.)
The fitted pipeline and the training assignments are kept in the model store (lakehouse.model_store)
under the run id that trained them; inference loads exactly that model.
"""

from __future__ import annotations

import pandas as pd

PIPELINE = "marketing"
MODEL_NAME = "customer_segmentation"
FEATURES = ["recency_days", "frequency", "monetary"]
CLUSTERS = 4


def _features(customers: pd.DataFrame) -> pd.DataFrame:
    return customers[FEATURES].astype(float)


def _cluster_names(fitted, features: pd.DataFrame) -> dict[int, str]:
    scaler, kmeans = fitted.named_steps["standardscaler"], fitted.named_steps["kmeans"]
    centres = pd.DataFrame(scaler.inverse_transform(kmeans.cluster_centers_), columns=FEATURES)
    names: dict[int, str] = {}
    for name, column, pick in (("champions", "monetary", "idxmax"), ("occasional", "frequency", "idxmin"),
                               ("at_risk", "recency_days", "idxmax")):
        rest = centres.drop(index=list(names))
        names[int(getattr(rest[column], pick)())] = name
    names[int(centres.drop(index=list(names)).index[0])] = "loyal"
    return names


def train(customers: pd.DataFrame, run_id: str, seed: int) -> dict:
    """Fit on every customer with an order; keep the model; the training assignments and metadata."""
    from sklearn.cluster import KMeans
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from lakehouse import model_store

    training = customers[customers["frequency"] > 0].sort_values("customer_id")
    if len(training) < CLUSTERS:
        raise ValueError(f"{len(training)} customers with orders: too few to find {CLUSTERS} segments")
    features = _features(training)
    fitted = make_pipeline(StandardScaler(), KMeans(n_clusters=CLUSTERS, n_init=10, random_state=seed)).fit(features)
    names = _cluster_names(fitted, features)
    assignments = pd.DataFrame({"customer_id": training["customer_id"].to_numpy(),
                                "cluster": fitted.named_steps["kmeans"].labels_.astype("int64")})
    as_of = str(training["as_of_date"].max())
    metadata = {"features": FEATURES, "cluster_names": {str(k): v for k, v in names.items()}, "seed": seed,
                "training_customers": len(training), "trained_as_of": as_of,
                "inertia": float(fitted.named_steps["kmeans"].inertia_)}
    model_store.save(PIPELINE, MODEL_NAME, run_id, {"pipeline": fitted, "assignments": assignments}, metadata)
    return {"pipeline": fitted, "assignments": assignments, "metadata": {**metadata, "run_id": run_id}}


def current(run_id: str | None = None) -> dict | None:
    """The kept model (of ``run_id``, or the current one), or None before the first training."""
    from lakehouse import model_store

    try:
        bundle, metadata = model_store.load(PIPELINE, MODEL_NAME, run_id)
    except model_store.ModelNotFound:
        if run_id:
            raise
        return None
    return {**bundle, "metadata": metadata}


def labelled(model: dict, customer_ids, clusters) -> pd.DataFrame:
    import pyarrow as pa

    names = {int(k): v for k, v in model["metadata"]["cluster_names"].items()}
    rows = len(clusters)
    # Typed columns, not Python objects: DuckDB cannot tell the type of an empty object column (no
    # arrivals yet), and the table it wrote then (segment double, model_run_id int) refused the next
    # day's strings.
    return pd.DataFrame({
        "customer_id": pd.Series(customer_ids, dtype="int64").to_numpy(),
        "cluster": pd.Series(clusters, dtype="int64").to_numpy(),
        "segment": pd.Series([names[int(c)] for c in clusters], dtype="string"),
        "model_run_id": pd.Series([model["metadata"]["run_id"]] * rows, dtype="string"),
        "trained_as_of": pd.Series([pd.to_datetime(model["metadata"]["trained_as_of"]).date()] * rows,
                                   dtype=pd.ArrowDtype(pa.date32())),
    })


def predict(model: dict, customers: pd.DataFrame) -> pd.DataFrame:
    """Segments of ``customers`` (those with an order) by the kept model."""
    scored = customers[customers["frequency"] > 0].sort_values("customer_id")
    clusters = model["pipeline"].predict(_features(scored)) if len(scored) else []
    return labelled(model, scored["customer_id"], clusters)
