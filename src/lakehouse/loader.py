"""The one way the platform finds code named in a declaration: ``module:attribute`` or ``file.py:attribute``.

``module:attribute`` imports an installed module (``lakehouse.kinds.generator:GeneratorIngest``).
``file.py:attribute`` loads a file of the pipeline folder (``generator.py:market_data``), so code that
belongs to one pipeline lives in that pipeline's folder and leaves with it. A file is loaded once per
process as the module ``lakehouse_pipelines.<pipeline>.<stem>`` (registered in sys.modules, so its
dataclasses and pickling work as for any module).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

PIPELINE_PACKAGE = "lakehouse_pipelines"
_SPEC = re.compile(r"^(?P<module>[A-Za-z_][\w.]*|[\w./-]+\.py):(?P<attribute>[A-Za-z_]\w*)$")


class LoadError(ValueError):
    pass


def check_reference(reference: Any, base: Path | None = None, what: str = "callable") -> tuple[str, str]:
    """(module or file, attribute) of a well-formed reference, without importing anything.

    A ``file.py`` reference must exist under ``base`` (the pipeline folder); a module must be findable.
    """
    match = _SPEC.match(str(reference or "").strip())
    if not match:
        raise LoadError(f"{what} {reference!r} must be 'module:function' or 'file.py:function'")
    module, attribute = match["module"], match["attribute"]
    if module.endswith(".py"):
        if base is None:
            raise LoadError(f"{what} {reference!r} names a file, but there is no pipeline folder to find it in")
        path = (Path(base) / module).resolve()
        if not path.is_file():
            raise LoadError(f"{what} {reference!r}: {path} does not exist")
    elif module not in sys.modules:  # (imported already: found, whatever its spec says)
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise LoadError(f"{what} {reference!r}: no module named {module!r}")
    return module, attribute


def load_file_module(path: Path, pipeline: str) -> types.ModuleType:
    """The module of a pipeline's Python file, loaded once per process."""
    path = Path(path).resolve()
    name = f"{PIPELINE_PACKAGE}.{pipeline}.{path.stem}"
    module = sys.modules.get(name)
    if module is not None and Path(getattr(module, "__file__", "")) == path:
        return module
    for package in (PIPELINE_PACKAGE, f"{PIPELINE_PACKAGE}.{pipeline}"):
        if package not in sys.modules:  # namespace parents, so the dotted name resolves
            parent = types.ModuleType(package)
            parent.__path__ = []
            sys.modules[package] = parent
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def load_reference(reference: Any, base: Path | None = None, what: str = "callable") -> Any:
    """The object a reference names (see the module docstring); a clear error when it is missing."""
    module_name, attribute = check_reference(reference, base, what)
    if module_name.endswith(".py"):
        base = Path(base).resolve()
        module = load_file_module(base / module_name, base.name)
    else:
        module = importlib.import_module(module_name)
    found = getattr(module, attribute, None)
    if found is None:
        raise LoadError(f"{what} {reference!r}: {module_name} has no {attribute!r}")
    return found


def load_callable(reference: Any, base: Path | None = None, what: str = "callable") -> Any:
    function = load_reference(reference, base, what)
    if not callable(function):
        raise LoadError(f"{what} {reference!r} is not callable")
    return function


def pipeline_module(pipeline: str, stem: str = "generator") -> types.ModuleType:
    """A Python file of a pipeline folder as a module (``pipeline_module("orders_cdc")``: its generator)."""
    from .settings import load_settings

    path = load_settings().pipelines_dir / pipeline / f"{stem}.py"
    if not path.is_file():
        raise LoadError(f"{path} does not exist")
    return load_file_module(path, pipeline)
