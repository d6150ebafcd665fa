"""The activation codec: ship one activation to another process and bring its effects back.

Both ends live here. Executors never import this module: the runtime hands its entry points
to them on each ``TaskSpec`` (``to_bytes`` = ``encode_activation``, ``remote_call`` =
``run_remote``, ``outcome(reply)`` = ``outcome_from_bytes``), because the codec must know
the model (routines, jobs, worker state) and executors are plug-ins below it. ``encode_activation`` (this process) pickles what a logic call needs;
``run_remote`` (a process-pool child or a Dask worker) rebuilds it, runs the logic with an
emit collector bound as its worker, and pickles the reply; ``outcome_from_bytes`` (back
here) turns the reply into a ``TaskOutcome``.

What travels, and as what (the runtime's live objects never leave this process):
- a ``Routine`` (the logic's ``self``, or one captured by a closure) -> a copy of its class
  with its instance attributes, config, and event/slot *names*; no queues, no flow;
- the ``WorkerState`` -> a snapshot with the same ids and a copy of ``routine_states``;
  writes to it stay there;
- the ``JobContext`` -> a copy (id, metadata, data); keys set with ``set_data`` travel back
  and are applied to the real job; ``complete(...)`` stays remote;
- everything else (the logic, slot data, policy message, closure variables) is pickled
  as is, with cloudpickle when it is installed (lambdas, notebook functions) else pickle.

Pickling walks ``reducer_override``, which the C pickler skips for plain ints, strs,
lists and dicts, so large plain payloads cost no Python call per element.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import os
import pickle
import sys
import threading
import time
import traceback
import zlib
from typing import Any

from .._model._context import Activation, _activation
from .._model._job import JobContext
from .._model._routine import Routine
from .._model._worker_state import WorkerState
from ..executors._base import RemoteLogicError, RemoteTiming, TaskOutcome
from ._calling import make_caller

__all__ = ["encode_activation", "outcome_from_bytes", "run_remote"]

_PROTOCOL = 5
_FORMAT = 1  # bump when the spec or reply layout changes

# Of the attributes ``Routine.__init__`` sets, these travel; the rest (queues, locks,
# wiring, behaviour, and whatever the base class gains later) stay with the live routine.
# Attributes a subclass adds travel too: they are the user's.
_ROUTINE_SHIPPED = frozenset({"_id", "_flow_routine_id", "_version", "_setup_done"})
_ROUTINE_LOCAL = frozenset(Routine().__dict__) - _ROUTINE_SHIPPED

# Importing this module loads cloudpickle (the module costs about 5 ms in all): the engine
# imports it on the first remote activation (_offload.py), not with routilux.
try:  # cloudpickle pickles lambdas and functions/classes of __main__ (notebooks) by value
    import cloudpickle as _cloudpickle

    _BasePickler: Any = _cloudpickle.Pickler
except ImportError:  # pragma: no cover - cloudpickle ships with dask
    _cloudpickle = None
    _BasePickler = pickle.Pickler


class _RemoteTraceback(Exception):
    """Carries the remote traceback text as the local exception's ``__cause__``."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb}"""'


# -- this process: encode ---------------------------------------------------------------
def _routine_state(obj: Routine) -> dict[str, Any]:
    d = obj.__dict__
    state = {k: v for k, v in d.items() if k not in _ROUTINE_LOCAL}
    state["_events"] = dict.fromkeys(d.get("_events", ()))
    state["_slots"] = dict.fromkeys(d.get("_slots", ()))
    lock = d.get("_config_lock")
    if lock is not None:
        with lock:
            state["_config"] = dict(d.get("_config", {}))
    else:
        state["_config"] = dict(d.get("_config", {}))
    return state


def _reduce(obj: Any) -> Any:
    if isinstance(obj, Routine):
        return _rebuild_routine, (type(obj), _routine_state(obj))
    if isinstance(obj, WorkerState):
        with obj._lock:
            states = {k: dict(v) for k, v in obj.routine_states.items()}
        return _rebuild_worker_state, (obj.flow_id, obj.worker_id, states)
    if isinstance(obj, JobContext):
        with obj._lock:
            metadata, data = dict(obj.metadata), dict(obj.data)
        return _rebuild_job, (obj.job_id, obj.worker_id, obj.flow_id, metadata, data,
                              str(obj.status))
    return NotImplemented


class _Pickler(_BasePickler):  # type: ignore[misc, valid-type]
    def reducer_override(self, obj: Any) -> Any:
        reduced = _reduce(obj)
        if reduced is not NotImplemented:
            return reduced
        if _cloudpickle is not None:
            return super().reducer_override(obj)
        return NotImplemented


def _dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=_PROTOCOL).dump(obj)
    return buf.getvalue()


def encode_activation(
    *, routine_id: str, slot: str, slot_names: list[str], logic: Any, data: dict[str, list],
    msg: Any, routine: Routine, job: JobContext | None, worker_state: WorkerState,
    target: str,
) -> bytes:
    """The pickle ``run_remote`` runs.

    Raises:
        TypeError: a part cannot be pickled; the message names the routine and the part.
    """
    spec = {
        "format": _FORMAT, "rid": routine_id, "slot": slot, "slots": list(slot_names),
        "logic": logic, "data": data, "msg": msg, "routine": routine, "job": job,
        "ws": worker_state,
    }
    try:
        return _dumps(spec)
    except Exception as exc:
        where, why = _find_unpicklable(spec, routine, job, worker_state, exc)
        raise TypeError(
            f"routine {routine_id!r} cannot run on {target}: {where} is not picklable "
            f"({why}). Logic that runs in another process gets a pickled copy of what it "
            "uses: keep locks, sockets, files and clients out of slot data, job data and "
            "the routine's attributes, or open them inside the logic (docs/executors.md)"
        ) from exc


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _try(obj: Any) -> BaseException | None:
    try:
        _dumps(obj)
    except Exception as exc:
        return exc
    return None


def _find_unpicklable(spec: dict[str, Any], routine: Routine, job: JobContext | None,
                      ws: WorkerState, fallback: BaseException) -> tuple[str, str]:
    """Name the first part of an activation that does not pickle, as precisely as we can."""
    candidates: list[tuple[str, Any]] = []
    for name, items in spec["data"].items():
        for i, item in enumerate(items):
            if isinstance(item, dict):
                candidates += [(f"slot {name!r} item {i} key {k!r}", v) for k, v in item.items()]
            else:
                candidates.append((f"slot {name!r} item {i}", item))
    candidates.append(("the policy message", spec["msg"]))
    if job is not None:
        candidates += [(f"job metadata key {k!r}", v) for k, v in dict(job.metadata).items()]
        candidates += [(f"job data key {k!r}", v) for k, v in dict(job.data).items()]
    candidates += [(f"worker_state.routine_states[{k!r}]", v)
                   for k, v in dict(ws.routine_states).items()]
    candidates += [(f"routine attribute self.{k}", v) for k, v in routine.__dict__.items()
                   if k not in _ROUTINE_LOCAL]
    candidates += [(f"routine config key {k!r}", v) for k, v in routine.config().items()]
    candidates += _function_parts(spec["logic"])
    candidates.append(("the logic", spec["logic"]))
    for label, value in candidates:
        exc = _try(value)
        if exc is not None:
            return f"{label} ({type(value).__name__})", _why(exc)
    return "the activation", _why(fallback)


def _function_parts(fn: Any) -> list[tuple[str, Any]]:
    """Closure variables and (for functions pickled by value) globals a logic uses."""
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    parts: list[tuple[str, Any]] = []
    for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
        try:
            parts.append((f"the logic's closure variable {name!r}", cell.cell_contents))
        except ValueError:  # an empty cell
            continue
    if getattr(fn, "__module__", None) == "__main__":
        g = fn.__globals__
        parts += [(f"the global {n!r} the logic uses", g[n]) for n in code.co_names if n in g
                  and not inspect.ismodule(g[n])]
    return parts


# -- the other process: run -------------------------------------------------------------
_local = threading.local()


class _Collector:
    """Stands in for the runtime's worker while a remote logic runs: collects emits."""

    __slots__ = ("items", "__weakref__")  # a WorkerState holds its worker weakly

    def __init__(self) -> None:
        self.items: list[tuple[str, str, dict[str, Any]]] = []

    def emit_from(self, rid: str, event_name: str, payload: dict[str, Any], job: Any) -> None:
        self.items.append((rid, event_name, dict(payload)))

    def emit(self, routine: Routine, event_name: str, payload: dict[str, Any], job: Any) -> None:
        rid = routine.__dict__.get("_flow_routine_id") or routine.__dict__.get("_id")
        self.items.append((rid, event_name, dict(payload)))


class _RemoteJob(JobContext):
    """A job copy that remembers which keys the logic set."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self._written: dict[str, Any] = {}

    def set_data(self, key: str, value: Any) -> None:
        super().set_data(key, value)
        with self._lock:
            self._written[key] = value


def _rebuild_routine(cls: type, state: dict[str, Any]) -> Routine:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    obj.__dict__["_config_lock"] = threading.Lock()
    obj.__dict__.setdefault("_flow_ref", None)
    return obj


def _rebuild_worker_state(flow_id: str, worker_id: str, states: dict[str, Any]) -> WorkerState:
    ws = WorkerState(flow_id, worker_id=worker_id)
    ws.routine_states.update(states)
    collector = getattr(_local, "collector", None)
    if collector is not None:  # the running remote call's emits go to its collector
        ws._bind_worker(collector)
    return ws


def _rebuild_job(job_id: str, worker_id: str, flow_id: str, metadata: dict[str, Any],
                 data: dict[str, Any], status: str) -> JobContext:
    return _RemoteJob(job_id=job_id, worker_id=worker_id, flow_id=flow_id, metadata=metadata,
                      data=data, status=status)


_thread_numbers: dict[int, int] = {}  # this process's threads, numbered as first seen


def _where() -> tuple[str, int, str | None, str]:
    """(lane name, lane number, Dask worker address or None, thread name) of this thread."""
    thread = threading.current_thread()
    address = None
    # On a Dask worker distributed is loaded already; never import it here (a process-pool
    # child would pay seconds for it).
    distributed = sys.modules.get("distributed")
    if distributed is not None:
        try:
            address = distributed.get_worker().address
        except (AttributeError, ValueError):  # not on a Dask worker thread
            address = None
    if address is not None:
        # Short enough for a lane label: "Dask 10.0.0.5:40123/1" (worker address, thread).
        number = _thread_numbers.setdefault(thread.ident or 0, len(_thread_numbers) + 1)
        lane = f"Dask {address.removeprefix('tcp://')}/{number}"
    else:
        lane = f"RoutiluxProcess-{os.getpid()}"
        if thread is not threading.main_thread():
            lane += f" {thread.name}"
    # A number unique to the lane, far from local thread idents (trace readers key lanes
    # by (number, name) anyway).
    return lane, (1 << 48) | zlib.crc32(lane.encode()), address, thread.name


async def _await(awaitable: Any) -> Any:
    return await awaitable


def run_remote(payload: bytes) -> bytes:
    """Run one activation encoded by ``encode_activation``; returns the pickled reply.

    Never raises for the logic's own errors: they travel back in the reply.
    """
    start_wall = time.time_ns()
    start = time.perf_counter_ns()
    collector = _Collector()
    _local.collector = collector
    error: BaseException | None = None
    job: Any = None
    try:
        spec = pickle.loads(payload)
        job = spec["job"]
        ws = spec["ws"]
        act = Activation(job=job, worker_state=ws, routine_id=spec["rid"],
                         routine=spec["routine"], runtime=None, worker=collector)
        token = _activation.set(act)
        try:
            result = make_caller(spec["logic"], spec["slots"])(spec["data"], spec["msg"], ws)
            if inspect.isawaitable(result):
                asyncio.run(_await(result))
        finally:
            _activation.reset(token)
    except BaseException as exc:  # the logic's error (or a bad spec): reported, not raised
        error = exc
    finally:
        _local.collector = None
    duration = time.perf_counter_ns() - start
    lane, thread, address, thread_name = _where()
    reply = {
        "format": _FORMAT, "error": None, "tb": None, "emits": collector.items,
        "job_data": dict(getattr(job, "_written", {}) or {}),
        "timing": (start_wall, duration, lane, thread, address, os.getpid(), thread_name),
    }
    if error is not None:
        reply["tb"] = "".join(traceback.format_exception(error))
        reply["error"] = error if _try(error) is None else RemoteLogicError(_why(error))
    try:
        return _dumps(reply)
    except Exception as exc:
        where = "the reply"
        for label, value in ([(f"the payload of emit #{i} ({ev!r})", p)
                              for i, (_, ev, p) in enumerate(collector.items)]
                             + [(f"job data key {k!r}", v) for k, v in reply["job_data"].items()]):
            if _try(value) is not None:
                where = label
                break
        reply.update(emits=[], job_data={}, tb=reply["tb"], error=TypeError(
            f"{where} cannot be sent back from the remote logic: {_why(exc)}; emitted "
            "values and job data must be picklable"))
        return _dumps(reply)


# -- this process: decode ---------------------------------------------------------------
def outcome_from_bytes(reply: bytes) -> TaskOutcome:
    """The ``TaskOutcome`` for a reply of ``run_remote``."""
    data = pickle.loads(reply)
    if data.get("format") != _FORMAT:
        raise RuntimeError(
            f"reply format {data.get('format')!r} from a remote routilux differs from this "
            f"one's ({_FORMAT}); install the same routilux version on the workers"
        )
    error = data["error"]
    if error is not None and data.get("tb"):
        error.__cause__ = _RemoteTraceback(data["tb"])
    start_wall, duration, lane, thread, address, pid, thread_name = data["timing"]
    return TaskOutcome(
        error=error, emits=data["emits"], job_data=data["job_data"],
        remote=RemoteTiming(start_wall, duration, lane, thread, address, pid, thread_name),
    )
