"""Flow: routines and the connections between them. It borrows a pool; it owns none."""

from __future__ import annotations

import threading
import uuid
import weakref
from typing import Any

from . import _serialization
from ._error_handler import ErrorHandler
from ._registry import FlowRegistry
from ._routine import Connection, Event, Routine
from ._validate import check_number

DEFAULT_EXECUTION_TIMEOUT = 300.0  # seconds, per job


def _check_timeout(value: Any) -> float:
    if value is None:
        return DEFAULT_EXECUTION_TIMEOUT
    # NaN never times out and inf never sweeps: both refused (issue 13).
    return check_number("execution_timeout", value, above=0.0, unit=" seconds")  # type: ignore[return-value]


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
        self._latest_worker_ref: weakref.ref[Any] | None = None
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

    def _routine_changed(self, routine: Routine) -> None:
        """A routine of this flow gained a slot: workers create its queue on first use."""

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

    # Structure and config only; logic stays code (routilux/_serialization.py).
    serialize = _serialization.serialize_flow
    deserialize = _serialization.hybridmethod(_serialization.deserialize_flow)
    # -- the DSL (api.md §7; routilux/_dsl.py) --------------------------------------------
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
        from ._dsl import flow_from_dict

        return flow_from_dict(spec, factory)

    @classmethod
    def from_yaml(cls, text: str, factory: Any = None) -> Flow:
        """``Flow.from_dict`` of a YAML document (PyYAML: ``pip install routilux[yaml]``)."""
        from ._dsl import flow_from_yaml

        return flow_from_yaml(text, factory)

    def _latest_worker(self) -> Any:
        ref = self._latest_worker_ref
        return ref() if ref is not None else None

    def __repr__(self) -> str:
        return f"<Flow {self.flow_id!r} routines={len(self.routines)}>"
