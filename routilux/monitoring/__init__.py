"""compat: ``routilux.monitoring`` as the docs import it.

``MonitoringRegistry.enable()`` / ``disable()`` / ``is_enabled()`` switch process-wide
tracing: while enabled, every new Runtime records a trace and a runtime created untraced
starts tracing at its next post (see ``routilux._monitoring``). ``FlowRegistry`` lives in
``routilux.monitoring.flow_registry``, the docs' most used import. Upstream's HTTP server,
breakpoints, debug sessions and event manager are not provided (api.md §16).
"""

from __future__ import annotations

from typing import Any

from .._engine import _monitoring
from .._singleton import ProcessWide

__all__ = ["MonitoringRegistry"]


class MonitoringRegistry(ProcessWide):
    """The docs' monitoring switch; a process-wide singleton with class-level methods.

    While enabled, runtimes trace (``runtime.tracer`` records what the dashboard,
    ``routilux.diagnostics`` and ``Tracer.to_chrome_trace`` read). Tracing costs a few
    percent of throughput (benchmarks/ measure it), which is why it is off by default.
    ``ROUTILUX_ENABLE_MONITORING=true`` turns it on at import.
    """

    @classmethod
    def enable(cls) -> int:
        """Trace every runtime created from now on, and untraced ones at their next post.

        Returns:
            A session number: ``traced(since=n)`` lists what this session traced.
        """
        return _monitoring.enable()

    @classmethod
    def disable(cls) -> None:
        """Stop: new runtimes are untraced again, and tracing that ``enable`` started on
        existing runtimes stops (runtimes created while enabled keep their tracer)."""
        _monitoring.disable()

    @classmethod
    def is_enabled(cls) -> bool:
        return _monitoring.enabled

    @classmethod
    def traced(cls, since: int | None = None) -> list[tuple[Any, Any]]:
        """``(runtime, tracer)`` pairs monitoring traced, oldest first (runtime ``None``
        once collected); ``since``: only sessions numbered ``>= since``."""
        return _monitoring.traced(since)
