"""Flow: a graph of routines wired event -> slot, with what belongs to a flow.

That is its wires (``Connection``), the process-wide lookup by name (``FlowRegistry``) and
its serialised form (structure and config, never logic; built on ``_serialization``'s
dict helpers). A flow borrows a pool; it owns none.
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from typing import Any

from .._singleton import ProcessWide
from .._validate import check_number
from ._context import WorkerLike
from ._dsl import flow_from_dict, flow_from_yaml
from ._error_handler import ErrorHandler
from ._routine import Event, Routine
from ._serialization import (
    SERIALIZATION_VERSION,
    SUPPORTED_VERSIONS,
    _check_mapping,
    error_handler_from_dict,
    error_handler_to_dict,
    hybridmethod,
)
from ._slot import Slot

logger = logging.getLogger("routilux")

DEFAULT_EXECUTION_TIMEOUT = 300.0  # seconds, per job


class FlowRegistry(ProcessWide):
    """Flows by ``flow_id`` (weakly) and by registered name (strongly).

    ``exec`` and ``post`` resolve a flow name as a registered name first, then as the
    ``flow_id`` of a live Flow.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: weakref.WeakValueDictionary[str, Flow] = weakref.WeakValueDictionary()
        self._by_name: dict[str, Flow] = {}
        self._warned: set[str] = set()  # flow ids whose replacement was logged

    def register(self, flow: Flow) -> None:
        """Register ``flow`` weakly under its ``flow_id`` (a newer flow with the id wins).

        A live, different flow already under that id is replaced: a re-run notebook cell
        is legitimate. That is logged once per id (workers already running keep their own
        flow; new posts by that name go to the new one).
        """
        with self._lock:
            old = self._by_id.get(flow.flow_id)
            self._by_id[flow.flow_id] = flow
            warn = old is not None and old is not flow and flow.flow_id not in self._warned
            if warn:
                self._warned.add(flow.flow_id)
        if warn:
            logger.warning(
                "a new Flow(%r) replaces the live flow with that id: exec/post by that name "
                "now use the new one (running workers keep theirs); give flows distinct ids "
                "to keep both. Said once per id.", flow.flow_id,
            )

    def get(self, flow_id: str) -> Flow | None:
        with self._lock:
            return self._by_id.get(flow_id)

    def register_by_name(self, name: str, flow: Flow, replace: bool = False) -> None:
        """Hold ``flow`` strongly under ``name``.

        Raises:
            ValueError: ``name`` is taken by a different flow and ``replace`` is False.
        """
        if not isinstance(flow, Flow):
            raise TypeError(f"register_by_name needs a Flow, got {type(flow).__name__}")
        with self._lock:
            existing = self._by_name.get(name)
            if existing is not None and existing is not flow and not replace:
                raise ValueError(
                    f"flow name {name!r} is already registered to flow "
                    f"{existing.flow_id!r}; unregister it first or pass replace=True"
                )
            self._by_name[name] = flow

    def get_by_name(self, name: str) -> Flow | None:
        with self._lock:
            return self._by_name.get(name)

    def unregister_by_name(self, name: str) -> bool:
        with self._lock:
            return self._by_name.pop(name, None) is not None

    def unregister(self, flow_id: str) -> bool:
        with self._lock:
            return self._by_id.pop(flow_id, None) is not None

    def resolve(self, name: str) -> Flow | None:
        with self._lock:
            flow = self._by_name.get(name)
            if flow is None:
                flow = self._by_id.get(name)
            return flow

    def lookup(self, flow_name: Any) -> Flow:
        """``flow_name`` itself if it is a Flow, else the flow ``resolve`` finds.

        Raises:
            TypeError: ``flow_name`` is neither a Flow nor a str.
            ValueError: no such flow (the known names are listed).
        """
        if type(flow_name) is str:
            # The common case (once per post), without the lock or WeakValueDictionary's
            # Python-level get: two dict reads, each atomic. Only a live flow found here
            # is returned; anything else takes the locked path below.
            flow = self._by_name.get(flow_name)
            if flow is not None:
                return flow
            ref = self._by_id.data.get(flow_name)
            flow = ref() if ref is not None else None
            if flow is not None:
                return flow
        if isinstance(flow_name, Flow):
            return flow_name
        if not isinstance(flow_name, str):
            raise TypeError(f"flow_name must be a str, got {type(flow_name).__name__}")
        flow = self.resolve(flow_name)
        if flow is None:
            known = self.known_names()
            raise ValueError(
                f"unknown flow {flow_name!r}; known flows: {', '.join(known) or '(none)'}"
            )
        return flow

    def known_names(self) -> list[str]:
        with self._lock:
            return sorted(set(self._by_name) | set(self._by_id.keys()))

    def list_all(self) -> list[Flow]:
        with self._lock:
            seen: dict[int, Flow] = {}
            for flow in list(self._by_name.values()) + list(self._by_id.values()):
                seen.setdefault(id(flow), flow)
            return list(seen.values())

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()
            self._by_name.clear()


def get_flow_registry() -> FlowRegistry:
    return FlowRegistry.get_instance()


class Connection:
    """A wire from an event to a slot; only connections made by ``Flow.connect`` carry data."""

    def __init__(self, source_event: Event | None = None, target_slot: Slot | None = None) -> None:
        self.source_event = source_event
        self.target_slot = target_slot
        self._flow: Flow | None = None

    def disconnect(self) -> None:
        if self._flow is not None:
            self._flow._remove_connection(self)
        elif self.source_event is not None and self.target_slot is not None:
            self.source_event.disconnect(self.target_slot)

    def serialize(self) -> dict[str, Any]:
        """The wire by names (upstream's shape): event and slot, and their routines' ids."""
        data: dict[str, Any] = {"_type": "Connection"}
        ev, slot = self.source_event, self.target_slot
        if ev is not None:
            data["_source_event_name"] = ev.name
            rid = getattr(ev.routine, "_flow_routine_id", None)
            if rid is not None:
                data["_source_routine_id"] = rid
        if slot is not None:
            data["_target_slot_name"] = slot.name
            rid = getattr(slot.routine, "_flow_routine_id", None)
            if rid is not None:
                data["_target_routine_id"] = rid
        return data

    @hybridmethod
    def deserialize(target: Any, data: dict[str, Any]) -> Connection:
        """Keep the names from ``serialize()``; ``Flow.deserialize`` wires them up.

        ``Connection.deserialize(data)`` returns a new, unwired connection;
        ``conn.deserialize(data)`` fills in ``conn``. The names are kept as
        ``_source_routine_id``, ``_source_event_name``, ``_target_routine_id`` and
        ``_target_slot_name`` (what upstream keeps).
        """
        if not isinstance(data, dict):
            raise TypeError(f"Connection.deserialize needs a dict, got {type(data).__name__}")
        conn = target() if isinstance(target, type) else target
        for key in ("_source_routine_id", "_source_event_name", "_target_routine_id",
                    "_target_slot_name"):
            if data.get(key):
                setattr(conn, key, data[key])
        return conn

    def __repr__(self) -> str:
        return f"Connection[{self.source_event!r} -> {self.target_slot!r}]"


def _check_timeout(value: Any) -> float:
    if value is None:
        return DEFAULT_EXECUTION_TIMEOUT
    # NaN never times out and inf never sweeps: both refused (issue 13).
    return check_number("execution_timeout", value, above=0.0, unit=" seconds")  # type: ignore[return-value]


# -- serialised form ---------------------------------------------------------------------------------
def serialize_flow(flow: Flow) -> dict[str, Any]:
    """The flow's structure and configuration as a JSON-ready dict (upstream's shape)."""
    with flow._lock:
        routines = dict(flow.routines)
        connections = list(flow.connections)
    return {
        "_type": "Flow",
        "version": SERIALIZATION_VERSION,
        "flow_id": flow.flow_id,
        "execution_timeout": flow.execution_timeout,
        "error_handler": error_handler_to_dict(flow.error_handler),
        "routines": {rid: routine.serialize() for rid, routine in routines.items()},
        "connections": [conn.serialize() for conn in connections],
    }


def deserialize_flow(target: Any, data: Any) -> Flow:
    """Rebuild a flow from ``serialize()`` output (see the module docstring).

    Raises:
        TypeError: ``data`` is not a dict.
        ValueError: an unsupported ``version``, or a connection naming a routine, event or
            slot the rebuilt routines lack.
    """
    data = _check_mapping(data, "Flow")
    version = data.get("version")
    if version is not None and version not in SUPPORTED_VERSIONS:
        raise ValueError(
            f"cannot deserialize a Flow of serialization version {version!r}; "
            f"supported: {', '.join(map(str, SUPPORTED_VERSIONS))}"
        )
    if isinstance(target, type):
        flow = target(data.get("flow_id"), data.get("execution_timeout"))
    else:
        flow = target
        if data.get("flow_id") is not None and data["flow_id"] != flow.flow_id:
            flow.flow_id = data["flow_id"]
            FlowRegistry.get_instance().register(flow)
        if data.get("execution_timeout") is not None:
            flow.execution_timeout = data["execution_timeout"]
    flow.error_handler = error_handler_from_dict(data.get("error_handler"))
    for rid, rdata in (data.get("routines") or {}).items():
        routine = Routine.deserialize(rdata)
        flow.add_routine(routine, rid)
    for cdata in data.get("connections") or []:
        cdata = _check_mapping(cdata, "Connection")
        ends = [cdata.get(k) for k in ("_source_routine_id", "_source_event_name",
                                       "_target_routine_id", "_target_slot_name")]
        if not all(ends):
            raise ValueError(f"connection {cdata!r} lacks its routine, event or slot names")
        flow.connect(*ends)
    return flow


class Flow:
    """A graph of routines wired event -> slot.

    Args:
        flow_id: the flow's id (also a name ``exec``/``post`` accept); a uuid4 by default.
        execution_timeout: per-job deadline in seconds (default 300): a job not finished
            that long after its post fails with "timed out".
    """

    def __init__(self, flow_id: str | None = None, execution_timeout: float | None = None) -> None:
        self.flow_id = flow_id if flow_id is not None else str(uuid.uuid4())
        self._execution_timeout = _check_timeout(execution_timeout)
        self.routines: dict[str, Routine] = {}
        self.connections: list[Connection] = []
        self.error_handler: ErrorHandler | None = None
        self._lock = threading.Lock()
        # (routine_id, event_name) -> ((target_routine_id, slot_name), ...); replaced, never
        # mutated, so routing reads it without a lock.
        self._routes: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
        self._latest_worker_ref: weakref.ref[WorkerLike] | None = None
        FlowRegistry.get_instance().register(self)

    @property
    def execution_timeout(self) -> float:
        return self._execution_timeout

    @execution_timeout.setter
    def execution_timeout(self, value: float) -> None:
        self._execution_timeout = _check_timeout(value)

    # -- building -----------------------------------------------------------------------
    def add_routine(self, routine: Routine, routine_id: str | None = None) -> str:
        """Add ``routine`` under ``routine_id`` (default: the routine's ``_id``).

        Raises:
            TypeError: ``routine`` is not a Routine.
            ValueError: the id is taken, or the routine already belongs to another flow.
        """
        if not isinstance(routine, Routine):
            raise TypeError(f"add_routine needs a Routine, got {type(routine).__name__}")
        if "_slots" not in routine.__dict__:
            raise TypeError(
                f"{type(routine).__name__}.__init__ must call super().__init__() first"
            )
        rid = routine_id if routine_id is not None else routine._id
        if not isinstance(rid, str) or not rid:
            raise ValueError(f"routine_id must be a non-empty str, got {rid!r}")
        with self._lock:
            if rid in self.routines:
                raise ValueError(f"flow {self.flow_id!r} already has a routine {rid!r}")
            owner = routine._flow
            if owner is not None and owner is not self:
                raise ValueError(
                    f"{routine!r} already belongs to flow {owner.flow_id!r}; "
                    "create a new instance for this flow"
                )
            if owner is self:
                raise ValueError(
                    f"{routine!r} is already in flow {self.flow_id!r} as "
                    f"{routine._flow_routine_id!r}"
                )
            routine.__dict__["_flow_ref"] = weakref.ref(self)
            routine.__dict__["_flow_routine_id"] = rid
            self.routines[rid] = routine
        routine._run_setup()
        return rid

    def _resolve(self, routine_id: str, what: str) -> Routine:
        routine = self.routines.get(routine_id)
        if routine is None:
            raise ValueError(
                f"flow {self.flow_id!r} has no {what} routine {routine_id!r}; routines are: "
                f"{', '.join(self.routines) or '(none)'}"
            )
        return routine

    def connect(
        self, source_routine_id: str, source_event: str, target_routine_id: str, target_slot: str
    ) -> Connection:
        """Wire ``source_routine_id.source_event`` to ``target_routine_id.target_slot``.

        The same pair twice returns the existing connection. Fan-out, fan-in and
        self-loops are allowed; routing changes apply to later deliveries.

        Raises:
            ValueError: a routine, event or slot does not exist (named in the message).
        """
        src = self._resolve(source_routine_id, "source")
        dst = self._resolve(target_routine_id, "target")
        event = src.get_event(source_event)
        if event is None:
            raise ValueError(
                f"routine {source_routine_id!r} has no event {source_event!r}; events are: "
                f"{', '.join(src.events) or '(none)'}"
            )
        slot = dst.get_slot(target_slot)
        if slot is None:
            raise ValueError(
                f"routine {target_routine_id!r} has no slot {target_slot!r}; slots are: "
                f"{', '.join(dst.slots) or '(none)'}"
            )
        with self._lock:
            for conn in self.connections:
                if conn.source_event is event and conn.target_slot is slot:
                    return conn
            conn = Connection(event, slot)
            conn._flow = self
            self.connections.append(conn)
            event.connect(slot)
            self._rebuild_routes()
        return conn

    def _remove_connection(self, conn: Connection) -> None:
        with self._lock:
            if conn in self.connections:
                self.connections.remove(conn)
                if conn.source_event is not None and conn.target_slot is not None:
                    conn.source_event.disconnect(conn.target_slot)
                self._rebuild_routes()

    def _rebuild_routes(self) -> None:
        routes: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for conn in self.connections:
            ev, slot = conn.source_event, conn.target_slot
            if ev is None or slot is None:
                continue
            key = (ev.routine._flow_routine_id, ev.name)
            routes.setdefault(key, []).append((slot.routine._flow_routine_id, slot.name))
        self._routes = {k: tuple(v) for k, v in routes.items()}

    def routes_for(self, routine_id: str, event_name: str) -> tuple[tuple[str, str], ...]:
        return self._routes.get((routine_id, event_name), ())

    # -- queries ------------------------------------------------------------------------
    def get_connections_for_event(self, event: Event) -> list[Connection]:
        return [c for c in self.connections if c.source_event is event]

    def set_error_handler(self, handler: ErrorHandler | None) -> None:
        if handler is not None and not isinstance(handler, ErrorHandler):
            raise TypeError(f"expected an ErrorHandler, got {type(handler).__name__}")
        self.error_handler = handler

    def get_error_handler(self) -> ErrorHandler | None:
        return self.error_handler

    def find_routines_by_type(self, cls: type) -> list[tuple[str, Routine]]:
        return [(rid, r) for rid, r in self.routines.items() if isinstance(r, cls)]

    def validate(self) -> list[str]:
        """Problems found in the wiring, as ``"Warning: ..."`` / ``"Error: ..."`` lines."""
        issues: list[str] = []
        incoming = {id(c.target_slot) for c in self.connections if c.target_slot is not None}
        outgoing = {id(c.source_event) for c in self.connections if c.source_event is not None}
        for rid, routine in self.routines.items():
            if routine.slots and not any(id(s) in incoming for s in routine.slots.values()):
                issues.append(f"Warning: routine {rid!r} has slots but no incoming connection")
            if routine.events and not any(id(e) in outgoing for e in routine.events.values()):
                issues.append(f"Warning: routine {rid!r} has events but no outgoing connection")
        for conn in self.connections:
            if conn.source_event is None or conn.target_slot is None:
                issues.append(f"Error: connection {conn!r} is missing an end")
        return issues

    # Structure and config only; logic stays code (routilux/_model/_serialization.py).
    serialize = serialize_flow
    deserialize = hybridmethod(deserialize_flow)
    # -- the DSL (api.md §7; routilux/_model/_dsl.py) --------------------------------------------
    @classmethod
    def from_dict(cls, spec: Any, factory: Any = None) -> Flow:
        """A Flow built from a spec dict whose routines name ``ObjectFactory`` prototypes.

        Spec keys: ``flow_id``, ``routines: {id: {class, config, error_handler}}``,
        ``connections: [{from: "rid.event", to: "rid.slot"}]``, ``execution: {timeout}``.

        Raises:
            TypeError: ``spec`` is not a mapping.
            ValueError: anything wrong inside it, named by its place in the spec
                (an unregistered factory name included).
        """
        return flow_from_dict(spec, factory, cls)

    @classmethod
    def from_yaml(cls, text: str, factory: Any = None) -> Flow:
        """``Flow.from_dict`` of a YAML document (PyYAML: ``pip install routilux[yaml]``)."""
        return flow_from_yaml(text, factory, cls)

    def _bind_latest_worker(self, worker: WorkerLike) -> None:
        """A runtime started ``worker`` for this flow (held weakly): the compat slot helpers
        (``slot.enqueue`` outside any activation) reach its queues through it."""
        self._latest_worker_ref = weakref.ref(worker)

    def _latest_worker(self) -> WorkerLike | None:
        ref = self._latest_worker_ref
        return ref() if ref is not None else None

    def __repr__(self) -> str:
        return f"<Flow {self.flow_id!r} routines={len(self.routines)}>"
