"""WorkerState: the long-lived state of one worker, shared by every job it serves.

``WorkerRegistry`` (every live WorkerState by id) lives here too: it holds nothing else.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from .._singleton import ProcessWide
from ._context import WorkerLike, current_activation
from ._serialization import hybridmethod
from ._status import ExecutionStatus

DEFAULT_MAX_EXECUTION_HISTORY = 1000
_FORMAT = "routilux-worker-state"
_STATUS_VALUES = frozenset(s.value for s in ExecutionStatus)


@dataclass
class ExecutionRecord:
    """One entry of a worker's execution history."""

    routine_id: str
    event_name: str
    data: dict[str, Any] = field(default_factory=dict)
    timestamp: datetime = field(default_factory=datetime.now)

    @property
    def action(self) -> str:
        """compat: the docs call ``event_name`` ``action``."""
        return self.event_name

    def to_dict(self) -> dict[str, Any]:
        return {
            "routine_id": self.routine_id,
            "event_name": self.event_name,
            "data": _jsonable(self.data),
            "timestamp": self.timestamp.isoformat(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExecutionRecord:
        ts = d.get("timestamp")
        return cls(
            routine_id=d["routine_id"],
            event_name=d.get("event_name", d.get("action", "")),
            data=dict(d.get("data") or {}),
            timestamp=datetime.fromisoformat(ts) if ts else datetime.now(),
        )


def _jsonable(value: Any) -> Any:
    """History payloads are stringified where JSON cannot hold them (api.md §11)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return repr(value)


class SharedLog(list):
    """A list many routines of one worker append to at once (the docs' ``shared_log``).

    Every mutation holds a lock, so a compound one (``extend``, ``+=``, slice
    assignment) is never interleaved with another; iteration, ``copy()`` and ``str``
    work on a snapshot, so reading while logic appends is safe.
    """

    def __init__(self, items: Any = ()) -> None:
        super().__init__(items)
        self._lock = threading.RLock()

    def _locked(name: str) -> Any:  # builds the locked methods below
        method = getattr(list, name)

        def locked(self: SharedLog, *args: Any) -> Any:
            with self._lock:
                return method(self, *args)

        locked.__name__ = name
        return locked

    append = _locked("append")
    extend = _locked("extend")
    insert = _locked("insert")
    pop = _locked("pop")
    remove = _locked("remove")
    clear = _locked("clear")
    sort = _locked("sort")
    reverse = _locked("reverse")
    __setitem__ = _locked("__setitem__")
    __delitem__ = _locked("__delitem__")
    __iadd__ = _locked("__iadd__")
    del _locked

    def copy(self) -> list[Any]:  # type: ignore[override]
        with self._lock:
            return list.copy(self)

    def __iter__(self) -> Any:
        return iter(self.copy())

    def __repr__(self) -> str:
        return repr(self.copy())

    def __reduce__(self) -> Any:
        return (SharedLog, (self.copy(),))


class WorkerState:
    """The state of one worker: routine states, counters, status and history.

    Every method is atomic. ``get_routine_state`` followed by ``update_routine_state`` is
    not: use ``modify_routine_state`` for exact read-modify-write.
    """

    def __init__(
        self,
        flow_id: str = "",
        worker_id: str | None = None,
        max_execution_history: int = DEFAULT_MAX_EXECUTION_HISTORY,
    ) -> None:
        if not isinstance(max_execution_history, int) or max_execution_history < 10:
            raise ValueError(
                f"max_execution_history must be an int >= 10, got {max_execution_history!r}"
            )
        self._lock = threading.RLock()
        # The live worker (the engine's object) behind this state: a zero-argument callable
        # returning it or None (a weakref, or the remote codec's collector). See _live_worker.
        self._worker_ref: Callable[[], WorkerLike | None] | None = None
        self.flow_id = flow_id
        self.worker_id = worker_id or str(uuid.uuid4())
        self.status: ExecutionStatus = ExecutionStatus.PENDING
        self.routine_states: dict[str, dict[str, Any]] = {}
        self.max_execution_history = max_execution_history
        # Raw (routine_id, event_name, data, epoch_s) tuples or ExecutionRecords: the
        # runtime appends tuples on its hot path (deque.append is atomic), records are
        # built only when someone reads the history.
        self._history: deque[Any] = deque(maxlen=max_execution_history)
        self.jobs_processed = 0
        self.jobs_failed = 0
        now = datetime.now()
        self.created_at = now
        self.updated_at = now
        self.started_at: datetime | None = None
        self.completed_at: datetime | None = None
        self.error: str | None = None
        self.error_traceback: str | None = None
        self.pause_points: list[Any] = []
        self.deferred_events: list[Any] = []
        self.pending_tasks: list[Any] = []
        self.debug_data: dict[str, Any] = {}
        # compat (the docs' tutorials): records every routine of this worker appends to,
        # and a dict they share. Both belong to the worker, so jobs it serves share them.
        self.shared_log: SharedLog = SharedLog()
        self.shared_data: dict[str, Any] = {}
        # Per-(routine, policy) scratch state, e.g. time-interval throttles (freed with us).
        self._policy_state: dict[Any, Any] = {}

    # -- routine state ------------------------------------------------------------------
    def get_routine_state(self, key: str, default: Any = None) -> Any:
        """A shallow copy of the state dict under ``key``, else ``default``."""
        with self._lock:
            state = self.routine_states.get(key)
            return dict(state) if state is not None else default

    def update_routine_state(self, key: str, state: dict[str, Any]) -> None:
        """Replace the state under ``key`` with a shallow copy of ``state``."""
        if not isinstance(state, dict):
            raise TypeError(
                f"routine state for {key!r} must be a dict, got {type(state).__name__}"
            )
        with self._lock:
            self.routine_states[key] = dict(state)
            self.updated_at = datetime.now()

    def modify_routine_state(
        self, key: str, fn: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Exact read-modify-write: ``fn`` gets a copy of the state (``{}`` if new).

        ``fn`` runs under this worker's lock, so concurrent calls never lose an update;
        keep it short and do not block in it.

        Returns:
            A copy of the new state.

        Raises:
            TypeError: ``fn`` returned something that is not a dict.
        """
        with self._lock:
            new = fn(dict(self.routine_states.get(key) or {}))
            if not isinstance(new, dict):
                raise TypeError(
                    f"modify_routine_state({key!r}, fn): fn must return a dict, "
                    f"got {type(new).__name__}"
                )
            self.routine_states[key] = dict(new)
            self.updated_at = datetime.now()
            return dict(new)

    def _merge_routine_state(self, key: str, updates: dict[str, Any]) -> None:
        with self._lock:
            state = dict(self.routine_states.get(key) or {})
            state.update(updates)
            self.routine_states[key] = state
            self.updated_at = datetime.now()

    @property
    def current_routine_id(self) -> str | None:
        """compat: id of the routine whose logic or policy runs in the calling thread."""
        act = current_activation()
        if act is None or act.worker_state is not self:
            return None
        return act.routine_id

    @property
    def _runtime(self) -> Any:
        """compat: the Runtime running this worker, else None.

        Upstream-style logic reads ``getattr(worker_state, "_runtime", None)`` and emits
        only when it is set (``self.emit(..., runtime=rt, worker_state=worker_state)``).
        """
        worker = self._live_worker()
        return worker.runtime if worker is not None else None

    def _bind_worker(self, worker: WorkerLike) -> None:
        """The engine's worker for this state starts (held weakly: the state outlives it)."""
        self._worker_ref = weakref.ref(worker)

    def _live_worker(self) -> WorkerLike | None:
        """The live worker behind this state (what emit and waits go through), else None."""
        ref = self._worker_ref
        return ref() if ref is not None else None

    # -- history ------------------------------------------------------------------------
    @property
    def execution_history(self) -> list[ExecutionRecord]:
        """The most recent ``max_execution_history`` records, oldest first (a copy)."""
        out = []
        for item in list(self._history):
            if isinstance(item, ExecutionRecord):
                out.append(item)
            else:
                rid, name, data, ts = item
                if name == "logic_executed":
                    data = {"policy_message": str(data)}
                elif name in ("event_emit", "emit_dropped"):
                    data = {"event_name": data[0], "data": data[1]}
                out.append(ExecutionRecord(rid, name, dict(data or {}),
                                           datetime.fromtimestamp(ts)))
        return out

    def record_execution(
        self, routine_id: str, event_name: str, data: dict[str, Any] | None = None
    ) -> None:
        self._history.append(ExecutionRecord(routine_id, event_name, dict(data or {})))

    def get_execution_history(self, routine_id: str | None = None) -> list[ExecutionRecord]:
        records = self.execution_history
        if routine_id is not None:
            records = [r for r in records if r.routine_id == routine_id]
        return sorted(records, key=lambda r: r.timestamp)

    def increment_jobs_processed(self, success: bool = True) -> None:
        with self._lock:
            self.jobs_processed += 1
            if not success:
                self.jobs_failed += 1

    def _set_status(self, status: ExecutionStatus) -> None:
        with self._lock:
            self.status = status
            self.updated_at = datetime.now()
            if status == ExecutionStatus.RUNNING and self.started_at is None:
                self.started_at = self.updated_at
            if status in (ExecutionStatus.COMPLETED, ExecutionStatus.CANCELLED):
                self.completed_at = self.updated_at

    # -- persistence --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            for key, state in self.routine_states.items():
                try:
                    json.dumps(state)
                except (TypeError, ValueError) as exc:
                    raise TypeError(
                        f"routine state {key!r} holds a value JSON cannot store ({exc}); "
                        "keep only JSON types (str, int, float, bool, None, list, dict) "
                        "in routine_states"
                    ) from None
            return {
                "format": _FORMAT,
                "version": 1,
                "flow_id": self.flow_id,
                "worker_id": self.worker_id,
                "status": getattr(self.status, "value", self.status),
                "routine_states": json.loads(json.dumps(self.routine_states)),
                "execution_history": [r.to_dict() for r in self.execution_history],
                "max_execution_history": self.max_execution_history,
                "jobs_processed": self.jobs_processed,
                "jobs_failed": self.jobs_failed,
                "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "completed_at": self.completed_at.isoformat() if self.completed_at else None,
                "error": self.error,
                "error_traceback": self.error_traceback,
                "shared_log": _jsonable(self.shared_log.copy()),
                "shared_data": _jsonable(dict(self.shared_data)),
            }

    def serialize(self) -> dict[str, Any]:
        """The state as a JSON-ready dict in upstream's shape (``to_dict`` plus ``_type``).

        Raises:
            TypeError: a routine state holds a non-JSON value (named in the message).
        """
        data = self.to_dict()
        data["_type"] = "WorkerState"
        data["pause_points"] = _jsonable(list(self.pause_points))
        data["deferred_events"] = _jsonable(list(self.deferred_events))
        data["pending_tasks"] = _jsonable(list(self.pending_tasks))
        return data

    @hybridmethod
    def deserialize(target: Any, data: dict[str, Any]) -> WorkerState:
        """Rebuild from ``serialize()`` (or ``to_dict()``) output.

        ``WorkerState.deserialize(data)`` returns a new state; ``ws.deserialize(data)``
        loads ``data`` into ``ws`` (and returns it), as upstream's instance method does.

        Raises:
            TypeError: ``data`` is not a dict.
        """
        if not isinstance(data, dict):
            raise TypeError(f"WorkerState.deserialize needs a dict, got {type(data).__name__}")
        loaded = WorkerState.from_dict(data)
        if isinstance(target, type):
            return loaded
        with target._lock:
            for name, value in loaded.__dict__.items():
                if name not in ("_lock", "_worker_ref"):
                    target.__dict__[name] = value
        return target

    def save(self, filepath: str | os.PathLike[str]) -> None:
        """Write this state as JSON; nothing is written if a value cannot be stored.

        Raises:
            TypeError: a routine state holds a non-JSON value (named in the message).
        """
        payload = json.dumps(self.to_dict(), indent=2)
        path = Path(filepath)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(payload)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WorkerState:
        ws = cls(
            flow_id=d.get("flow_id", ""),
            worker_id=d.get("worker_id"),
            max_execution_history=d.get("max_execution_history", DEFAULT_MAX_EXECUTION_HISTORY),
        )
        status = d.get("status", "pending")
        ws.status = ExecutionStatus(status) if status in _STATUS_VALUES else ExecutionStatus.PENDING
        ws.routine_states = {k: dict(v) for k, v in (d.get("routine_states") or {}).items()}
        for rec in d.get("execution_history") or []:
            ws._history.append(ExecutionRecord.from_dict(rec))
        ws.jobs_processed = int(d.get("jobs_processed", 0))
        ws.jobs_failed = int(d.get("jobs_failed", 0))
        for name in ("created_at", "updated_at", "started_at", "completed_at"):
            if d.get(name):
                setattr(ws, name, datetime.fromisoformat(d[name]))
        ws.error = d.get("error")
        ws.error_traceback = d.get("error_traceback")
        ws.shared_log = SharedLog(d.get("shared_log") or ())
        ws.shared_data = dict(d.get("shared_data") or {})
        for name in ("pause_points", "deferred_events", "pending_tasks"):
            if isinstance(d.get(name), list):
                setattr(ws, name, list(d[name]))
        return ws

    @classmethod
    def load(cls, filepath: str | os.PathLike[str]) -> WorkerState:
        """Read a state written by ``save``.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is not a saved WorkerState.
        """
        path = Path(filepath)
        if not path.exists():
            raise FileNotFoundError(f"no saved WorkerState at {str(path)!r}")
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{str(path)!r} is not a saved WorkerState: {exc}") from None
        if not isinstance(d, dict) or "worker_id" not in d:
            raise ValueError(f"{str(path)!r} is not a saved WorkerState")
        return cls.from_dict(d)

    @staticmethod
    def wait_for_completion(
        flow: Any, worker_state: WorkerState, timeout: float | None = None,
        check_interval: float = 0.1,
    ) -> bool:
        """True once the worker is terminal, or idle with nothing in flight."""
        deadline = time.monotonic() + (3600.0 if timeout is None else timeout)
        worker = worker_state._live_worker()
        while True:
            if worker_state.status in (
                ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED
            ):
                return True
            if worker is not None and worker.wait_idle(min(check_interval, 0.05)):
                return True
            if worker is None and worker_state.status == ExecutionStatus.IDLE:
                return True
            if time.monotonic() >= deadline:
                return False
            if worker is None:
                time.sleep(check_interval)

    def __repr__(self) -> str:
        return f"<WorkerState {self.worker_id} flow={self.flow_id!r} status={self.status}>"


class WorkerRegistry(ProcessWide):
    """Live workers by ``worker_id`` (weakly): every WorkerState a runtime started."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: weakref.WeakValueDictionary[str, WorkerState] = (
            weakref.WeakValueDictionary()
        )

    def register(self, worker_state: WorkerState) -> None:
        with self._lock:
            self._workers[worker_state.worker_id] = worker_state

    def unregister(self, worker_id: str) -> None:
        with self._lock:
            self._workers.pop(worker_id, None)

    def get(self, worker_id: str) -> WorkerState | None:
        with self._lock:
            return self._workers.get(worker_id)

    def list_all(self) -> list[WorkerState]:
        with self._lock:
            return list(self._workers.values())

    def clear(self) -> None:
        with self._lock:
            self._workers.clear()


def get_worker_registry() -> WorkerRegistry:
    return WorkerRegistry.get_instance()
