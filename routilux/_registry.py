"""FlowRegistry and WorkerRegistry: process-wide lookups by name and id."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import TYPE_CHECKING

from ._singleton import ProcessWide

if TYPE_CHECKING:
    from ._flow import Flow
    from ._worker_state import WorkerState

logger = logging.getLogger("routilux")


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
        from ._flow import Flow

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


