"""The one input reader: every reading of a trace accepts the same sources."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from ._event import TraceEvent
from ._tracer import Tracer


def _source_events(source: Any, what: str) -> list[TraceEvent]:
    """The events of a ``Tracer``, a traced ``Runtime``, a saved trace's path, or an
    iterable of ``TraceEvent``, in seq order."""
    if isinstance(source, Tracer):
        return source.read(0)
    if isinstance(source, str | os.PathLike):
        return Tracer.load(source).read(0)
    if hasattr(source, "tracer") and callable(getattr(source, "statistics", None)):
        tracer = source.tracer
        if tracer is None:
            raise ValueError(
                f"{what}() needs a trace, and this runtime records none; create it with "
                "Runtime(trace=True)"
            )
        return tracer.read(0)
    if isinstance(source, Iterable) and not isinstance(source, bytes | dict):
        events = list(source)
        bad = next((e for e in events if not isinstance(e, TraceEvent)), None)
        if bad is not None:
            raise TypeError(
                f"{what}() got an iterable that is not all TraceEvent records (found a "
                f"{type(bad).__name__}); pass Tracer.read() or a Tracer"
            )
        events.sort(key=lambda e: e.seq)
        return events
    raise TypeError(
        f"{what}() needs a routilux.trace.Tracer, a traced routilux Runtime, the path of a "
        f"saved trace or an iterable of TraceEvent, got {type(source).__name__}"
    )
