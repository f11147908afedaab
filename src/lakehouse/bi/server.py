"""The embedded BI tool: Apache Superset in its own virtual environment, served on 127.0.0.1.

::

    lakehouse bi start     # first start about 35 s (metadata DB, roles), later ones about 10 s
    lakehouse bi status
    lakehouse bi stop

Superset pins its own SQLAlchemy (1.4), Flask and pandas, which Airflow 3 does not accept, so it lives in
``.venv-bi`` (``make bi`` installs it from requirements-bi.lock) and this module only starts processes
there. Files under ``<LAKEHOUSE_HOME>/bi``: ``superset_config.py``, ``secret_key`` and
``admin_password`` (both 0600; the password is printed once, when it is made), ``superset.db`` (its
metadata: users, dashboards), ``state.json`` (pid and port while it runs), ``superset.log``,
``lakehouse.duckdb`` (what it reads: lakehouse.bi.serving).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..processes import HOST, command_line, file_lock, free_ports, log_tail, pid_alive, read_json, terminate, write_json
from ..settings import REPO_ROOT, Settings, load_settings

START_TIMEOUT = 180.0
ADMIN = "admin"
DEFAULT_PORT = 8088
CONFIG_TEMPLATE = '''\
# Written by `lakehouse bi start` (lakehouse.bi.server); edits are replaced at the next start.
from pathlib import Path

_BI = Path({bi_dir!r})
SECRET_KEY = (_BI / "secret_key").read_text().strip()
SQLALCHEMY_DATABASE_URI = "sqlite:///" + str(_BI / "superset.db")
# Dashboards show the marts of the last run: no result cache to go stale between runs.
CACHE_CONFIG = DATA_CACHE_CONFIG = {{"CACHE_TYPE": "NullCache"}}
FEATURE_FLAGS = {{"DASHBOARD_NATIVE_FILTERS": True}}
# Plain http on 127.0.0.1: no HTTPS redirect; a deployment behind TLS sets its own config.
TALISMAN_ENABLED = False
SESSION_COOKIE_SAMESITE = "Lax"
'''


class BIServerError(RuntimeError):
    pass


@dataclass
class BIStatus:
    running: bool
    url: str = ""
    pid: int | None = None
    log_file: Path | None = None
    password_file: Path | None = None


def bi_dir(settings: Settings) -> Path:
    return settings.home / "bi"


def paths(settings: Settings) -> dict[str, Path]:
    root = bi_dir(settings)
    return {"root": root, "config": root / "superset_config.py", "secret": root / "secret_key",
            "password": root / "admin_password", "state": root / "state.json", "log": root / "superset.log",
            "lock": root / ".lock", "initialized": root / ".initialized"}


def venv() -> Path:
    """Superset's virtual environment: LAKEHOUSE_BI_VENV, else .venv-bi in the repository."""
    return Path(os.environ.get("LAKEHOUSE_BI_VENV") or REPO_ROOT / ".venv-bi")


def _executable(name: str) -> str:
    path = venv() / "bin" / name
    if not path.exists():
        raise BIServerError(f"Superset is not installed ({path} is missing): run `make bi-install`")
    return str(path)


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _environment(files: dict[str, Path]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SUPERSET_", "FLASK_"))}
    return {**env, "SUPERSET_CONFIG_PATH": str(files["config"]), "FLASK_APP": "superset.app:create_app()",
            "PYTHONWARNINGS": "ignore"}


def _superset(files: dict[str, Path], *args: str, stdin: str | None = None) -> None:
    with open(files["log"], "a") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} superset {args[0]}\n")
        log.flush()
        done = subprocess.run([_executable("superset"), *args], env=_environment(files), input=stdin, text=True,
                              stdout=log, stderr=subprocess.STDOUT, cwd=files["root"])
    if done.returncode:
        raise BIServerError(f"superset {' '.join(args[:2])} failed (log: {files['log']}):\n{log_tail(files['log'])}")


def _initialize(files: dict[str, Path]) -> str | None:
    """Metadata DB, the admin user and Superset's roles, once per home; returns a new password, else None."""
    if not files["secret"].exists():
        _write_private(files["secret"], secrets.token_urlsafe(48) + "\n")
    files["config"].write_text(CONFIG_TEMPLATE.format(bi_dir=str(files["root"])))
    if files["initialized"].exists():
        return None
    _superset(files, "db", "upgrade")
    password = secrets.token_urlsafe(18)
    # The password goes in on stdin (Superset's prompt), never on a command line another user can read.
    _superset(files, "fab", "create-admin", "--username", ADMIN, "--firstname", "Lakehouse", "--lastname", "Admin",
              "--email", "admin@localhost", stdin=f"{password}\n{password}\n")
    _write_private(files["password"], password + "\n")
    _superset(files, "init")
    files["initialized"].touch()
    return password


def _alive(pid: int, files: dict[str, Path]) -> bool:
    if not pid_alive(pid):
        return False
    argv = command_line(pid)
    return argv is None or any(b"gunicorn" in part for part in argv)


def _running(settings: Settings) -> dict | None:
    files = paths(settings)
    state = read_json(files["state"])
    pid = state.get("pid")
    return state if isinstance(pid, int) and _alive(pid, files) else None


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _port() -> int:
    value = os.environ.get("LAKEHOUSE_BI_PORT", "")
    if value == "0":
        return free_ports(1)[0]
    return int(value) if value.isdigit() else DEFAULT_PORT


def start(settings: Settings | None = None) -> tuple[BIStatus, str | None]:
    """Start Superset in the background (a running one is kept); returns its status and, on the very
    first start of this home only, the admin password it generated."""
    settings = settings or load_settings()
    files = paths(settings)
    files["root"].mkdir(parents=True, exist_ok=True)
    with file_lock(files["lock"]):
        if _running(settings):
            return status(settings), None
        password = _initialize(files)
        port = _port()
        url = f"http://{HOST}:{port}"
        if _healthy(url):
            raise BIServerError(f"port {port} is taken by another server: set LAKEHOUSE_BI_PORT")
        # One worker process with threads: a dashboard's charts are queried in parallel without a
        # second copy of Superset in memory (about 400 MB each) on a 2-core machine.
        command = [_executable("gunicorn"), "--bind", f"{HOST}:{port}", "--workers", "1", "--threads", "8",
                   "--worker-class", "gthread", "--timeout", "120", "--limit-request-line", "0",
                   "superset.app:create_app()"]
        with open(files["log"], "a") as log:
            log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} lakehouse bi start: {url}\n")
            log.flush()
            process = subprocess.Popen(command, env=_environment(files), cwd=files["root"], stdin=subprocess.DEVNULL,
                                       stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and process.poll() is None and not _healthy(url):
            time.sleep(0.3)
        if process.poll() is not None or not _healthy(url):
            terminate(process.pid, lambda pid: process.poll() is None)
            raise BIServerError(f"Superset did not start (log: {files['log']}):\n{log_tail(files['log'])}")
        write_json(files["state"], {"pid": process.pid, "port": port, "url": url,
                                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return status(settings), password


def stop(settings: Settings | None = None) -> bool:
    """Stop this home's Superset; False when it was not running."""
    settings = settings or load_settings()
    files = paths(settings)
    with file_lock(files["lock"]):
        running = _running(settings)
        if running:
            terminate(running["pid"], lambda pid: _alive(pid, files))
        files["state"].unlink(missing_ok=True)
    return running is not None


def status(settings: Settings | None = None) -> BIStatus:
    settings = settings or load_settings()
    files = paths(settings)
    running = _running(settings)
    if not running:
        return BIStatus(running=False, log_file=files["log"], password_file=files["password"])
    return BIStatus(running=True, url=running["url"], pid=running["pid"], log_file=files["log"],
                    password_file=files["password"])


def admin_password(settings: Settings | None = None) -> str:
    settings = settings or load_settings()
    return paths(settings)["password"].read_text().strip()
