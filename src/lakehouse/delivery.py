"""Delivery tasks: copy a lakehouse table to a system outside it, after the pipeline's dbt models are built.

A pipeline declares them under `deliver:` (name, table, kind, options); each becomes a task between
the dbt task group and publish_data_quality. The kinds are classes in lakehouse.kinds.
"""

from __future__ import annotations

from typing import Any

from .kinds import DeliveryKind, delivery_kind
from .pipeline import Delivery, Pipeline, get_pipeline


def find_delivery(pipeline: Pipeline, delivery_name: str) -> Delivery:
    for delivery in pipeline.deliver:
        if delivery.name == delivery_name:
            return delivery
    raise ValueError(f"pipeline {pipeline.name!r} has no delivery {delivery_name!r}")


def build_delivery(pipeline: Pipeline, delivery: Delivery, options: dict[str, Any]) -> DeliveryKind:
    """The delivery's kind, given the task's rendered options (checked and typed here)."""
    kind = delivery_kind(delivery.kind)
    where = f"{pipeline.declaration} deliver '{delivery.name}'"
    return kind(pipeline, delivery, kind.parse(options, where, rendered=True))


def run_delivery(pipeline_name: str, delivery_name: str, options: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
    pipeline = get_pipeline(pipeline_name)
    return build_delivery(pipeline, find_delivery(pipeline, delivery_name), options).deliver(run_id)
