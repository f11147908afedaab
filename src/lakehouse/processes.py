"""Helpers of the embedded servers (PostgreSQL, the S3 server): is a process alive, a log's tail, free ports."""

from __future__ import annotations

import os
import socket
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
