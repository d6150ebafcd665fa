"""routilux_jupyter: notebook magics, a live dashboard and static reports for routilux.

Public surface (everything else is private and may change):

- ``%load_ext routilux_jupyter`` registers ``%routilux`` / ``%%routilux`` (``%routilux?``
  documents every subcommand); ``%unload_ext routilux_jupyter`` stops dashboards.
- ``Dashboard(runtime)``: the live dashboard (ipywidgets + an anywidget canvas view).
- ``dashboards()``: dashboards not yet closed, oldest first; ``stop_all()`` stops them.
- ``report(source)`` / ``snapshot(source)``: static matplotlib report / figure of a trace.
- ``run_sync(coro)``: finish a coroutine from synchronous code inside a running loop.
- ``Tuner(flow, routine, slot, ...)``: the pool-size tuner widget (``%routilux tune``): a
  sweep in a background thread, throughput/latency curves with the replay's predictions,
  the recommendation, and a button that resizes a live runtime.
- ``SweepProgressBar()``: a notebook progress bar for ``routilux.tuning.sweep(progress=...)``.

Imports are lazy: importing this package loads neither IPython, ipywidgets, anywidget nor
matplotlib; each loads when first needed, and a missing one raises ImportError naming the
package and its minimum version. Uses only public names of ``routilux``.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Dashboard",
    "Report",
    "SweepProgressBar",
    "Tuner",
    "dashboards",
    "load_ipython_extension",
    "report",
    "run_sync",
    "snapshot",
    "stop_all",
    "unload_ipython_extension",
]

_LAZY = {
    "Dashboard": "._dashboard",
    "dashboards": "._dashboard",
    "stop_all": "._dashboard",
    "Report": "._report",
    "report": "._report",
    "snapshot": "._report",
    "run_sync": "._asyncio",
    "Tuner": "._tuner",
    "SweepProgressBar": "._tuner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    if getattr(value, "__module__", "").startswith(f"{__name__}._"):
        try:
            value.__module__ = __name__
        except (AttributeError, TypeError):
            pass
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext routilux_jupyter``: register the ``%routilux`` magics."""
    from ._magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext routilux_jupyter``: stop dashboards' pumps and remove the magics."""
    from ._magics import unload

    unload(ipython)
