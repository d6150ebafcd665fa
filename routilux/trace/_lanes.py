"""Lanes: where a task ran (a pool thread, an in-process executor's thread, another process)."""

from __future__ import annotations

from typing import Any

LOOP_THREAD_NAME = "RoutiluxAsyncLoop"
"""Default name of the event-loop thread that runs coroutine logic (its trace lane)."""

POOL_THREAD_PREFIX = "RoutiluxThread"
"""Pool threads are named ``f"{POOL_THREAD_PREFIX}-<n>"`` (the shared pool's
``f"{POOL_THREAD_PREFIX}-shared-<n>"``): the ``thread_name`` of their trace lane."""

LANE_POOL, LANE_EXECUTOR, LANE_REMOTE = "pool", "executor", "remote"
LANES: tuple[str, ...] = (LANE_POOL, LANE_EXECUTOR, LANE_REMOTE)
"""Where a task ran: on a pool thread, on an in-process executor's thread (the event loop:
coroutines overlap there and hold no pool thread), or in another process or host."""

_REMOTE_IDENT = 1 << 48  # remote lanes use idents from here up (_engine/_wire.py)


def _lane_of(thread: int, thread_name: str, detail: Any) -> str:
    """The lane of a task from its ``task.started`` (or, lacking one, ``task.finished``)."""
    if isinstance(detail, dict) and "executor" in detail:
        remote = detail.get("pid") is not None or detail.get("address") is not None
        return LANE_REMOTE if remote else LANE_EXECUTOR
    if thread >= _REMOTE_IDENT:
        return LANE_REMOTE
    if thread_name.startswith(LOOP_THREAD_NAME):
        return LANE_EXECUTOR  # a trace recorded before task.started named its executor
    return LANE_POOL
