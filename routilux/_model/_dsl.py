"""The flow DSL (api.md §7): ``Flow.from_dict`` / ``Flow.from_yaml`` over an ``ObjectFactory``.

A spec names routines by *factory name*, never by import path: logic and policies are
code, so a spec can only rebuild routines whose prototypes the program registered
(``ObjectFactory.get_instance().register("parser", Parser)``). Nothing in a spec is
imported or evaluated, and YAML is read with ``yaml.safe_load``.

Spec::

    flow_id: etl                      # optional; a uuid4 by default
    routines:
      src:  {class: reader, config: {path: in.csv}}
      work: {class: parser, error_handler: {strategy: retry, max_retries: 2}}
    connections:
      - {from: src.out, to: work.in}
    execution: {timeout: 60}          # the flow's execution_timeout, seconds

Every problem is a ``ValueError`` that names where it is (``routines.work.config``,
``connections[0].to``) and what is valid. The spec is read in full before the Flow is
built, so most mistakes leave nothing behind; a wiring mistake found by ``connect``
drops the half-built Flow (it was registered weakly only).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._error_handler import ErrorHandler
from ._routine import Routine
from .._singleton import ProcessWide

__all__ = ["ObjectFactory", "ObjectMetadata", "flow_from_dict", "flow_from_yaml"]

_SPEC_KEYS = ("flow_id", "routines", "connections", "execution")
_ROUTINE_KEYS = ("class", "config", "error_handler")
_HANDLER_KEYS = ("strategy", "max_retries", "retry_delay", "retry_backoff", "is_critical")
_CONNECTION_KEYS = ("from", "to")
_EXECUTION_KEYS = ("timeout",)


@dataclass
class ObjectMetadata:
    """What ``ObjectFactory.list_available`` reports about one registered prototype."""

    name: str
    description: str = ""
    category: str = ""
    tags: list[str] = field(default_factory=list)
    example_config: dict[str, Any] = field(default_factory=dict)
    version: str = "1.0.0"


@dataclass
class _Prototype:
    cls: type[Routine]
    metadata: ObjectMetadata
    instance: Routine | None = None  # an instance prototype: copied on create


class ObjectFactory(ProcessWide):
    """Named routine prototypes, so specs (and deserialisation) can rebuild routines.

    A prototype is a ``Routine`` subclass (``create`` calls ``cls()``) or a configured
    ``Routine`` instance (``create`` makes a fresh object of its class and copies its
    slots, events, config, logic, activation policy and error handler onto it). One
    process-wide instance: ``ObjectFactory.get_instance()``. Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._prototypes: dict[str, _Prototype] = {}

    def register(self, name: str, prototype: type[Routine] | Routine, description: str = "",
                 metadata: ObjectMetadata | None = None) -> None:
        """Register ``prototype`` under ``name``.

        Raises:
            ValueError: ``name`` is taken or empty.
            TypeError: ``prototype`` is neither a Routine subclass nor a Routine.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"prototype name must be a non-empty str, got {name!r}")
        if isinstance(prototype, type) and issubclass(prototype, Routine):
            proto = _Prototype(prototype, metadata or ObjectMetadata(name, description))
        elif isinstance(prototype, Routine):
            proto = _Prototype(type(prototype), metadata or ObjectMetadata(name, description),
                               prototype)
        else:
            raise TypeError(
                f"prototype {name!r} must be a Routine subclass or a Routine instance, "
                f"got {prototype!r}"
            )
        with self._lock:
            if name in self._prototypes:
                raise ValueError(f"prototype {name!r} is already registered; unregister it "
                                 "first to replace it")
            self._prototypes[name] = proto

    def unregister(self, name: str) -> None:
        with self._lock:
            if self._prototypes.pop(name, None) is None:
                raise ValueError(f"no prototype named {name!r}; registered: {self._names()}")

    def clear(self) -> None:
        with self._lock:
            self._prototypes.clear()

    def _names(self) -> str:
        return ", ".join(sorted(self._prototypes)) or "(none)"

    def create(self, name: str, config: Mapping[str, Any] | None = None,
               override_policy: Callable[..., Any] | None = None,
               override_logic: Callable[..., Any] | None = None) -> Routine:
        """A new routine from the prototype ``name``; ``config`` merges over its config.

        Raises:
            ValueError: no prototype of that name (the message lists the registered ones).
        """
        with self._lock:
            proto = self._prototypes.get(name)
            if proto is None:
                raise ValueError(f"no ObjectFactory prototype named {name!r}; registered: "
                                 f"{self._names()}")
        routine = proto.cls()
        if "_slots" not in routine.__dict__:
            raise TypeError(f"{proto.cls.__name__}.__init__ must call super().__init__() first")
        base = proto.instance
        if base is not None:
            for sname, slot in base.slots.items():
                if sname not in routine.slots:
                    routine.add_slot(sname, max_queue_length=slot.max_queue_length,
                                     watermark=slot.watermark)
            for ename, event in base.events.items():
                if ename not in routine.events:
                    routine.add_event(ename, list(event.output_params))
            if base.config():
                routine.set_config(**base.config())
            if base._logic is not None:
                routine.set_logic(base._logic)
            if base._activation_policy is not None:
                routine.set_activation_policy(base._activation_policy)
            if base._error_handler is not None:
                routine.set_error_handler(base._error_handler)
        routine._run_setup()
        if config:
            routine.set_config(**dict(config))
        if override_policy is not None:
            routine.set_activation_policy(override_policy)
        if override_logic is not None:
            routine.set_logic(override_logic)
        return routine

    def get_metadata(self, name: str) -> ObjectMetadata | None:
        with self._lock:
            proto = self._prototypes.get(name)
            return proto.metadata if proto is not None else None

    def list_available(self, category: str | None = None,
                       object_type: str | None = None) -> list[dict[str, Any]]:
        """One dict per prototype: name, type ("class"/"instance"), object_type, metadata."""
        with self._lock:
            items = list(self._prototypes.items())
        out = []
        for name, proto in items:
            meta = proto.metadata
            if category is not None and meta.category != category:
                continue
            if object_type is not None and object_type != "routine":
                continue
            out.append({
                "name": name, "type": "instance" if proto.instance is not None else "class",
                "object_type": "routine", "description": meta.description,
                "category": meta.category, "tags": list(meta.tags),
                "example_config": dict(meta.example_config), "version": meta.version,
            })
        return out

    def get_factory_name(self, obj: Any) -> str | None:
        """The name a routine (or its class) was registered under, else None."""
        cls = obj if isinstance(obj, type) else type(obj)
        with self._lock:
            for name, proto in self._prototypes.items():
                if proto.cls is cls:
                    return name
        return None

    def __repr__(self) -> str:
        return f"<ObjectFactory prototypes={len(self._prototypes)}>"


# -- the spec -------------------------------------------------------------------------------
def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(value).__name__}: {value!r}")  # noqa: TRY004 - a bad spec value
    return value


def _keys(value: Mapping[str, Any], valid: tuple[str, ...], where: str) -> None:
    unknown = [k for k in value if k not in valid]
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(valid)}")


def _endpoint(value: Any, where: str, what: str) -> tuple[str, str]:
    if not isinstance(value, str) or value.count(".") < 1:
        raise ValueError(f"{where} must be a string 'routine_id.{what}', got {value!r}")
    rid, _, port = value.rpartition(".")
    if not rid or not port:
        raise ValueError(f"{where} must be a string 'routine_id.{what}', got {value!r}")
    return rid, port


def _handler(value: Any, where: str) -> ErrorHandler:
    spec = _mapping(value, where)
    _keys(spec, _HANDLER_KEYS, where)
    try:  # omitted fields: ErrorHandler's own defaults (ours; upstream passed None)
        return ErrorHandler(**spec)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None


def flow_from_dict(spec: Any, factory: ObjectFactory | None, flow_cls: type) -> Any:
    """Build a ``flow_cls`` (Flow) from a spec (see the module docstring); see ``Flow.from_dict``.

    The class comes in from ``Flow.from_dict``: this module sits below ``_flow``.
    """
    if not isinstance(spec, Mapping):
        raise TypeError(f"a flow spec must be a mapping, got {type(spec).__name__}")
    _keys(spec, _SPEC_KEYS, "flow spec")
    factory = factory if factory is not None else ObjectFactory.get_instance()
    flow_id = spec.get("flow_id")
    if flow_id is not None and (not isinstance(flow_id, str) or not flow_id):
        raise ValueError(f"flow_id must be a non-empty string, got {flow_id!r}")
    if "routines" not in spec:
        raise ValueError("flow spec: missing 'routines' (a mapping of routine id -> "
                         "{class: <ObjectFactory name>, config: {...}})")
    routines_spec = _mapping(spec["routines"], "routines")
    routines: list[tuple[str, Routine]] = []
    for rid, entry in routines_spec.items():
        where = f"routines.{rid}"
        if not isinstance(rid, str) or not rid or "." in rid:
            raise ValueError(f"routine id must be a non-empty string without '.', got {rid!r}")
        entry = _mapping(entry, where)
        _keys(entry, _ROUTINE_KEYS, where)
        if "class" not in entry:
            raise ValueError(f"{where}: missing 'class' (the ObjectFactory name)")
        name = entry["class"]
        if not isinstance(name, str):
            raise ValueError(f"{where}.class must be a string, got {name!r}")  # noqa: TRY004 - a bad spec value
        config = entry.get("config")
        if config is not None:
            config = dict(_mapping(config, f"{where}.config"))
        handler = _handler(entry["error_handler"], f"{where}.error_handler") \
            if entry.get("error_handler") is not None else None
        try:
            routine = factory.create(name, config=config)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if handler is not None:
            routine.set_error_handler(handler)
        routines.append((rid, routine))
    connections = spec.get("connections") or []
    if not isinstance(connections, list):
        raise ValueError(f"connections must be a list, got {type(connections).__name__}")  # noqa: TRY004 - a bad spec value
    wires = []
    for i, conn in enumerate(connections):
        where = f"connections[{i}]"
        conn = _mapping(conn, where)
        _keys(conn, _CONNECTION_KEYS, where)
        for key in _CONNECTION_KEYS:
            if key not in conn:
                raise ValueError(f"{where}: missing {key!r}")
        src = _endpoint(conn["from"], f"{where}.from", "event")
        dst = _endpoint(conn["to"], f"{where}.to", "slot")
        wires.append((where, src, dst))
    timeout = None
    if spec.get("execution") is not None:
        execution = _mapping(spec["execution"], "execution")
        _keys(execution, _EXECUTION_KEYS, "execution")
        timeout = execution.get("timeout")
    try:
        flow = flow_cls(flow_id, execution_timeout=timeout)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"execution.timeout: {exc}") from None
    for rid, routine in routines:
        flow.add_routine(routine, rid)
    for where, (srid, event), (trid, slot) in wires:
        try:
            flow.connect(srid, event, trid, slot)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return flow


def flow_from_yaml(text: str, factory: ObjectFactory | None, flow_cls: type) -> Any:
    """``flow_from_dict(yaml.safe_load(text))``; needs PyYAML (``routilux[yaml]``)."""
    if not isinstance(text, str):
        raise TypeError(f"Flow.from_yaml takes the YAML text (a str), got "
                        f"{type(text).__name__}")
    try:
        import yaml  # here, not at import: PyYAML is optional (routilux[yaml]), and heavy
    except ImportError:
        raise ImportError("Flow.from_yaml needs PyYAML; install it with: "
                          "pip install routilux[yaml]") from None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"the flow spec is not valid YAML: {exc}") from None
    if not isinstance(spec, Mapping):
        raise ValueError(f"the YAML flow spec must be a mapping at the top, got "  # noqa: TRY004 - a bad spec value
                         f"{type(spec).__name__}")
    return flow_from_dict(spec, factory, flow_cls)
