"""Chrome Trace Event JSON (what Perfetto and chrome://tracing open) from trace rows."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from ._event import TraceEvent, _make_event
from ._jsonl import _FORMAT_NAME, _FORMAT_VERSION


def chrome_trace(rows: Sequence[Sequence[Any]], *, capacity: int, dropped: int, pid: int,
                 path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The rows as a Chrome trace dict (see ``Tracer.to_chrome_trace``), written to ``path``."""
    trace = {
        "traceEvents": _ChromeTrace(pid).build(rows),
        "displayTimeUnit": "ms",
        "otherData": {
            "format": _FORMAT_NAME,
            "version": _FORMAT_VERSION,
            "capacity": capacity,
            "dropped": dropped,
            "first_seq": rows[0][0] if rows else 0,
            "last_seq": rows[-1][0] if rows else 0,
        },
    }
    if path is not None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(trace, fh, default=repr)
    return trace


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
    except (TypeError, ValueError):
        return repr(v)
    return v


class _OpenSlice(NamedTuple):
    ts_ns: int
    key: tuple[Any, ...]
    args: dict[str, Any]


class _ChromeTrace:
    """Turns trace rows into Chrome Trace Event dicts (one use per export)."""

    INSTANT_KINDS = frozenset({"finding", "deadlock.detected", "pool.resize", "pool.autosize",
                               "job.failed"})

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.tids: dict[tuple[int, str], int] = {}  # (ident, thread name) -> track id
        self.tid_by_ident: dict[int, int] = {}  # latest track of each ident
        self.open_tasks: dict[int, list[_OpenSlice]] = {}
        self.open_waits: dict[tuple[int, Any], _OpenSlice] = {}
        self.events: list[dict[str, Any]] = []
        self.origin_ns = 0

    def build(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        rows = list(rows)
        meta: list[dict[str, Any]] = [self._meta("process_name", 0, {"name": "routilux"})]
        if not rows:
            return meta
        self.origin_ns = min(r[1] for r in rows)
        end_ns = max(r[1] for r in rows)
        handlers = {
            "task.started": self._task_started,
            "task.error": self._task_error,
            "task.finished": self._task_finished,
            "lock.wait": self._lock_wait,
            "lock.acquired": self._lock_done,
            "lock.timeout": self._lock_done,
            "queue.depth": self._queue_depth,
        }
        for row in rows:
            event = _make_event(row)
            tid = self._tid(event.thread, event.thread_name)
            handler = handlers.get(event.kind)
            if handler is not None:
                handler(event, tid)
            if event.kind == "deadlock.detected":
                self._deadlock(event, tid)
            if event.kind in self.INSTANT_KINDS:
                self._instant(event, tid)
        for tid, stack in self.open_tasks.items():
            for task in stack:
                self._slice(
                    tid,
                    task.key[0] or "task",
                    "task",
                    task.ts_ns,
                    end_ns,
                    {**task.args, "unfinished": True},
                )
        for (tid, lock), wait in self.open_waits.items():
            self._slice(
                tid, f"wait {lock}", "lock", wait.ts_ns, end_ns, {**wait.args, "unfinished": True}
            )
        for (ident, thread_name), tid in self.tids.items():
            meta.append(self._meta("thread_name", tid, {"name": thread_name, "ident": ident}))
        self.events.sort(key=lambda e: e["ts"])
        return meta + self.events

    def _meta(self, name: str, tid: int, args: dict[str, Any]) -> dict[str, Any]:
        return {"ph": "M", "name": name, "pid": self.pid, "tid": tid, "ts": 0, "args": args}

    def _tid(self, ident: int, thread_name: str) -> int:
        tid = self.tids.get((ident, thread_name))
        if tid is None:
            tid = self.tids[(ident, thread_name)] = len(self.tids) + 1
        self.tid_by_ident[ident] = tid
        return tid

    def _us(self, ts_ns: int) -> float:
        return (ts_ns - self.origin_ns) / 1000.0

    def _slice(
        self, tid: int, name: str, cat: str, start_ns: int, end_ns: int, args: dict[str, Any]
    ) -> None:
        self.events.append(
            {
                "ph": "X",
                "name": name,
                "cat": cat,
                "pid": self.pid,
                "tid": tid,
                "ts": self._us(start_ns),
                "dur": max(0.0, (end_ns - start_ns) / 1000.0),
                "args": args,
            }
        )

    # tasks

    @staticmethod
    def _task_key(e: TraceEvent) -> tuple[Any, ...]:
        return (e.routine, e.job_id, e.name)

    def _task_started(self, e: TraceEvent, tid: int) -> None:
        args = {"job": e.job_id, "slot": e.name, "worker": e.worker_id}
        self.open_tasks.setdefault(tid, []).append(_OpenSlice(e.ts_ns, self._task_key(e), args))

    def _find_task(self, e: TraceEvent, tid: int) -> int | None:
        stack = self.open_tasks.get(tid, [])
        for i in range(len(stack) - 1, -1, -1):
            key = stack[i].key
            if key[0] == e.routine and key[1] == e.job_id and e.name in (None, key[2]):
                return i
        return None

    def _task_error(self, e: TraceEvent, tid: int) -> None:
        i = self._find_task(e, tid)
        if i is not None and e.detail is not None:
            self.open_tasks[tid][i].args["error"] = _jsonable(e.detail)

    def _task_finished(self, e: TraceEvent, tid: int) -> None:
        i = self._find_task(e, tid)
        if i is not None:
            task = self.open_tasks[tid].pop(i)
            start_ns, args = task.ts_ns, task.args
        elif _number(e.value):
            # The start was dropped from the buffer: rebuild it from the run time.
            start_ns = max(self.origin_ns, e.ts_ns - int(e.value * 1e9))  # type: ignore[operator]
            args = {"job": e.job_id, "slot": e.name, "worker": e.worker_id, "start_lost": True}
        else:
            return
        if e.detail is not None:
            args["error"] = _jsonable(e.detail)
        self._slice(tid, e.routine or "task", "task", start_ns, e.ts_ns, args)

    # locks

    def _lock_wait(self, e: TraceEvent, tid: int) -> None:
        args: dict[str, Any] = {"lock": e.name, "job": e.job_id, "routine": e.routine}
        if isinstance(e.detail, dict):
            args["holder"] = _jsonable(e.detail.get("holder"))
            args["holder_name"] = _jsonable(e.detail.get("holder_name"))
        self.open_waits[(tid, e.name)] = _OpenSlice(e.ts_ns, (e.name,), args)

    def _close_wait(self, tid: int, lock: Any, end_ns: int, outcome: str) -> None:
        wait = self.open_waits.pop((tid, lock), None)
        if wait is not None:
            self._slice(
                tid, f"wait {lock}", "lock", wait.ts_ns, end_ns, {**wait.args, "outcome": outcome}
            )

    def _lock_done(self, e: TraceEvent, tid: int) -> None:
        outcome = "acquired" if e.kind == "lock.acquired" else "timeout"
        self._close_wait(tid, e.name, e.ts_ns, outcome)

    def _deadlock(self, e: TraceEvent, tid: int) -> None:
        cycle = e.detail.get("cycle") if isinstance(e.detail, dict) else None
        for entry in cycle if isinstance(cycle, list) else ():
            if not isinstance(entry, dict):
                continue
            ident, thread_name = entry.get("thread"), entry.get("thread_name")
            waiter = self.tids.get((ident, thread_name)) or self.tid_by_ident.get(ident)
            if waiter is not None:
                self._close_wait(waiter, entry.get("waits_for"), e.ts_ns, "deadlock")
        for lock in (e.name or "").split(", "):
            self._close_wait(tid, lock, e.ts_ns, "deadlock")

    # counters and markers

    def _queue_depth(self, e: TraceEvent, tid: int) -> None:
        ts = self._us(e.ts_ns)
        if _number(e.value):
            self.events.append(
                {
                    "ph": "C",
                    "name": "queue",
                    "pid": self.pid,
                    "tid": tid,
                    "ts": ts,
                    "args": {"depth": e.value},
                }
            )
        if isinstance(e.detail, dict):
            args = {k: e.detail[k] for k in ("busy", "size") if _number(e.detail.get(k))}
            if args:
                self.events.append(
                    {
                        "ph": "C",
                        "name": "threads",
                        "pid": self.pid,
                        "tid": tid,
                        "ts": ts,
                        "args": args,
                    }
                )

    def _instant(self, e: TraceEvent, tid: int) -> None:
        args = {
            k: v
            for k, v in (
                ("job", e.job_id),
                ("routine", e.routine),
                ("value", e.value if _number(e.value) else None),
                ("detail", _jsonable(e.detail)),
            )
            if v is not None
        }
        self.events.append(
            {
                "ph": "i",
                "s": "g" if e.kind == "deadlock.detected" else "t",
                "name": e.kind if e.name is None else f"{e.kind}: {e.name}",
                "cat": e.kind.split(".")[0],
                "pid": self.pid,
                "tid": tid,
                "ts": self._us(e.ts_ns),
                "args": args,
            }
        )
