"""Helpers of the embedded servers (PostgreSQL, the S3 server, Spark's Thrift server): is a process alive,
stop it, a log's tail, free ports, a lock and a state file per server."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

HOST = "127.0.0.1"


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie does not: a daemonised server is re-parented to PID 1, which in a
    container may never reap it, and kill(pid, 0) would report it alive forever."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc (macOS)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # alive, owned by another account (the server's)
        return True


def command_line(pid: int) -> list[bytes] | None:
    """The process's argv, or None where /proc is not there to tell."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None


def log_tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_ports(count: int = 1, host: str = HOST) -> list[int]:
    """``count`` distinct free ports: all held open at once so the kernel cannot hand one out twice."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def file_lock(path: Path):
    """One start or stop of a server at a time, across processes (an exclusive flock on ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json(path: Path) -> dict:
    """A server's state file, or {} when it is missing or cut short."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def write_json(path: Path, data: dict) -> None:
    """Write a state file atomically: a reader sees the old one or the new one, never half of one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(path)


def terminate(pid: int, alive: Callable[[int], bool], timeout: float = 30.0) -> None:
    """SIGTERM, wait up to ``timeout`` for it to finish, SIGKILL if it will not (``alive`` says whether it runs)."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if not alive(pid):
            break
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and alive(pid):
            time.sleep(0.05)
