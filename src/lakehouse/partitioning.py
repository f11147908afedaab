"""Partition specs from model or ingest config, written the way Spark/Iceberg DDL writes them.

``partition_by: ["day(as_of_date)", "source_system"]`` means the same on DuckDB (through PyIceberg)
and on Spark, so a model's config does not change with the engine.
"""

from __future__ import annotations

import re

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.transforms import (
    BucketTransform,
    DayTransform,
    HourTransform,
    IdentityTransform,
    MonthTransform,
    Transform,
    TruncateTransform,
    YearTransform,
)

from .identifiers import validate_identifier

_TIME_TRANSFORMS = {
    "year": YearTransform,
    "years": YearTransform,
    "month": MonthTransform,
    "months": MonthTransform,
    "day": DayTransform,
    "days": DayTransform,
    "hour": HourTransform,
    "hours": HourTransform,
}
_CALL = re.compile(r"^\s*(\w+)\s*\(\s*(?:(\d+)\s*,\s*)?(\w+)\s*\)\s*$")


class InvalidPartitioning(ValueError):
    pass


def parse_partition_field(text: str) -> tuple[str, Transform, str]:
    """'day(ts)' -> ('ts', DayTransform(), 'ts_day'); 'bucket(16, id)' -> ('id', Bucket(16), 'id_bucket')."""
    text = text.strip()
    match = _CALL.match(text)
    if not match:
        column = validate_identifier(text, "partition column")
        return column, IdentityTransform(), column
    func, width, column = match.group(1).lower(), match.group(2), validate_identifier(match.group(3), "partition column")
    if func in _TIME_TRANSFORMS and width is None:
        transform = _TIME_TRANSFORMS[func]()
        return column, transform, f"{column}_{func.rstrip('s')}"
    if func == "bucket" and width:
        return column, BucketTransform(int(width)), f"{column}_bucket"
    if func == "truncate" and width:
        return column, TruncateTransform(int(width)), f"{column}_trunc"
    if func == "identity" and width is None:
        return column, IdentityTransform(), column
    raise InvalidPartitioning(
        f"unsupported partition expression {text!r}: use a column, day(col), month(col), year(col), "
        "hour(col), bucket(N, col) or truncate(N, col)"
    )


def build_partition_spec(schema: Schema, partition_by: list[str] | None) -> PartitionSpec:
    if not partition_by:
        return PartitionSpec()
    fields = []
    for position, text in enumerate(partition_by):
        column, transform, name = parse_partition_field(text)
        try:
            source = schema.find_field(column)
        except ValueError:
            raise InvalidPartitioning(f"partition column {column!r} is not a column of the result") from None
        fields.append(PartitionField(source_id=source.field_id, field_id=1000 + position, transform=transform, name=name))
    return PartitionSpec(*fields)


def spec_signature(schema: Schema, spec: PartitionSpec) -> list[tuple[str, str]]:
    """A comparable description of a spec: (source column, transform) per field."""
    return [(schema.find_column_name(f.source_id), str(f.transform)) for f in spec.fields]


def requested_signature(partition_by: list[str] | None) -> list[tuple[str, str]]:
    return [(column, str(transform)) for column, transform, _ in map(parse_partition_field, partition_by or [])]
