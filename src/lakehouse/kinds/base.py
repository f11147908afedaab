"""What an ingest or delivery kind is: one class that owns its options, its work and its lineage.

A kind declares its options as ``OPTIONS = {name: Option(...)}``. They are checked when the pipeline
loads (``validate``), so a typo in a pipeline.yml fails the DAG-loading test with the pipeline file, the
entry and the option in the message, not a task at run time. A value holding an Airflow template
("{{ params.scale }}") is only rendered when the task runs: at load it is accepted as it is, and checked
once rendered (``parse(..., rendered=True)``), when the kind is built for its run.

This module imports nothing heavy: every pipeline's DAG is parsed through it.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..errors import InvalidPipeline

_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
               dict: "a mapping", list: "a list"}  # fmt: skip


class InvalidOptions(InvalidPipeline):
    """An entry's options are wrong; the message names the file, the entry and the option."""


def is_template(value: Any) -> bool:
    """An Airflow template, rendered only when the task runs."""
    return isinstance(value, str) and "{{" in value


@dataclass(frozen=True)
class Option:
    type: type = str
    default: Any = None
    required: bool = False
    choices: tuple = ()
    minimum: float | None = None
    help: str = ""

    def coerce(self, value: Any, where: str) -> Any:
        """The value as this option's type; rendered templates arrive as text ("7", "true")."""
        wanted = self.type
        try:
            if wanted is bool:
                if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
                    value = value.strip().lower() in ("true", "1", "yes")
                if not isinstance(value, bool):
                    raise ValueError
            elif wanted is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError
                value = int(value.strip()) if isinstance(value, str) else int(value)
            elif wanted is float:
                if isinstance(value, bool):
                    raise ValueError
                value = float(value.strip()) if isinstance(value, str) else float(value)
            elif wanted is str:
                if isinstance(value, (dict, list)):
                    raise ValueError
                value = "" if value is None else str(value)
            elif not isinstance(value, wanted):
                raise ValueError
        except (TypeError, ValueError):
            raise InvalidOptions(f"{where}: must be {_TYPE_NAMES.get(wanted, wanted.__name__)}, got {value!r}") from None
        if self.choices and value not in self.choices:
            raise InvalidOptions(f"{where}: must be one of {', '.join(map(str, self.choices))}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise InvalidOptions(f"{where}: must be at least {self.minimum:g}, got {value!r}")
        return value


def _coerce_free(value: Any) -> Any:
    """An undeclared (passed-on) option rendered as text: give numbers and booleans back their type."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return value


class Kind:
    """Options parsing shared by ingest and delivery kinds."""

    name: ClassVar[str]
    OPTIONS: ClassVar[dict[str, Option]] = {}
    # Options not declared are passed on as they are (to a generator's keyword arguments).
    PASS_ON_OTHER_OPTIONS: ClassVar[bool] = False

    @classmethod
    def parse(cls, raw: dict[str, Any] | None, where: str, rendered: bool) -> dict[str, Any]:
        """Declared options typed and defaulted; with ``rendered=False`` templates are kept as they are."""
        if raw is not None and not isinstance(raw, dict):
            raise InvalidOptions(f"{where}: 'options' must be a mapping, got {raw!r}")
        raw = dict(raw or {})
        options: dict[str, Any] = {}
        for key, value in raw.items():
            spec = cls.OPTIONS.get(key)
            if spec is None:
                if not cls.PASS_ON_OTHER_OPTIONS:
                    known = ", ".join(sorted(cls.OPTIONS)) or "none"
                    raise InvalidOptions(f"{where}: unknown option {key!r} for kind {cls.name!r}; its options: {known}")
                options[key] = _coerce_free(value) if rendered else value
            elif value is None or (is_template(value) and not rendered):
                options[key] = value
            else:
                options[key] = spec.coerce(value, f"{where} option {key!r}")
        for key, spec in cls.OPTIONS.items():
            if options.get(key) in (None, "") and spec.required:
                raise InvalidOptions(f"{where}: option {key!r} is required for kind {cls.name!r}"
                                     + (f" ({spec.help})" if spec.help else ""))
            if options.get(key) is None:
                options[key] = copy.deepcopy(spec.default)  # a list default is never shared between entries
        # A kind with a demo generator: switching the demo on without naming it is an error.
        if "simulate" in cls.OPTIONS and "generator" in cls.OPTIONS and options["simulate"] is True \
                and not options.get("generator"):
            raise InvalidOptions(f"{where}: option 'simulate' is on, so option 'generator' is required")
        cls.check(options, where, rendered)
        return options

    @classmethod
    def check(cls, options: dict[str, Any], where: str, rendered: bool) -> None:
        """Checks across options or of their content (a kind overrides it); templated values are skipped."""


class IngestKind(Kind):
    """Lands one source in its raw table. Built per task run with the rendered options."""

    def __init__(self, pipeline: Any, source: Any, options: dict[str, Any]):
        """``pipeline``: the lakehouse.pipeline.Pipeline; ``source``: its IngestSource; ``options``: parsed."""
        self.pipeline = pipeline
        self.source = source
        self.options = options

    @classmethod
    def expand(cls, entry: dict[str, Any], folder: Path, where: str) -> list[dict[str, Any]]:
        """The ingest entries one declared entry stands for (one, unless the kind maps many tables)."""
        return [entry]

    @classmethod
    def validate(cls, source: Any, folder: Path, where: str) -> None:
        """At pipeline load: the entry's options (and what they name) are right, as far as known before rendering."""
        cls.check_references(cls.parse(source.options, where, rendered=False), folder, where)

    # Options that name code ('file.py:function' in the pipeline folder, or 'module:function').
    CODE_OPTIONS: ClassVar[tuple[str, ...]] = ()
    # Options that name a file of the pipeline folder (a source schema to apply).
    FILE_OPTIONS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_references(cls, options: dict[str, Any], folder: Path, where: str) -> None:
        """The code (CODE_OPTIONS) and files (FILE_OPTIONS) the options name exist; a kind naming other
        things extends it."""
        from ..loader import LoadError, check_reference

        for key in cls.CODE_OPTIONS:
            if options.get(key) and not is_template(options[key]):
                try:
                    check_reference(options[key], folder, key)
                except LoadError as error:
                    raise InvalidOptions(f"{where} option {key!r}: {error}") from None
        for key in cls.FILE_OPTIONS:
            name = options.get(key)
            if name and not is_template(name) and not (folder / name).is_file():
                raise InvalidOptions(f"{where} option {key!r}: {(folder / name).resolve()} does not exist")

    def land(self, day: dt.date, run_id: str | None) -> dict[str, Any]:
        """Land the source for ``day``; a summary with at least "table" and "rows" (or "events")."""
        raise NotImplementedError

    def lineage_inputs(self, day: dt.date, result: dict[str, Any] | None) -> list:
        """OpenLineage InputDatasets this run read (``result``: what land() returned, None before it ends)."""
        return []

    def lineage_outputs(self, day: dt.date, result: dict[str, Any] | None, full: bool) -> list:
        """OutputDatasets beyond the raw table itself (a quarantine table, the raw zone copy)."""
        return []


class DeliveryKind(Kind):
    """Copies one lakehouse table to a system outside it, after dbt."""

    def __init__(self, pipeline: Any, delivery: Any, options: dict[str, Any]):
        """``pipeline``: the lakehouse.pipeline.Pipeline; ``delivery``: its Delivery; ``options``: parsed."""
        self.pipeline = pipeline
        self.delivery = delivery
        self.options = options

    @classmethod
    def validate(cls, delivery: Any, folder: Path, where: str) -> None:
        cls.parse(delivery.options, where, rendered=False)

    def deliver(self, run_id: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def lineage_output(self, result: dict[str, Any] | None, full: bool):
        """The OpenLineage OutputDataset of the delivered copy (its facets when ``full``)."""
        raise NotImplementedError
