"""dbt's ``grants`` config (``grants: {select: [role_a, role_b]}``) applied to a table's PostgreSQL copy.

Where the grants come from (``resolve_grants``): the delivery's own ``grants`` option when it has one,
else the ``config.grants`` of the dbt model (seed, snapshot) that builds the delivered table, read from
the pipeline's parsed manifest. No manifest, no such model, or no grants: nothing is granted or revoked.

As dbt does, the config is the complete list of grantees of each privilege it names: a role that holds
one of those privileges on the table and is no longer listed loses it. Privileges the config does not
name are left alone, and so are the table owner and the role that delivers (they are never revoked).
Role names are folded to lower case, as dbt's unquoted ``grant ... to role_a`` makes PostgreSQL do;
``public`` means every role. Roles must exist: ``check_roles`` says which do not, before anything is
written, and ``apply_grants`` runs in the caller's transaction after the rows are.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg2 import sql

from .identifiers import InvalidIdentifier, validate_identifier

PRIVILEGES = ("select", "insert", "update", "delete")
PUBLIC = "public"

Grants = dict[str, tuple[str, ...]]  # privilege -> roles, both lower case


class GrantsError(ValueError):
    pass


def parse_grants(value: Any, where: str, allow_templates: bool = False) -> Grants:
    """``{privilege: role or [roles]}`` checked and normalised; ``allow_templates``: keep "{{ ... }}" roles."""
    if not isinstance(value, dict):
        raise GrantsError(f"{where}: grants must be a mapping of privilege to roles, e.g. {{select: [reporter]}}; "
                          f"got {value!r}")
    grants: Grants = {}
    for privilege, roles in value.items():
        name = str(privilege).strip().lower()
        if name not in PRIVILEGES:
            raise GrantsError(f"{where}: privilege {privilege!r} is not one of {', '.join(PRIVILEGES)}")
        if isinstance(roles, str):
            roles = [roles]
        if not isinstance(roles, (list, tuple)):
            raise GrantsError(f"{where}: the roles of privilege {name!r} must be a list of role names, got {roles!r}")
        checked = []
        for role in roles:
            if allow_templates and isinstance(role, str) and "{{" in role:
                checked.append(role)
                continue
            try:
                checked.append(validate_identifier(role, "role name").lower())
            except InvalidIdentifier as error:
                raise GrantsError(f"{where}: privilege {name!r}: {error}") from None
        grants[name] = tuple(dict.fromkeys([*grants.get(name, ()), *checked]))
    return grants


def model_grants(pipeline_name: str, table: str) -> Grants | None:
    """``config.grants`` of the dbt node that builds ``table`` ('<schema>.<alias>'), or None when unknown."""
    from .dbt_artifacts import load_manifest, manifest_path, node_table

    manifest = load_manifest(pipeline_name)
    if not manifest:
        # Said out loud: a delivery that silently granted nothing would look like a revoked grant.
        logging.getLogger(__name__).warning(
            "no parsed dbt manifest of %s at %s: the grants of %s's model are unknown, none are changed "
            "(the DAG's parse writes it; `lakehouse run` does)", pipeline_name, manifest_path(pipeline_name), table)
        return None
    for unique_id, node in (manifest.get("nodes") or {}).items():
        if node.get("resource_type") in ("model", "seed", "snapshot") and node_table(node) == table:
            return parse_grants((node.get("config") or {}).get("grants") or {}, f"dbt {unique_id} config 'grants'")
    return None


def resolve_grants(pipeline: Any, delivery: Any, option: Any) -> Grants:
    """The grants of a delivery: its ``grants`` option when given (already parsed), else its model's."""
    if option is not None:
        return parse_grants(option, f"deliver '{delivery.name}' option 'grants'")
    return model_grants(pipeline.name, delivery.table) or {}


def _roles(grants: Grants) -> set[str]:
    return {role for roles in grants.values() for role in roles}


def check_roles(cur, grants: Grants, target: str) -> None:
    """Every role the grants name exists on the server; else an error naming them and the table."""
    wanted = _roles(grants) - {PUBLIC}
    if not wanted:
        return
    cur.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (sorted(wanted),))
    missing = sorted(wanted - {name for (name,) in cur.fetchall()})
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise GrantsError(f"grants on {target}: role{'s' if len(missing) > 1 else ''} {names} "
                          f"{'do' if len(missing) > 1 else 'does'} not exist; create the role first "
                          f"(CREATE ROLE {missing[0]}), then rerun. Nothing was changed.")


def _current(cur, relation: str) -> dict[str, set[str]]:
    """privilege -> roles holding it on the relation, leaving out its owner and the current user."""
    cur.execute(
        "SELECT lower(a.privilege_type), coalesce(r.rolname, 'public')"
        " FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee"
        " WHERE c.oid = %s::regclass AND a.grantee <> c.relowner"
        " AND a.grantee <> (SELECT oid FROM pg_roles WHERE rolname = current_user)",
        (relation,),
    )
    held: dict[str, set[str]] = {}
    for privilege, role in cur.fetchall():
        held.setdefault(privilege, set()).add(role)
    return held


def _grantee(role: str) -> sql.Composable:
    return sql.SQL("PUBLIC") if role == PUBLIC else sql.Identifier(role)


def apply_grants(cur, schema: str, table: str, grants: Grants) -> dict[str, list[str]]:
    """Grant what the config lists and revoke what it no longer does; returns {"granted": [...], "revoked": [...]}
    as 'privilege to/from role' lines. Empty grants change nothing."""
    target = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
    held = _current(cur, f'"{schema}"."{table}"') if grants else {}
    changes: dict[str, list[str]] = {"granted": [], "revoked": []}
    for privilege, roles in sorted(grants.items()):
        having = held.get(privilege, set())
        keyword = sql.SQL(privilege.upper())  # one of PRIVILEGES, checked by parse_grants
        for role in sorted(set(roles) - having):
            cur.execute(sql.SQL("GRANT {} ON {} TO {}").format(keyword, target, _grantee(role)))
            changes["granted"].append(f"{privilege} to {role}")
        for role in sorted(having - set(roles)):
            cur.execute(sql.SQL("REVOKE {} ON {} FROM {}").format(keyword, target, _grantee(role)))
            changes["revoked"].append(f"{privilege} from {role}")
    return changes
