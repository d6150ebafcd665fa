"""Routine: a unit of work, with its ports (``Event`` out; ``Slot`` in, ``_slot``; wires: ``_flow``).

Logic may run concurrently on one routine object (api.md §3), so a routine's instance
attributes are shared by every job. Assigning one while the routine's logic runs is the
"shared mutable state" pitfall: it is recorded as a ``state.write`` trace event, and
raises ``SharedStateError`` under ``Runtime(strict=True)``.
"""

from __future__ import annotations

import functools
import threading
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from . import _serialization
from ._context import _activation, current_activation
from ._error_handler import ErrorHandler, ErrorStrategy
from .._errors import SharedStateError
from ..executors._choice import check_executor_choice
from ._serialization import hybridmethod
from ._slot import Slot, validate_queue_args

if TYPE_CHECKING:
    from ._worker_state import WorkerState


class ExecutionContext(NamedTuple):
    """What a running logic may ask about itself."""

    flow: Any
    worker_state: Any
    routine_id: str | None
    job_context: Any


class Event:
    """A named output of a routine; ``emit`` sends one item to every connected slot."""

    def __init__(
        self, name: str = "", routine: Routine | None = None,
        output_params: list[str] | None = None,
    ) -> None:
        self.name = name
        self.routine = routine
        self.output_params = list(output_params or [])
        self.connected_slots: list[Slot] = []

    def connect(self, slot: Slot) -> None:
        if slot not in self.connected_slots:
            self.connected_slots.append(slot)
            if self not in slot.connected_events:
                slot.connected_events.append(self)

    def disconnect(self, slot: Slot) -> None:
        if slot in self.connected_slots:
            self.connected_slots.remove(slot)
        if self in slot.connected_events:
            slot.connected_events.remove(self)

    def emit(self, runtime: Any = None, worker_state: Any = None, **kwargs: Any) -> None:
        """Same as ``routine.emit(self.name, ...)``."""
        if self.routine is None:
            raise RuntimeError(f"event {self.name!r} belongs to no routine")
        self.routine.emit(self.name, runtime, worker_state, **kwargs)

    def __repr__(self) -> str:
        rid = getattr(self.routine, "_flow_routine_id", None) or getattr(self.routine, "_id", "?")
        return f"Event[{rid}.{self.name}]"


_NO_DEFAULT = object()


def _setup_once(setup: Callable[..., Any]) -> Callable[..., Any]:
    """``setup`` wrapped so that only the first call per instance does the work."""

    @functools.wraps(setup)
    def once(self: Routine, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__
        if d.get("_setup_done"):
            return None
        if d.get("_setup_running"):  # super().setup() inside the first call
            return setup(self, *args, **kwargs)
        d["_setup_running"] = True
        try:
            result = setup(self, *args, **kwargs)
        finally:
            d["_setup_running"] = False
        d["_setup_done"] = True
        return result

    once._routilux_once = True  # type: ignore[attr-defined]
    return once


class Routine:
    """A unit of work with input slots, output events, a logic and an activation policy.

    Subclasses call ``super().__init__()`` first and take no constructor parameters;
    configuration goes through ``set_config``. Declare slots and events in ``__init__``
    or in an optional ``setup(self)`` hook, which runs once.
    """

    def __init__(self) -> None:
        d = self.__dict__
        d["_id"] = hex(id(self))
        d["_slots"] = {}
        d["_events"] = {}
        d["_config"] = {}
        d["_config_lock"] = threading.Lock()
        d["_logic"] = None
        d["_activation_policy"] = None
        d["_error_handler"] = None
        d["_flow_ref"] = None
        d["_flow_routine_id"] = None
        d["_setup_done"] = False
        d["_setup_running"] = False
        d["_version"] = 0  # bumped when logic, policy or slots change (runtime caches plans)
        d["_executor"] = None  # None: the runtime's executor (see set_executor)

    @property
    def _flow(self) -> Any:
        """The Flow this routine was added to (weakly held), else None."""
        ref = self.__dict__.get("_flow_ref")
        return ref() if ref is not None else None

    # Shared mutable state detection: one ContextVar read per assignment.
    def __setattr__(self, name: str, value: Any) -> None:
        act = _activation.get()
        if act is not None and act.routine is self and act.runtime is not None:
            act.runtime._state_write(self, act, name)
            if act.runtime.strict:
                raise SharedStateError(
                    f"routine {act.routine_id!r} assigned self.{name} inside its logic; "
                    "logic runs concurrently on one routine object, so instance attributes "
                    "are shared by every job. Keep per-job values in get_current_job()"
                    ".set_data(...) and counters in worker_state.modify_routine_state(...)"
                )
        object.__setattr__(self, name, value)

    # -- setup --------------------------------------------------------------------------
    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make a subclass's ``setup`` hook run at most once per instance (and remember
        the class, so ``Routine.deserialize`` rebuilds it even when it is local).

        Upstream-style code calls ``routine.setup()`` itself before
        ``flow.add_routine(routine)``, which runs a pending setup too; without this the
        second run would declare every slot again ("already has a slot"). The wrapper
        lets a ``super().setup()`` chain inside the first call run normally.
        """
        super().__init_subclass__(**kwargs)
        _serialization.known_classes[_serialization.class_path(cls)] = cls
        setup = cls.__dict__.get("setup")
        if callable(setup) and not getattr(setup, "_routilux_once", False):
            cls.setup = _setup_once(setup)  # type: ignore[attr-defined]

    def _run_setup(self) -> None:
        """Run a pending ``setup()`` (from ``Flow.add_routine``); a no-op once it ran."""
        if self.__dict__.get("_setup_done"):
            return
        setup = getattr(self, "setup", None)
        if callable(setup):
            setup()
        self.__dict__["_setup_done"] = True

    # -- ports --------------------------------------------------------------------------
    def _rid(self) -> str:
        return self._flow_routine_id or self._id

    def add_slot(
        self, name: str, max_queue_length: int = 1000, watermark: float = 0.8, **kwargs: Any
    ) -> Slot:
        """Declare an input slot.

        Raises:
            ValueError: the name is taken, or the queue arguments are out of range.
            TypeError: a v1 ``handler=`` was given (logic is set with ``set_logic``).
        """
        if "handler" in kwargs:
            raise TypeError(
                "add_slot(handler=...) is the v1 API; declare the slot, then give the "
                "routine its logic with set_logic(fn) or a logic() method"
            )
        if kwargs:
            raise TypeError(f"add_slot() got unexpected arguments: {', '.join(kwargs)}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"slot name must be a non-empty str, got {name!r}")
        if name in self._slots:
            raise ValueError(f"routine {self._rid()!r} already has a slot {name!r}")
        validate_queue_args(max_queue_length, watermark)
        slot = Slot(name, self, max_queue_length, watermark)
        self._slots[name] = slot
        self.__dict__["_version"] += 1  # workers rebuild the plan and create the queue
        return slot

    def define_slot(
        self, name: str, handler: Callable[..., Any] | None = None,
        max_queue_length: int = 1000, watermark: float = 0.8,
    ) -> Slot:
        """Alias of ``add_slot``; a ``handler`` is ignored with a DeprecationWarning."""
        if handler is not None:
            warnings.warn(
                "define_slot(handler=...) is ignored; set the routine's logic instead",
                DeprecationWarning, stacklevel=2,
            )
        return self.add_slot(name, max_queue_length, watermark)

    def add_event(self, name: str, output_params: list[str] | None = None) -> Event:
        """Declare an output event. Raises ValueError if the name is taken."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"event name must be a non-empty str, got {name!r}")
        if name in self._events:
            raise ValueError(f"routine {self._rid()!r} already has an event {name!r}")
        event = Event(name, self, output_params)
        self._events[name] = event
        return event

    def define_event(self, name: str, output_params: list[str] | None = None) -> Event:
        """Alias of ``add_event``."""
        return self.add_event(name, output_params)

    def get_slot(self, name: str) -> Slot | None:
        return self._slots.get(name)

    def get_event(self, name: str) -> Event | None:
        return self._events.get(name)

    @property
    def slots(self) -> dict[str, Slot]:
        return self._slots

    @property
    def events(self) -> dict[str, Event]:
        return self._events

    # -- config -------------------------------------------------------------------------
    def set_config(self, **kwargs: Any) -> None:
        """Merge ``kwargs`` into the config; not allowed inside this routine's own logic."""
        act = current_activation()
        if act is not None and act.routine is self:
            raise RuntimeError(
                f"set_config() called inside routine {act.routine_id!r}'s own running logic; "
                "configure routines before posting, or keep per-job values in the JobContext"
            )
        with self._config_lock:
            self._config.update(kwargs)

    def get_config(self, key: str, default: Any = None) -> Any:
        with self._config_lock:
            return self._config.get(key, default)

    def config(self) -> dict[str, Any]:
        with self._config_lock:
            return dict(self._config)

    def get_all_config(self) -> dict[str, Any]:
        return self.config()

    # -- behaviour ----------------------------------------------------------------------
    def set_logic(self, fn: Callable[..., Any]) -> Routine:
        if not callable(fn):
            raise TypeError(f"logic must be callable, got {type(fn).__name__}")
        self.__dict__["_logic"] = fn
        self.__dict__["_version"] += 1
        return self

    def _get_logic(self) -> Callable[..., Any] | None:
        fn = self._logic
        if fn is not None:
            return fn
        method = getattr(type(self), "logic", None)
        if method is not None and callable(method):
            return getattr(self, "logic")
        return None

    def set_activation_policy(self, policy: Callable[..., Any]) -> Routine:
        if not callable(policy):
            raise TypeError(
                f"an activation policy must be callable (slots, worker_state) -> "
                f"(bool, dict, message), got {type(policy).__name__}"
            )
        self.__dict__["_activation_policy"] = policy
        self.__dict__["_version"] += 1
        return self

    def set_executor(self, executor: Any) -> Routine:
        """Choose where this routine's logic runs; returns ``self``.

        Args:
            executor: ``"threads"`` (the runtime's pool; ``async def`` logic goes to the
                runtime's event loop), ``"asyncio"``, ``"processes"`` (a process pool
                the runtime owns, sized to the CPU count; data must be picklable), an
                ``routilux.executors.Executor`` such as ``DaskExecutor(client)`` (yours to
                shut down), a ``ProcessPoolExecutor``, or ``None`` for the runtime's
                default (``Runtime(executor=...)``, else "threads").

        Raises:
            ValueError / TypeError: anything else (the message lists the choices).
        """
        self.__dict__["_executor"] = check_executor_choice(executor)
        self.__dict__["_version"] += 1
        return self

    def get_executor(self) -> Any:
        """What ``set_executor`` set (``None``: the runtime's default)."""
        return self.__dict__.get("_executor")

    def get_activation_policy_info(self) -> dict[str, Any]:
        policy = self._activation_policy
        if policy is None:
            return {"type": "immediate", "description": "no policy set", "config": {}}
        return {
            "type": getattr(policy, "_policy_type", "custom"),
            "description": getattr(policy, "_policy_description", policy.__doc__ or ""),
            "config": dict(getattr(policy, "_policy_config", {}) or {}),
        }

    def set_error_handler(self, handler: ErrorHandler | None) -> None:
        if handler is not None and not isinstance(handler, ErrorHandler):
            raise TypeError(f"expected an ErrorHandler, got {type(handler).__name__}")
        self.__dict__["_error_handler"] = handler

    def get_error_handler(self) -> ErrorHandler | None:
        return self._error_handler

    def set_as_critical(
        self, max_retries: int = 3, retry_delay: float = 1.0, retry_backoff: float = 2.0
    ) -> None:
        self.set_error_handler(ErrorHandler(
            ErrorStrategy.RETRY, max_retries=max_retries, retry_delay=retry_delay,
            retry_backoff=retry_backoff, is_critical=True,
        ))

    def set_as_optional(self, strategy: ErrorStrategy | str = ErrorStrategy.CONTINUE) -> None:
        self.set_error_handler(ErrorHandler(strategy))

    # -- running ------------------------------------------------------------------------
    def emit(
        self, event_name: str, runtime: Any = None, worker_state: Any = None, **kwargs: Any
    ) -> None:
        """Send one item (the keyword arguments) to every slot connected to ``event_name``.

        Delivery happens in this thread; downstream logic is scheduled on the pool and
        never awaited. A full target does not stop the others; afterwards
        ``SlotQueueFullError`` names the rejected slots.

        Raises:
            ValueError: the routine declares no such event.
            RuntimeError: no worker: called outside a running logic without ``worker_state``.
        """
        if event_name not in self._events:
            raise ValueError(
                f"routine {self._rid()!r} has no event {event_name!r}; events are: "
                f"{', '.join(self._events) or '(none)'}"
            )
        act = _activation.get()
        if (runtime is None and worker_state is None and act is not None
                and act.routine is self and act.worker is not None and "job_state" not in kwargs):
            # The common case: a logic emitting for its own activation.
            act.worker.emit_from(act.routine_id, event_name, kwargs, act.job)
            return
        if runtime is not None and isinstance(runtime, Mapping):
            payload = dict(runtime)
            payload.update(kwargs)
            runtime = None
        else:
            payload = kwargs
        if "job_state" in payload:
            alias = payload.pop("job_state")
            if worker_state is None:
                worker_state = alias
        if worker_state is None and act is not None:
            worker_state = act.worker_state
        if worker_state is None:
            raise RuntimeError(
                f"{self!r}.emit({event_name!r}) has no worker: call emit from a routine's "
                "logic, or pass worker_state=... (threads started by logic do not inherit "
                "the job context)"
            )
        live = getattr(worker_state, "_live_worker", None)
        worker = live() if live is not None else None
        if worker is None:
            raise RuntimeError(
                f"{worker_state!r} is not a live worker of any runtime; exec() or post() first"
            )
        job = act.job if act is not None else None
        worker.emit(self, event_name, payload, job)

    def get_execution_context(self) -> ExecutionContext | None:
        act = current_activation()
        if act is None or act.routine is not self:
            return None
        return ExecutionContext(self._flow, act.worker_state, act.routine_id, act.job)

    # -- state helpers keyed by this routine's id -----------------------------------------
    def get_state(self, worker_state: WorkerState, key: str | None = None, default: Any = None):
        rid = self._flow_routine_id
        if rid is None or worker_state is None:
            return default
        state = worker_state.get_routine_state(rid)
        if state is None:
            return default
        if key is None:
            return state
        return state.get(key, default)

    def set_state(self, worker_state: WorkerState, key: str, value: Any) -> None:
        rid = self._flow_routine_id
        if rid is None or worker_state is None:
            return
        worker_state.modify_routine_state(rid, lambda s: {**s, key: value})

    def update_state(self, worker_state: WorkerState, updates: dict[str, Any]) -> None:
        rid = self._flow_routine_id
        if rid is None or worker_state is None:
            return
        worker_state.modify_routine_state(rid, lambda s: {**s, **updates})

    # -- serialization ------------------------------------------------------------------
    def serialize(self) -> dict[str, Any]:
        """Structure and config as a dict (upstream's keys); logic and policy stay code.

        ``_activation_policy`` and ``_logic`` describe what was set (a built-in policy's
        type and config, the logic's qualified name); ``_class`` lets
        ``Routine.deserialize`` rebuild the same class where it can be imported.
        """
        logic = self._get_logic()
        return {
            "_type": type(self).__name__,
            "_class": _serialization.class_path(type(self)),
            "_id": self._id,
            "_config": self.config(),
            "_error_handler": _serialization.error_handler_to_dict(self._error_handler),
            "_slots": {
                name: {"_type": "Slot", "name": name, "max_queue_length": slot.max_queue_length,
                       "watermark": slot.watermark}
                for name, slot in self._slots.items()
            },
            "_events": {
                name: {"_type": "Event", "name": name, "output_params": list(ev.output_params)}
                for name, ev in self._events.items()
            },
            "_activation_policy": _serialization.policy_to_dict(self._activation_policy),
            "_logic": None if logic is None else getattr(logic, "__qualname__", repr(logic)),
        }

    @hybridmethod
    def deserialize(target: Any, data: dict[str, Any]) -> Routine:
        """Rebuild from ``serialize()`` output; see ``routilux._serialization``.

        ``Routine.deserialize(data)`` returns a new routine (its class when importable,
        else a plain Routine without logic); ``routine.deserialize(data)`` adds the
        missing slots and events, config and error handler to ``routine``.
        """
        return _serialization.rebuild_routine(target, data, Routine)

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{self._id}]"


