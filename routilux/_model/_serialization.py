"""serialize() / deserialize(): plain dicts in upstream Routilux's shapes.

What travels is structure and configuration: a flow's id, timeout and error handler, its
routines (class, id, config, error handler, slot and event declarations, the activation
policy's description) and its connections. Logic and policies are code (api.md §13):
deserialisation rebuilds a routine by calling its class (``cls()``, which declares the
logic again) when the class can be imported here; otherwise it rebuilds a plain
``Routine`` with the same slots, events and config and no logic, and says so once in the
log. A built-in activation policy is rebuilt from its recorded type and config.

``deserialize`` works both ways upstream code and the docs call it:
``Flow.deserialize(data)`` returns a new flow; ``flow.deserialize(data)`` fills in an
existing one (and returns it).
"""

from __future__ import annotations

import importlib
import logging
import weakref
from collections.abc import Callable
from typing import Any

from . import _policies
from ._error_handler import ErrorHandler


logger = logging.getLogger("routilux")

SERIALIZATION_VERSION = 1
SUPPORTED_VERSIONS = (SERIALIZATION_VERSION,)


class hybridmethod:
    """A method that binds to the instance when there is one, else to the class."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "hybridmethod")

    def __get__(self, obj: Any, cls: type) -> Callable[..., Any]:
        target = obj if obj is not None else cls

        def bound(*args: Any, **kwargs: Any) -> Any:
            return self.fn(target, *args, **kwargs)

        bound.__doc__ = self.fn.__doc__
        bound.__name__ = self.__name__
        return bound


def _check_mapping(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"{what}.deserialize needs a dict (what serialize() returned), "
                        f"got {type(data).__name__}")
    return data


# -- error handlers ------------------------------------------------------------------------
def error_handler_to_dict(handler: ErrorHandler | None) -> dict[str, Any] | None:
    if handler is None:
        return None
    return {"_type": "ErrorHandler", **handler.to_dict()}


def error_handler_from_dict(data: Any) -> ErrorHandler | None:
    if not data:
        return None
    if isinstance(data, ErrorHandler):
        return data
    fields = {k: data[k] for k in ("strategy", "max_retries", "retry_delay", "retry_backoff",
                                   "is_critical") if data.get(k) is not None}
    return ErrorHandler(**fields)


# -- policies ------------------------------------------------------------------------------
def policy_to_dict(policy: Any) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {
        "type": getattr(policy, "_policy_type", "custom"),
        "config": dict(getattr(policy, "_policy_config", {}) or {}),
        "function": f"{getattr(policy, '__module__', '?')}.{getattr(policy, '__qualname__', '?')}",
    }


def policy_from_dict(data: Any) -> Any:
    """A built-in policy from its recorded type and config; None for custom ones."""
    if not isinstance(data, dict):
        return None
    kind, config = data.get("type"), data.get("config") or {}
    try:
        if kind == "immediate":
            return _policies.immediate_policy()
        if kind == "all_slots_ready":
            return _policies.all_slots_ready_policy(**config)
        if kind == "batch_size":
            return _policies.batch_size_policy(**config)
        if kind == "time_interval":
            return _policies.time_interval_policy(**config)
    except TypeError:
        return None
    return None


# -- routine classes -----------------------------------------------------------------------
def class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


# Routine subclasses defined in this process, by class_path (Routine.__init_subclass__
# records them): a class local to a function, or of __main__, cannot be imported by name
# but round-trips within the process. The newest class with a given path wins.
known_classes: weakref.WeakValueDictionary[str, type] = weakref.WeakValueDictionary()


def import_class(path: Any) -> type | None:
    """The class named ``module:qualname`` (defined here, or importable), else None."""
    if not isinstance(path, str) or ":" not in path:
        return None
    known = known_classes.get(path)
    if known is not None:
        return known
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return obj if isinstance(obj, type) else None


def rebuild_routine(target: Any, data: Any, base: type) -> Any:
    """A routine from ``Routine.serialize()`` output (class rebuilt when importable).

    ``base`` is ``Routine`` itself, passed in by ``Routine.deserialize``: this module sits
    below ``_routine`` (which borrows ``hybridmethod`` and the dict helpers from it).
    """
    data = _check_mapping(data, "Routine")
    if isinstance(target, type):
        cls = import_class(data.get("_class"))
        if cls is not None and issubclass(cls, target):
            routine = cls()
        else:
            if data.get("_class") and data.get("_class") != class_path(base):
                logger.warning(
                    "routine class %s cannot be imported here: rebuilt as a plain Routine "
                    "with its slots, events and config but no logic (logic is code; import "
                    "or define the class before deserializing)", data.get("_class"),
                )
            routine = target()
        routine._run_setup()
    else:
        routine = target
    if data.get("_id"):
        routine.__dict__["_id"] = data["_id"]
    for name, sdata in (data.get("_slots") or {}).items():
        if routine.get_slot(name) is None:
            sdata = sdata or {}
            routine.add_slot(name, sdata.get("max_queue_length", 1000), sdata.get("watermark", 0.8))
    for name, edata in (data.get("_events") or {}).items():
        if routine.get_event(name) is None:
            routine.add_event(name, (edata or {}).get("output_params"))
    if data.get("_config"):
        with routine._config_lock:
            routine._config.update(data["_config"])
    handler = error_handler_from_dict(data.get("_error_handler"))
    if handler is not None:
        routine.set_error_handler(handler)
    if routine._activation_policy is None:
        policy = policy_from_dict(data.get("_activation_policy"))
        if policy is not None:
            routine.set_activation_policy(policy)
    return routine
