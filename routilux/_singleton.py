"""ProcessWide: the one lazily made, thread-safe instance per class behind ``get_instance()``.

The registries (flows, workers, monitoring) and the DSL's object factory each have one
process-wide instance, as upstream Routilux's classmethod ``get_instance()`` gives them.
Each subclass gets its own instance slot and lock, so a registry never hands out another
class's instance.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Self


class ProcessWide:
    """Mixin: ``cls.get_instance()`` makes ``cls()`` once, on first use, under a lock."""

    _instance: ClassVar[Any] = None
    _instance_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._instance = None
        cls._instance_lock = threading.Lock()

    @classmethod
    def get_instance(cls) -> Self:
        instance = cls._instance  # once made, read without the lock (once per post)
        if instance is not None:
            return instance
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance
