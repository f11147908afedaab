"""The long-lived Spark Thrift server: one JVM that every dbt task, query and BI tool talks to.

Starting Spark costs seconds (a JVM, Iceberg's catalog); a dbt task under Cosmos is about one second of
work. So with ``LAKEHOUSE_ENGINE=spark`` the tasks share one HiveThriftServer2 (pyspark's pip package
ships it; started with spark-submit, as ``sbin/start-thriftserver.sh`` would) on 127.0.0.1, configured
with the lakehouse's Iceberg catalog (config.py). dbt-spark reaches it with ``method: thrift``.

::

    lakehouse spark start     # about 5 s; prints host:port
    lakehouse spark status
    lakehouse spark stop

A run on Spark starts it when it is not running and leaves it running for the next run. With
``LAKEHOUSE_SPARK_THRIFT=host:port`` the platform uses your server instead and starts nothing.
Files under ``<LAKEHOUSE_HOME>/spark``: ``spark-defaults.conf`` (the properties, mode 0600: a catalog
password may be in it; never on the command line), ``state.json`` (pid and port while it runs),
``thrift.log``, ``work/`` (its working folder).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..processes import HOST, command_line, file_lock, free_ports, log_tail, pid_alive, read_json, terminate, write_json
from ..settings import Settings, load_settings
from . import jars
from .config import spark_properties

START_TIMEOUT = 180.0  # a first start on a loaded 2-core machine, Iceberg's classes loaded cold
MAIN_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
# PyHive (and so dbt-spark) opens every session with `USE default`: the namespace must exist.
DEFAULT_NAMESPACE = "default"


class SparkServerError(RuntimeError):
    pass


@dataclass
class ServerStatus:
    running: bool
    host: str = HOST
    port: int | None = None
    pid: int | None = None
    external: bool = False
    log_file: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"


def server_dir(settings: Settings) -> Path:
    return settings.home / "spark"


def _paths(settings: Settings) -> dict[str, Path]:
    root = server_dir(settings)
    return {"root": root, "properties": root / "spark-defaults.conf", "state": root / "state.json",
            "log": root / "thrift.log", "lock": root / ".lock", "work": root / "work"}


def _alive(pid: int, properties: Path) -> bool:
    """Whether ``pid`` is this home's Thrift server (not a reused pid)."""
    if not pid_alive(pid):
        return False
    argv = command_line(pid)
    return argv is None or (MAIN_CLASS.encode() in argv and str(properties).encode() in argv)


def _running(settings: Settings) -> dict | None:
    paths = _paths(settings)
    state = read_json(paths["state"])
    pid = state.get("pid")
    return state if isinstance(pid, int) and _alive(pid, paths["properties"]) else None


def _external(settings: Settings) -> tuple[str, int] | None:
    if not settings.spark_thrift:
        return None
    host, _, port = settings.spark_thrift.rpartition(":")
    if not host or not port.isdigit():
        raise SparkServerError(f"LAKEHOUSE_SPARK_THRIFT={settings.spark_thrift!r} is not host:port")
    return host, int(port)


def _write_properties(path: Path, properties: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("# Written by lakehouse spark start from LAKEHOUSE_* settings; edits are replaced.\n")
        for key, value in sorted(properties.items()):
            handle.write(f"{key} {value}\n")
    os.chmod(path, 0o600)


def _spark_home() -> Path:
    return jars.pyspark_jars_dir().parent


def _command(paths: dict[str, Path], port: int) -> list[str]:
    return [str(_spark_home() / "bin" / "spark-submit"), "--properties-file", str(paths["properties"]),
            "--class", MAIN_CLASS, "--name", "lakehouse-thrift",
            "--hiveconf", f"hive.server2.thrift.port={port}", "--hiveconf", f"hive.server2.thrift.bind.host={HOST}",
            "spark-internal"]


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _prepare_catalog(settings: Settings) -> None:
    from ..catalog import get_catalog

    catalog = get_catalog(settings)
    if (DEFAULT_NAMESPACE,) not in catalog.list_namespaces():
        try:
            catalog.create_namespace(DEFAULT_NAMESPACE)
        except Exception as error:  # noqa: BLE001 - a parallel start made it; anything else shows at connect
            if "already exists" not in str(error).lower():
                raise


def start(settings: Settings | None = None) -> ServerStatus:
    """Start this home's Thrift server in the background (a running one is left as it is)."""
    settings = settings or load_settings()
    if _external(settings):
        return status(settings)
    paths = _paths(settings)
    with file_lock(paths["lock"]):
        if _running(settings):
            return status(settings)
        jars.prepare()
        _prepare_catalog(settings)
        _write_properties(paths["properties"], spark_properties(settings))
        paths["work"].mkdir(parents=True, exist_ok=True)
        port = free_ports(1)[0]
        env = {**os.environ, "SPARK_HOME": str(_spark_home()), "SPARK_LOCAL_IP": HOST}
        with open(paths["log"], "a") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} lakehouse spark start: {HOST}:{port}\n")
            log.flush()
            process = subprocess.Popen(_command(paths, port), cwd=paths["work"], env=env, stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None and not _answers(HOST, port):
            time.sleep(0.2)
        if process.poll() is not None or not _answers(HOST, port):
            terminate(process.pid, lambda pid: process.poll() is None)
            raise SparkServerError(f"the Spark Thrift server did not start (log: {paths['log']}):\n{log_tail(paths['log'])}")
        # spark-submit execs the JVM in place (the pid is the server's own).
        write_json(paths["state"], {"pid": process.pid, "port": port, "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return status(settings)


def stop(settings: Settings | None = None) -> bool:
    """Stop this home's Thrift server; False when it was not running."""
    settings = settings or load_settings()
    paths = _paths(settings)
    with file_lock(paths["lock"]):
        running = _running(settings)
        if running:
            terminate(running["pid"], lambda pid: _alive(pid, paths["properties"]))
        paths["state"].unlink(missing_ok=True)
    return running is not None


def status(settings: Settings | None = None) -> ServerStatus:
    settings = settings or load_settings()
    external = _external(settings)
    if external:
        return ServerStatus(running=_answers(*external), host=external[0], port=external[1], external=True)
    paths = _paths(settings)
    running = _running(settings)
    if not running:
        return ServerStatus(running=False, log_file=paths["log"])
    return ServerStatus(running=True, port=running["port"], pid=running["pid"], log_file=paths["log"])


def session_environment(settings: Settings | None = None) -> dict[str, str]:
    """For Spark inside another process (dbt's `spark_session` target): the same properties, read from
    <home>/spark/spark-defaults.conf through SPARK_CONF_DIR, and pyspark's own Spark as SPARK_HOME."""
    settings = settings or load_settings()
    paths = _paths(settings)
    jars.prepare()
    _prepare_catalog(settings)
    _write_properties(paths["properties"], spark_properties(settings))
    return {"SPARK_CONF_DIR": str(paths["root"]), "SPARK_HOME": str(_spark_home()), "SPARK_LOCAL_IP": HOST}


def ensure_running(settings: Settings | None = None) -> ServerStatus:
    """The endpoint to talk to: the user's own, or this home's server, started when it is not running."""
    settings = settings or load_settings()
    state = status(settings)
    if state.external and not state.running:
        raise SparkServerError(f"LAKEHOUSE_SPARK_THRIFT={settings.spark_thrift}: nothing answers there")
    return state if state.running else start(settings)


def connect(settings: Settings | None = None):
    """A PyHive connection to the Thrift server (started when needed)."""
    from pyhive import hive

    state = ensure_running(settings)
    return hive.connect(host=state.host, port=state.port, username="lakehouse", auth="NONE")
