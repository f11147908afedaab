"""Deliveries: copy a lakehouse table to a system outside it, after the pipeline's dbt models are built.

A pipeline declares them under `deliver:` (name, table, kind, options); each becomes a task between
the dbt task group and publish_data_quality. The kinds and their functions: pipeline.DELIVERY_KINDS.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..pipeline import DELIVERY_KINDS, Delivery, get_pipeline


def run_delivery(pipeline_name: str, delivery_name: str, options: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
    pipeline = get_pipeline(pipeline_name)
    delivery: Delivery | None = next((d for d in pipeline.deliver if d.name == delivery_name), None)
    if delivery is None:
        raise ValueError(f"pipeline {pipeline_name!r} has no delivery {delivery_name!r}")
    module_name, _, function_name = DELIVERY_KINDS[delivery.kind].partition(":")
    handler = getattr(importlib.import_module(module_name), function_name)
    return handler(pipeline_name, delivery, dict(options), run_id)
