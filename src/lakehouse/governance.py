"""The governance a pipeline's dbt project declares, published to DataHub on the tables it builds.

For every model that builds a table (a model whose ``dbt_artifacts.node_table`` is a lakehouse table, not
a view or an ephemeral), on ``datahub.dataset_urn('<schema>.<alias>')`` (platform iceberg, the one identity
the assertions and the lineage use), one UPSERT proposal per aspect, built with DataHub's own classes:

- ``datasetProperties``: the model's ``description``, and as customProperties the ``pipeline``, the
  ``dbt_unique_id``, the ``materialization`` and its ``grants``, one property per privilege, the roles
  as declared (``grants.select = "crm_reader,bi_reader"``). DataHub has no aspect for access grants: these are
  documentation of what the delivery applies, not something DataHub enforces or checks;
- ``ownership``: ``meta.owner`` (a string or a list): an e-mail or a name is a corpuser
  (``mce_builder.make_user_urn``), ``group:<name>`` a corpGroup. The type is TECHNICAL_OWNER: the owner
  of a dbt model is the team that maintains the model (DataHub's own dbt source says DATAOWNER, which
  DataHub deprecates in favour of TECHNICAL_OWNER); the source is SOURCE_CONTROL, as the YAML is;
- ``globalTags``: ``config.tags`` as they are (no prefix; nothing added);
- ``editableSchemaMetadata``: the columns' descriptions. DataHub's dbt source puts them in
  ``schemaMetadata``, but on a dataset of its own platform (dbt, linked to the warehouse's as a sibling),
  never on the warehouse's. Here there is one dataset, the Iceberg table's, and its ``schemaMetadata``
  (every column with its type) is the table's own: DataHub's Iceberg source writes it on this very urn,
  and an UPSERT replaces the whole aspect, so one built from the YAML (documented columns only, dbt's
  declared types if any) would wipe the real schema. ``editableSchemaMetadata`` carries documentation
  per column on top of whichever schema is there.

A model gets only what it declares: no owner, no ``ownership``; no tags, no ``globalTags``; no
documented column, no ``editableSchemaMetadata``; ``datasetProperties`` only with a description or
grants (it replaces the whole aspect, so a model that says nothing leaves another source's alone). A
model that declares nothing gets no proposal. What a model stops declaring is not removed from DataHub.
Proposals come in a fixed order: by dataset urn, then by aspect as listed above.

What the lakehouse does NOT enforce. The embedded Iceberg catalog has no access control at all: no
users, no roles, no privileges. dbt's ``grants`` are applied only where a delivery copies a table into
PostgreSQL (lakehouse.grants, on that copy). The lakehouse's own tables are readable by whoever can read
the warehouse files (and the catalog), whatever the grants, owners or tags say.

Delivery is the assertions' (datahub.deliver): to GMS over REST when LAKEHOUSE_DATAHUB_GMS_URL is set,
else a DataHub file ``<home>/datahub/<pipeline>/<run id>.governance.json`` beside the run's assertions
file; a failure raises DataHubPublishError.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datahub.emitter import mce_builder
from datahub.emitter.mcp import MetadataChangeProposalWrapper
from datahub.metadata.schema_classes import (
    DatasetPropertiesClass,
    EditableSchemaFieldInfoClass,
    EditableSchemaMetadataClass,
    GlobalTagsClass,
    OwnerClass,
    OwnershipClass,
    OwnershipSourceClass,
    OwnershipSourceTypeClass,
    OwnershipTypeClass,
    TagAssociationClass,
)

from . import dbt_artifacts
from .datahub import assertions_file, dataset_urn, deliver
from .grants import parse_grants
from .settings import Settings, load_settings

log = logging.getLogger(__name__)

GROUP_PREFIX = "group:"
OWNER_TYPE = OwnershipTypeClass.TECHNICAL_OWNER


def owner_urn(value: str) -> str:
    """'crm-team@example.com' or 'jdoe' -> a corpuser urn; 'group:crm' -> the corpGroup urn of 'crm'."""
    value = value.strip()
    if value.startswith(GROUP_PREFIX):
        return mce_builder.make_group_urn(value[len(GROUP_PREFIX):].strip())
    return mce_builder.make_user_urn(value)


def _owners(unique_id: str, node: dict) -> list[str]:
    meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
    declared = meta.get("owner")
    if declared is None:
        return []
    values = [declared] if isinstance(declared, str) else declared
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{unique_id}: meta.owner must be a name, an e-mail, 'group:<name>', or a list of them; "
                         f"got {declared!r}")  # fmt: skip
    return sorted({owner_urn(v) for v in values if v.strip() and v.strip() != GROUP_PREFIX})


def _text(value: Any) -> str | None:
    """A description as DataHub should show it: None when dbt has none (dbt's default is '')."""
    text = str(value).strip() if value is not None else ""
    return text or None


def _dataset_properties(pipeline_name: str, unique_id: str, node: dict) -> DatasetPropertiesClass | None:
    config = node.get("config") or {}
    grants = parse_grants(config.get("grants") or {}, f"dbt {unique_id} config 'grants'", allow_templates=True)
    description = _text(node.get("description"))
    if description is None and not grants:
        return None
    properties = {"pipeline": pipeline_name, "dbt_unique_id": unique_id,
                  "materialization": str(config.get("materialized") or "")}  # fmt: skip
    # As declared (lower case, as the delivery grants them); an empty list is kept: dbt revokes everyone.
    properties |= {f"grants.{privilege}": ",".join(roles) for privilege, roles in sorted(grants.items())}
    return DatasetPropertiesClass(description=description, customProperties=properties)


def _ownership(unique_id: str, node: dict) -> OwnershipClass | None:
    owners = _owners(unique_id, node)
    source = OwnershipSourceClass(type=OwnershipSourceTypeClass.SOURCE_CONTROL)
    return OwnershipClass(owners=[OwnerClass(owner=o, type=OWNER_TYPE, source=source) for o in owners]) if owners else None


def _tags(node: dict) -> GlobalTagsClass | None:
    tags = sorted({str(t).strip() for t in (node.get("config") or {}).get("tags") or [] if str(t).strip()})
    return GlobalTagsClass(tags=[TagAssociationClass(tag=mce_builder.make_tag_urn(t)) for t in tags]) if tags else None


def _column_docs(node: dict) -> EditableSchemaMetadataClass | None:
    fields = [EditableSchemaFieldInfoClass(fieldPath=column.get("name") or name, description=description)
              for name, column in (node.get("columns") or {}).items()
              if (description := _text(column.get("description")))]  # fmt: skip
    return EditableSchemaMetadataClass(editableSchemaFieldInfo=fields) if fields else None


def governed_models(manifest: dict) -> list[tuple[str, str, dict]]:
    """(table, unique id, node) of every model that builds a table, by table."""
    models = []
    for unique_id, node in (manifest.get("nodes") or {}).items():
        if node.get("resource_type") != "model":
            continue
        if (node.get("config") or {}).get("materialized") in ("view", "ephemeral"):
            continue
        table = dbt_artifacts.node_table(node)
        if table:  # else not a lakehouse table name (a quoted or database-qualified relation)
            models.append((table, unique_id, node))
    return sorted(models, key=lambda m: (dataset_urn(m[0]), m[1]))


@dataclass(frozen=True)
class Governance:
    """The metadata change proposals of a project's governance, and how many datasets they are about."""

    proposals: list[MetadataChangeProposalWrapper]
    datasets: int


def build_governance(pipeline_name: str, manifest: dict) -> Governance:
    """The governance proposals of every table the manifest's models build, each validated by DataHub's classes."""
    proposals: list[MetadataChangeProposalWrapper] = []
    datasets = 0
    for table, unique_id, node in governed_models(manifest):
        aspects = [_dataset_properties(pipeline_name, unique_id, node), _ownership(unique_id, node), _tags(node),
                   _column_docs(node)]  # fmt: skip
        aspects = [a for a in aspects if a is not None]
        datasets += bool(aspects)
        proposals += [MetadataChangeProposalWrapper(entityUrn=dataset_urn(table), aspect=a) for a in aspects]
    for proposal in proposals:
        if not proposal.validate():
            raise ValueError(f"DataHub rejects the {proposal.aspectName} built for {proposal.entityUrn}: {proposal.aspect}")
    return Governance(proposals, datasets)


def governance_file(settings: Settings, pipeline_name: str, run_id: str) -> Path:
    """<home>/datahub/<pipeline>/<run id>.governance.json, beside the run's assertions file."""
    return assertions_file(settings, pipeline_name, run_id).with_suffix(".governance.json")


def run_manifest(pipeline_name: str, run_dir: str | Path) -> dict:
    """The manifest the run used (the DAG keeps one at the top of its run dir), else the pipeline's parsed one."""
    path = Path(run_dir) / "manifest.json"
    return dbt_artifacts.read_json(path) if path.exists() else dbt_artifacts.load_manifest(pipeline_name)


@dataclass(frozen=True)
class PublishedGovernance:
    datasets: int
    proposals: int
    destination: str | None  # the GMS URL (without credentials) or the file written; None: nothing to publish


def publish_governance(pipeline_name: str, run_id: str, run_dir: str | Path, *,
                       settings: Settings | None = None) -> PublishedGovernance:  # fmt: skip
    """Build the governance of the run's manifest and deliver it as the assertions are (GMS, else a file).

    Nothing declared, nothing sent and no file written."""
    settings = settings or load_settings()
    built = build_governance(pipeline_name, run_manifest(pipeline_name, run_dir))
    if not built.proposals:
        return PublishedGovernance(0, 0, None)
    path = governance_file(settings, pipeline_name, run_id)
    destination = deliver(built.proposals, settings, path, what="governance")
    log.info("DataHub: governance of %d datasets (%d proposals) of %s run %s -> %s",
             built.datasets, len(built.proposals), pipeline_name, run_id, destination)  # fmt: skip
    return PublishedGovernance(built.datasets, len(built.proposals), destination)
