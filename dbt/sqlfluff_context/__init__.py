"""What dbt puts in a model's Jinja context, for sqlfluff's jinja templater (the library_path of .sqlfluff).

sqlfluff's jinja templater (not its dbt templater: no `dbt compile` per file) loads the root projects'
macros (load_macros_from_path) and gives ref(), source(), config(), var(), this, is_incremental()
(always true) and return(). What else dbt offers is emulated here, so that models render the way
`dbt parse` renders them: execute is false (no query runs, no relation has columns yet), and the
model's YAML declares one column, so that a loop over a model's columns renders its body once.

- Packages: `<package>.<macro>(...)` for every dbt project under dbt/ (the lakehouse package and
  the dbt_utils / dbt_date stand-ins), each with its own macros, loaded on first use: inside a
  package, an unqualified name is that package's macro, as in dbt.
- adapter.dispatch(name, package): duckdb__<name>, else default__<name> (of the package, when given).
- dbt.<macro>(...): dbt's own macros are not loaded; type_string() and its kind give a type name,
  any other renders as a function call of that name (enough to parse: `dbt.hash(...)` -> `hash(...)`).
- ref(), source(), this, api.Relation.create(): relations that are mappings, as dbt's are.
- adapter, target, model, flags, graph, exceptions, log, modules, run_query, env_var, execute.
- var(name, default): the default when one is given (a var the run does not set), else a placeholder.

Every top-level name of this module without a leading "__" becomes a Jinja global (sqlfluff copies
the package's namespace): helpers are "_"-prefixed. This leans on sqlfluff internals
(JinjaTemplater._extract_macros_from_path): check it when sqlfluff is upgraded.
"""

import re as _re
from collections.abc import Mapping as _Mapping
from pathlib import Path as _Path

import yaml as _yaml
from jinja2 import pass_context as _pass_context
from jinja2.exceptions import TemplateRuntimeError as _TemplateRuntimeError
from sqlfluff.core.templaters.builtins.dbt import DbtMacroWrapper as _DbtMacroWrapper
from sqlfluff.core.templaters.builtins.dbt import VarEmulator as _VarEmulator
from sqlfluff.core.templaters.jinja import JinjaTemplater as _JinjaTemplater

_DBT_DIR = _Path(__file__).resolve().parent.parent


class _Package:
    """`name.macro`: the macros of one dbt package, loaded into the rendering environment on first use.

    Item access, not attributes: Jinja's sandbox refuses attributes starting with "_" (as in
    lakehouse._cdc_key_match), and falls back to obj[name] when getattr fails."""

    def __init__(self, name, paths):
        self._name = name
        self._paths = paths
        self._macros = None

    def _load(self, context):
        if self._macros is None:
            env, base = context.environment, dict(_root_globals(context))
            # Two passes, as sqlfluff does for load_macros_from_path: the first finds the names, the
            # second compiles the macros with late-bound references to each other.
            names = _JinjaTemplater._extract_macros_from_path(self._paths, env=env, ctx=base)
            self._macros = {}
            late = {name: _late_bound(self._macros, name) for name in names}
            self._macros.update(_JinjaTemplater._extract_macros_from_path(self._paths, env=env, ctx=base | late))
        return self._macros

    def __getitem__(self, name):
        @_pass_context
        def call(context, *args, **kwargs):
            # A "_" macro is private to its file (Jinja exports no "_" name): it is found in the context
            # of the macro of that file that calls it.
            macro = self._load(context).get(name)
            if macro is None and context.get(name) is not None:
                macro = _DbtMacroWrapper(context[name])  # return() ends that macro, not its caller
            if macro is None:
                raise _TemplateRuntimeError(f"{self._name}.{name}: no such macro in {', '.join(self._paths)}")
            return macro(*args, **kwargs)

        return call


def _late_bound(macros, name):
    return lambda *args, **kwargs: macros[name](*args, **kwargs)


_ROOT = []


def _root_globals(context):
    """The globals of the model being rendered: the first package call always comes from the model
    or a root project's macro, never from inside a package."""
    if not _ROOT:
        _ROOT.append(context.parent)
    return _ROOT[0]


def _packages():
    packages = {}
    for project in sorted(_DBT_DIR.rglob("dbt_project.yml")):
        if {"dbt_packages", "target"} & set(project.parts):
            continue
        config = _yaml.safe_load(project.read_text()) or {}
        paths = [str(project.parent / path) for path in config.get("macro-paths", ["macros"])]
        packages[config["name"]] = _Package(config["name"], [path for path in paths if _Path(path).is_dir()])
    return packages


_PACKAGES = _packages()
globals().update(_PACKAGES)


class _Relation(_Mapping):
    def __init__(self, identifier, schema="main", database="memory", type="table"):
        self.identifier = self.name = self.table = str(identifier)
        self.schema = schema
        self.database = database
        self.type = type
        self.is_cte = False
        self.is_table = type == "table"
        self.is_view = type == "view"

    def _as_dict(self):
        path = {"database": self.database, "schema": self.schema, "identifier": self.identifier}
        return {"metadata": {"type": "DuckDBRelation"}, "path": path, "type": self.type}

    def __getitem__(self, key):
        return self._as_dict()[key]

    def __iter__(self):
        return iter(self._as_dict())

    def __len__(self):
        return len(self._as_dict())

    def __str__(self):
        return self.identifier

    def include(self, **kwargs):
        return self

    def incorporate(self, **kwargs):
        return self

    def quote(self, **kwargs):
        return self

    def render(self):
        return self.identifier


def ref(*args, **kwargs):
    return _Relation(args[-1])


def source(source_name, table_name):
    return _Relation(f"{source_name}_{table_name}")


this = _Relation("this_model")


class _RelationFactory:
    def create(self, database=None, schema=None, identifier=None, type="table", **kwargs):
        return _Relation(identifier, schema or "main", database or "memory", type or "table")


class _Api:
    Relation = _RelationFactory()


api = _Api()


class _Adapter:
    @_pass_context
    def dispatch(self, context, macro_name, macro_namespace=None):
        candidates = [f"{target.type}__{macro_name}", f"default__{macro_name}"]
        if macro_namespace in _PACKAGES:
            macros = _PACKAGES[macro_namespace]._load(context)
            for name in candidates:
                if name in macros:
                    return macros[name]
        if macro_namespace == "dbt":
            return dbt[macro_name]
        for name in [*candidates, macro_name]:
            if context.get(name) is not None:
                return context[name]
        raise _TemplateRuntimeError(f"adapter.dispatch: no macro {macro_name} ({macro_namespace or 'root project'})")

    def get_columns_in_relation(self, relation):
        return []

    def quote(self, identifier):
        return f'"{identifier}"'

    def get_relation(self, database=None, schema=None, identifier=None):
        return None


class _Dbt:
    """dbt's own macros (dbt.type_string(), dbt.hash(...)): enough SQL to parse, not dbt's."""

    _TYPES = {  # noqa: RUF012 - never written
        "type_string": "varchar", "type_int": "integer", "type_bigint": "bigint", "type_float": "double",
        "type_numeric": "numeric", "type_boolean": "boolean", "type_timestamp": "timestamp",
    }

    def __getitem__(self, name):
        if name in self._TYPES:
            return lambda *args, **kwargs: self._TYPES[name]

        def call(*args, **kwargs):
            flat = [item for arg in args for item in (arg if isinstance(arg, list | tuple) else [arg])]
            return f"{name}({', '.join(str(item) for item in flat)})"

        return call


dbt = _Dbt()


class _Target:
    type = "duckdb"
    name = "duckdb"
    schema = "main"
    database = "memory"
    threads = 1


class _Column:
    def __init__(self, name, data_type):
        self.name = self.column = name
        self.data_type = self.dtype = data_type


class _Model:
    """The model's YAML: one declared column, so that loops over a model's columns render their body."""

    name = alias = "model"
    unique_id = "model.project.model"
    columns = {"declared_column": _Column("declared_column", "varchar")}  # noqa: RUF012 - never written
    config = {}  # noqa: RUF012 - never written


class _Flags:
    WHICH = "parse"

    def __getattr__(self, name):
        return None


class _Exceptions:
    def raise_compiler_error(self, message):
        raise _TemplateRuntimeError(message)

    def raise_contract_error(self, yaml_columns, sql_columns):
        raise _TemplateRuntimeError("contract error")

    def warn(self, message):
        return ""


class _Modules:
    re = _re


def _no_default():
    pass


def var(name, default=_no_default):
    return _VarEmulator() if default is _no_default else default


def log(message, info=False):
    return ""


def env_var(name, default=""):
    return default or name


def run_query(sql):
    raise _TemplateRuntimeError("run_query: sqlfluff renders models as `dbt parse` does, with execute = false")


adapter = _Adapter()
target = _Target()
model = _Model()
flags = _Flags()
graph = {"nodes": {}, "sources": {}}
exceptions = _Exceptions()
modules = _Modules()
execute = False
