"""The live dashboard: one runtime, one pump thread, one canvas widget drawn in the browser.

Moving parts:

- ``Dashboard`` owns an ipywidgets ``VBox``: a header (pool-size ``IntSlider`` wired to
  ``runtime.resize``, a "Diagnose" button) and the live view, an ``anywidget.AnyWidget``
  whose ``_esm`` (``_widget.js``) draws on ``<canvas>`` in the browser.
- One daemon pump thread per dashboard ticks at most every ``interval_s`` (0.1 s): it reads
  the events new since its last tick (``tracer.read_rows(since)``) and
  ``runtime.statistics()``, folds them into ``_model.DashboardModel`` in bounded time
  (``_pump``: at most ``MAX_TICK_EVENTS`` per tick, in slices that hand the GIL over) and
  sets the view's single ``_delta`` trait inside ``hold_sync()``: one comm message per tick.
  Charts are never rendered in the kernel on the live path (matplotlib would compete for
  the GIL with the runtime being measured) and no ``Output`` widget is used (not safe
  across threads).
- The pump holds the runtime and the dashboard weakly and stops on ``close()``/``stop()``,
  ``%unload_ext routilux_jupyter``, interpreter exit (atexit) and when the runtime shuts
  down or is garbage-collected. An exception in a tick turns the view's status line red and
  is logged to ``logging.getLogger("routilux_jupyter")``; the pump keeps going.
- Readable without a kernel (#12): displayed, the dashboard publishes one output whose
  picture the cells renew (``_display.PictureOutput``).

The ``_delta`` message's format: ``_widgets``' module docstring (and docs/jupyter.md).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Self

from routilux import Runtime

from . import _pump
from ._display import PictureOutput, html_escape, one_line, runtime_label
from ._model import DashboardModel
from ._pump import JOIN_TIMEOUT_S, MAX_TICK_EVENTS, PUMP_INTERVAL_S, dashboards, stop_all
from ._widgets import REQUIREMENTS, live_view_class, require

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["REQUIREMENTS", "Dashboard", "dashboards", "require", "stop_all"]

logger = logging.getLogger("routilux_jupyter")

ERROR_SHOWN_S = 10.0  # seconds a failed slider/button action stays in the status line


class Dashboard:
    """A live view of one runtime: pool timeline, queue and busy threads, locks, counters.

    The pool-size line carries automatic sizing's decisions (their reasons on hover) and
    an "auto" badge while the size is automatic; the slider's ``resize(n)`` turns that
    off, and the view says so.

    Display it (it is the last value of a cell, or ``display(dashboard)``); it updates itself
    from a pump thread, also while another cell is still running. Close it when done;
    ``%unload_ext routilux_jupyter`` and interpreter exit stop it too.

    Guarantees: the pump sends at most one message per ``interval_s``; it reads only the
    tracer by cursor (``read_rows(since)``, i.e. ``read`` as tuples: only what is new) and
    ``statistics()``, and folds at most ``MAX_TICK_EVENTS`` per tick, so a tick's cost is
    bounded whatever the trace's size; it holds the runtime weakly; an error in a tick
    shows as a red status line and is logged, it never vanishes. ``cpu_s`` says what the
    ticks have cost the kernel (thread CPU time).

    Args:
        runtime: The ``routilux.Runtime`` to watch. With ``trace=True`` the timeline, locks
            and latencies show; without, only the counters and the queue chart.
        interval_s: Seconds between pump ticks (>= 0.05).
        window_s: Seconds of history to show.
        start: Start the pump now; with False, only ``refresh()`` updates it.

    Raises:
        TypeError: ``runtime`` is not a ``routilux.Runtime``.
        ValueError: ``interval_s`` or ``window_s`` out of range.
        ImportError: ipywidgets or anywidget is missing or too old (names the version).
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        interval_s: float = PUMP_INTERVAL_S,
        window_s: float = 30.0,
        start: bool = True,
    ) -> None:
        if not isinstance(runtime, Runtime):
            raise TypeError(
                f"Dashboard needs a routilux.Runtime, got {type(runtime).__name__} {runtime!r}"
            )
        if not isinstance(interval_s, int | float) or interval_s < 0.05:
            raise ValueError(f"interval_s must be >= 0.05 seconds, got {interval_s!r}")
        if not isinstance(window_s, int | float) or not 1 <= window_s <= 3600:
            raise ValueError(f"window_s must be between 1 and 3600 seconds, got {window_s!r}")
        widgets = require("ipywidgets")
        view_class = live_view_class()
        self._serial = next(_pump.serial)
        self._runtime_ref: weakref.ref[Runtime] = weakref.ref(runtime)
        tracing = "on" if runtime.tracer is not None else "off"
        self._runtime_text = f"{runtime_label(runtime)}, tracing {tracing}"
        self.interval_s = float(interval_s)
        self._lock = threading.RLock()  # one tick, hello reply or action at a time
        self._model = DashboardModel(window_s=window_s, live=True)
        self._cursor = 0
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._finished = False  # the runtime is gone or shut down: nothing more will change
        self._last_stats: Any = None
        self._last_pool_size = runtime.statistics().pool_size
        self._syncing_slider = False
        self._slider_auto: bool | None = None  # the auto state the slider's label shows
        self._refresh_error: str | None = None
        self._action_error: tuple[str, float] | None = None
        self._logged: set[str] = set()
        self._extra: dict[str, Any] = {"status": "starting", "error": None}
        self.updates_sent = 0
        """Messages sent to the view so far (one per tick)."""
        self.cpu_s = 0.0
        """CPU seconds this dashboard's ticks have used in the kernel (all threads): its
        cost to the runtime it watches."""
        self.counters: dict[str, Any] = {}
        """The counters the view last showed: posted, running, completed, failed,
        jobs_per_s, p95_latency_s."""

        self._view = view_class()
        self._view.on_msg(self._on_view_msg)
        shared_pool = runtime.thread_pool_size == 0
        self._slider = widgets.IntSlider(
            value=max(1, self._last_pool_size),
            min=1,
            max=max(32, 2 * self._last_pool_size),
            description="pool size",
            continuous_update=False,
            disabled=shared_pool,
            tooltip="the shared pool cannot be resized" if shared_pool else "runtime.resize(n)",
            style={"description_width": "initial"},
        )
        self._slider.observe(self._on_slider, names="value")
        self._button = widgets.Button(
            description="Diagnose",
            tooltip="run routilux.diagnostics.diagnose on this runtime",
            icon="stethoscope",
        )
        self._button.on_click(self._on_diagnose)
        title = widgets.HTML(
            f"<b>routilux</b> &nbsp;<code>{html_escape(self._runtime_text)}</code>",
            layout=widgets.Layout(margin="0 24px 0 0"),
        )
        header = widgets.HBox([title, self._slider, self._button])
        self.widget = widgets.VBox([header, self._view])
        """The ipywidgets layout (display this, or the dashboard itself)."""
        self._output = PictureOutput(f"routilux-dashboard-{self._serial}-{id(self):x}",
                                     self._runtime_text, self.widget, self._figure)

        _pump.register(self, self._serial)
        if start:
            self.start()  # its first tick comes after interval_s: show something now
        self.pump_tick()

    # -- public --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    @property
    def running(self) -> bool:
        """Whether the pump thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def runtime(self) -> Runtime | None:
        """The runtime watched, or None once it was garbage-collected."""
        return self._runtime_ref()

    def start(self) -> None:
        """Start the pump thread (``Dashboard`` does this unless ``start=False``)."""
        if self._closed:
            raise RuntimeError("this dashboard is closed; create a new one")
        if self.running:
            return
        self._stop_event.clear()
        self._thread = threading.Thread(
            target=_pump.run_pump,
            args=(weakref.ref(self), self._stop_event, self.interval_s),
            name=f"routilux-dashboard-{self._serial}",
            daemon=True,
        )
        self._thread.start()

    def refresh(self) -> dict[str, Any]:
        """One synchronous tick: read the trace and statistics, send one update.

        Returns the counters sent. An error is shown in the view, logged, and raised. Once
        the runtime is shut down (or gone) the last update was final, and this returns
        the counters it showed. Called from a cell of a displayed dashboard, it also
        renews the output's static picture (one matplotlib frame, about 0.1 s).
        """
        if self._closed:
            raise RuntimeError("this dashboard is closed; create a new one")
        self._tick(raise_errors=True)
        self._update_display()
        return dict(self.counters)

    def refresh_quietly(self) -> bool:
        """Like ``refresh`` but an error only shows in the view and the log.

        Returns False once nothing more will change (the runtime is shut down or gone, or
        the dashboard is closed): what the pump uses to stop.
        """
        return self._tick(raise_errors=False)

    def pump_tick(self) -> bool:
        """``refresh_quietly`` folding at most ``MAX_TICK_EVENTS`` new events: the pump's
        tick, bounded in time whatever the backlog (the rest waits for the next tick)."""
        return self._tick(raise_errors=False, budget=MAX_TICK_EVENTS)

    def diagnose(self) -> list[Any]:
        """Run ``routilux.diagnostics.diagnose`` on the runtime; show and return its findings."""
        from ._findings import finding_dicts, run_diagnose

        runtime = self._runtime_ref()
        if runtime is None:
            raise RuntimeError("the runtime this dashboard watched was garbage-collected")
        findings = run_diagnose(runtime, record=True)
        with self._lock:
            for item in finding_dicts(findings):
                self._model.add_finding(item)
        if not self.running and not self._closed:
            self.refresh_quietly()
        return findings

    def snapshot(self) -> Figure:
        """A static matplotlib Figure of what the view shows now (timeline, queue, locks).

        Built with ``matplotlib.figure.Figure`` (no pyplot state), so it is safe anywhere.
        """
        fig = self._figure()
        self._update_display(fig)
        return fig

    def _figure(self) -> Figure:
        from ._charts import dashboard_figure

        with self._lock:
            view = self._model.view(time.monotonic_ns(), self._last_stats)
        return dashboard_figure(view, title=f"routilux: {self._runtime_text}")

    def stop(self, timeout: float = JOIN_TIMEOUT_S, notify: bool = True) -> None:
        """Stop the pump; the view keeps its last picture and says "stopped".

        Args:
            timeout: Seconds to wait for the pump thread to end.
            notify: Tell the view (False at interpreter exit, when it may be gone).
        """
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        if notify and not self._closed:
            with self._lock:
                if not self._finished:
                    self._extra["status"] = "stopped"
                    self._send(self._model.note(**self._extra))
            self._update_display()

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Stop the pump and close the widgets. Idempotent."""
        self._stop_event.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _pump.unregister(self._serial)
        self._update_display(live=False)  # the live view goes: its last picture stays
        for widget in (self.widget, self._view, self._slider, self._button):
            widget.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, a plain-text line and a PNG of the latest state.

        A frontend with widgets draws the live view; one without (nbconvert, GitHub,
        nbviewer, a notebook opened with no kernel) shows the picture.
        """
        return self._output.bundle(live=not self._closed)

    def _ipython_display_(self) -> None:
        """Publish the bundle under this dashboard's display id, so it can be updated."""
        self._output.publish(live=not self._closed)

    def _update_display(self, fig: Figure | None = None, *, live: bool | None = None) -> None:
        """Renew the published output's picture (only from a cell: the main thread)."""
        self._output.update(live=not self._closed if live is None else live, fig=fig)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "live" if self.running else "stopped"
        return f"<Dashboard {state} updates_sent={self.updates_sent} runtime={self._runtime_text}>"

    # -- the tick ------------------------------------------------------------------------

    def _send(self, msg: dict[str, Any]) -> None:
        """Set the view's one synced trait: exactly one comm message."""
        if self._closed:
            return
        with self._view.hold_sync():
            self._view._delta = msg
        self.updates_sent += 1

    def _send_quietly(self, msg: dict[str, Any]) -> None:
        """``_send``, logging (once per kind of failure) instead of raising."""
        try:
            self._send(msg)
        except Exception as exc:
            text = f"could not update the view: {type(exc).__name__}: {exc}"
            if text not in self._logged:
                self._logged.add(text)
                logger.exception("routilux_jupyter: %s", text)

    def _current_error(self) -> str | None:
        if self._refresh_error:
            return self._refresh_error
        if self._action_error is not None:
            text, until = self._action_error
            if time.monotonic() < until:
                return text
            self._action_error = None
        return None

    def _tick(self, raise_errors: bool, budget: int | None = None) -> bool:
        """Read, aggregate, send. Returns whether the pump should keep going."""
        with self._lock:
            start = time.thread_time()
            try:
                return self._tick_locked(raise_errors, budget)
            finally:
                self.cpu_s += time.thread_time() - start

    def _tick_locked(self, raise_errors: bool, budget: int | None) -> bool:
        with self._lock:
            if self._closed or self._finished:
                return False
            runtime = self._runtime_ref()
            if runtime is None:
                self._finished = True
                self._extra.update(status="runtime was garbage-collected", error=None)
                self._send_quietly(self._model.note(**self._extra))
                return False
            try:
                msg, shut_down = self._build_delta(runtime, budget)
                self._send(msg)
            except Exception as exc:
                text = f"dashboard refresh failed: {type(exc).__name__}: {exc}"
                self._refresh_error = text
                if text not in self._logged:
                    self._logged.add(text)
                    logger.exception("routilux_jupyter: %s", text)
                self._extra.update(status="error", error=text)
                self._send_quietly(self._model.note(**self._extra))
                if raise_errors:
                    raise
                return True
            finally:
                del runtime
            self.counters = dict(msg["counters"])
            if shut_down:
                self._finished = True
            return not shut_down

    def _build_delta(self, runtime: Runtime, budget: int | None,
                     ) -> tuple[dict[str, Any], bool]:
        tracer = runtime.tracer
        model = self._model
        if tracer is not None:
            self._cursor = _pump.fold_new_events(model, tracer, self._cursor, budget)
        stats = runtime.statistics()
        now_ns = time.monotonic_ns()
        model.dropped = stats.trace_dropped
        finished = stats.completed + stats.failed + stats.cancelled
        model.add_sample(now_ns, stats.queued, stats.busy, stats.pool_size, finished)
        self._last_stats = stats
        auto = bool(getattr(stats, "pool_auto", False))
        model.set_auto(auto, getattr(stats, "pool_auto_reason", None))
        self._sync_slider(stats.pool_size, auto)
        self._refresh_error = None
        if stats.shut_down:
            status = "runtime shut down"
        elif self.running:
            status = "live"
        else:
            status = "stopped (refresh() to update)"
        self._extra = {
            "status": status,
            "error": self._current_error(),
            "tracing": tracer is not None,
            "pool": {
                "size": stats.pool_size,
                "threads": stats.threads,
                "busy": stats.busy,
                "idle": stats.idle,
                "queued": stats.queued,
            },
        }
        return model.delta(now_ns, stats, **self._extra), stats.shut_down

    # -- widgets' callbacks (kernel main thread) -----------------------------------------

    def _on_view_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "hello":
            return
        try:
            with self._lock:
                if self._closed:
                    return
                frame = self._model.full(time.monotonic_ns(), self._last_stats, **self._extra)
                self._view.send({"type": "reset", "frame": frame})
        except Exception:
            logger.exception("routilux_jupyter: could not send the dashboard history")

    def _sync_slider(self, pool_size: int, auto: bool = False) -> None:
        """Follow a resize made elsewhere (not by this slider): the user's, or automatic
        sizing's. While sizing is automatic the label says so, and that moving the slider
        turns it off (``resize(n)`` does)."""
        if auto != self._slider_auto and not self._slider.disabled:
            self._slider_auto = auto
            self._slider.description = "pool size (auto)" if auto else "pool size"
            self._slider.tooltip = (
                "sizing is automatic; moving this calls runtime.resize(n), which turns it off"
                if auto else "runtime.resize(n)"
            )
        if pool_size == self._last_pool_size:
            return
        self._last_pool_size = pool_size
        if pool_size != self._slider.value and pool_size >= 1:
            self._syncing_slider = True
            try:
                if pool_size > self._slider.max:
                    self._slider.max = 2 * pool_size
                self._slider.value = pool_size
            finally:
                self._syncing_slider = False

    def _on_slider(self, change: dict[str, Any]) -> None:
        if self._syncing_slider:
            return
        runtime = self._runtime_ref()
        size = change["new"]
        try:
            if runtime is None:
                raise RuntimeError("the runtime was garbage-collected")
            runtime.resize(size)
        except Exception as exc:  # noqa: BLE001 - a widget callback: show it, IPython would hide it
            self._show_action_error(f"resize({size}) failed: {type(exc).__name__}: {exc}")
        else:
            self._action_error = None
            if not self.running:
                self.refresh_quietly()
        finally:
            del runtime

    def _on_diagnose(self, _button: Any) -> None:
        try:
            findings = self.diagnose()
        except Exception as exc:  # noqa: BLE001 - a widget callback: show it, IPython would hide it
            self._show_action_error(f"diagnose failed: {one_line(exc)}")
            return
        with self._lock:
            self._action_error = None
            if not findings and not self._closed:
                self._send(self._model.note(status="diagnose: no findings", error=None))

    def _show_action_error(self, text: str | None) -> None:
        """Show a failed action in the status line for ERROR_SHOWN_S seconds, and log it."""
        with self._lock:
            if text is None:
                self._action_error = None
                return
            logger.warning("routilux_jupyter: %s", text)
            self._action_error = (text, time.monotonic() + ERROR_SHOWN_S)
            self._extra["error"] = text
            if not self._closed:
                self._send(self._model.note(**self._extra))
