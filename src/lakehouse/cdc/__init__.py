"""Change data capture from PostgreSQL into the raw Iceberg table raw.audit_log_dml, exactly once.

Two modes land rows of the same shape (see checkpoint.py): ``audit_log`` reads the trigger-filled
audit_log_dml table, ``logical`` decodes a pgoutput replication slot. In both, the position of the
last landed event is committed in the same Iceberg snapshot as the events, so a crash anywhere
followed by a rerun neither loses nor repeats an event.
"""

from __future__ import annotations

from collections.abc import Callable

MODES = ("audit_log", "logical")
LANDING_TABLE = "raw.audit_log_dml"

# Where a capture can be killed by the fault-injection tests (see capture.py for what each means).
CRASH_POINTS = ("before_write", "after_write_before_checkpoint", "after_commit_before_ack")

CrashHook = Callable[[str], None]


class CaptureError(RuntimeError):
    pass


class InjectedCrash(BaseException):
    """Raised at a crash point; a BaseException so that no ``except Exception`` can swallow the 'kill'."""


def crash_hook(crash_at: str | CrashHook | None) -> CrashHook:
    """A hook called at every crash point: a point name crashes there, a callable decides itself."""
    if crash_at is None:
        return lambda point: None
    if callable(crash_at):
        return crash_at
    if crash_at not in CRASH_POINTS:
        raise CaptureError(f"unknown crash point {crash_at!r}; known points: {', '.join(CRASH_POINTS)}")

    def crash(point: str) -> None:
        if point == crash_at:
            raise InjectedCrash(point)

    return crash
