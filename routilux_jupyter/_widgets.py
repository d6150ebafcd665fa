"""The widget side: the minimum versions of the widget packages, and the live view class.

``require`` imports ipywidgets/anywidget or raises an ImportError naming the package and its
minimum version; ``live_view_class`` builds (once) the ``anywidget.AnyWidget`` subclass
whose ``_esm`` (``_widget.js``) draws the live view on a ``<canvas>`` in the browser, its
state arriving as ``_delta`` messages, one per pump tick.

The ``_delta`` message (``v`` = ``_model.MESSAGE_VERSION``). Keys marked * are present only
when they changed; lists of new items hold only what is new since the previous delta::

    tick      int   increasing per message; a view ignores ticks it already has
    v         int   format version (1)
    reset     bool  true only in the {"type": "reset", "frame": ...} reply to a view's hello
    t         float kernel time of this tick, seconds since the first timestamp seen
    window_s  float seconds of history the view keeps
    lanes     [[index, name, "thread" | "barrier"], ...]            new lanes
    routines  [[index, routine id], ...]                             new routines (colours)
    bars      [[lane, t0, t1, "task" | "lock" | "barrier", routine], ...]  closed since last
    open      [[lane, t0, kind, routine], ...]                       every bar open now
    samples   [[t, queued, busy, pool_size], ...]   new routilux.trace.pool_series samples
    decisions* [[t, action, old, new, reason], ...]  new pool.autosize decisions inside the
              window, at most _model.MAX_MESSAGE_DECISIONS (the reset frame: all kept)
    auto*     bool | null   sizing is automatic now (null: it never was)
    auto_reason* str | null the controller's latest reason while automatic
    counters  {posted, running, completed, failed, jobs_per_s, p95_latency_s}
    dropped   int   trace events lost (tracer overflow)
    locks*    [[name, waits, total_wait_s, max_wait_s, holder, [waiters], deadlocked,
                [[routine, site, caused_total_s, caused_max_s, holds], ...]], ...]
              holder/waiters as of the last event; the last list charges the waiting to
              the holders, biggest first (at most _model.MAX_CAUSED_ROWS)
    findings* [{kind, severity, title, evidence?, fix?, notebook}, ...]   the whole list
    status    str   "live", "stopped", "runtime shut down", ...
    error     str | null   shown as a red status line
    tracing   bool  false when the runtime records no trace (counters only)
    pool      {size, threads, busy, idle, queued}

A message stays small whatever the trace: samples are thinned per bucket past
``_pool_model.MAX_MESSAGE_SAMPLES``, and a tick with more than ``_timeline.MAX_MESSAGE_BARS``
closed bars widens the merge gap for the next ones.
"""

from __future__ import annotations

import importlib
import itertools
from importlib import resources
from typing import Any

__all__ = ["REQUIREMENTS", "live_view_class", "require"]

REQUIREMENTS = {"ipywidgets": "8.1", "anywidget": "0.9"}  # minimum versions (pyproject)

_live_view_class: Any = None


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("."):
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def require(module: str) -> Any:
    """Import a widget dependency, or raise ImportError naming it and its minimum version."""
    minimum = REQUIREMENTS[module]
    hint = (
        f"install it with: pip install '{module}>={minimum}' (or pip install 'routilux[jupyter]')"
    )
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the routilux dashboard needs {module}>={minimum}, which is not installed; {hint}"
        ) from exc
    if mod is None:  # a test (or a user) blocked it in sys.modules
        raise ImportError(
            f"the routilux dashboard needs {module}>={minimum}, which is not installed; {hint}"
        )
    version = getattr(mod, "__version__", "0")
    if _version_tuple(version) < _version_tuple(minimum):
        raise ImportError(
            f"the routilux dashboard needs {module}>={minimum}, but {module} {version} is "
            f"installed; {hint}"
        )
    return mod


def _read_asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def live_view_class() -> Any:
    """The ``anywidget.AnyWidget`` subclass that draws the live view (built on first use)."""
    global _live_view_class
    if _live_view_class is None:
        require("ipywidgets")
        anywidget = require("anywidget")
        import traitlets

        class LiveView(anywidget.AnyWidget):  # type: ignore[misc, name-defined]
            """Canvas view of a Dashboard; state arrives as ``_delta`` messages."""

            _esm = _read_asset("_widget.js")
            _css = _read_asset("_widget.css")
            _delta = traitlets.Dict().tag(sync=True)

        LiveView.__module__ = __name__
        _live_view_class = LiveView
    return _live_view_class
