"""The pool-size tuner: a sweep in a background thread, the curves, and an "apply" button.

Moving parts:

- ``Tuner`` owns an ipywidgets ``VBox``: a progress bar and a status line, a "Run again"
  and an "Apply" button, an ``Image`` with the chart and an ``HTML`` with the reasons.
- One daemon thread per run calls ``routilux.tuning.sweep`` (a fresh traced runtime per
  size). Its progress callback sets the bar's and status line's traits from that thread,
  which ipywidgets sends as comm messages; no ``Output`` widget is used (not safe across
  threads). When the sweep ends, the same thread calls ``recommend``, replays the trace of
  the first size with ``simulate`` at every size, and renders the chart with matplotlib
  (``Figure`` + Agg, no pyplot) into the ``Image``.
- The kernel is never blocked: ``Tuner(...)`` returns at once. ``wait()`` blocks until the
  run ends, for scripts, tests and notebook cells that want the result.
- "Apply" calls ``runtime.resize(recommendation.size)`` on the runtime given as
  ``runtime=`` (held weakly).
- Readable without a kernel (#12): displayed, the tuner publishes one output under its own
  ``display_id`` whose bundle carries the chart as ``image/png`` beside the widget view;
  ``wait()`` and ``close()`` called from a cell renew it, so a saved or rendered notebook
  shows the curves (``close()`` leaves the picture only).
- An error in the run turns the bar red and shows in the status line (IPython would hide
  an exception raised in a thread); it is logged to ``logging.getLogger("routilux_jupyter")``
  and kept in ``error``. ``close()`` cancels a run and waits for its thread.
"""

from __future__ import annotations

import html
import itertools
import logging
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Self

from routilux import Runtime
from routilux.tuning import Recommendation, Simulation, SweepProgress, recommend, simulate, sweep

from ._charts import figure_png
from ._widgets import require

if TYPE_CHECKING:
    import pandas
    from matplotlib.figure import Figure

    from routilux.trace import Tracer

__all__ = ["SweepProgressBar", "Tuner", "tuning_figure"]

logger = logging.getLogger("routilux_jupyter")

JOIN_TIMEOUT_S = 10.0  # seconds close() waits for a cancelled run's thread

_serial = itertools.count(1)


class Tuner:
    """Sweep pool sizes for a flow, chart the result, recommend a size, apply it.

    Displays as a widget (it is the last value of a cell, or ``display(tuner)``). The sweep
    runs in a background thread at once unless ``start=False``; the progress bar follows
    it while the notebook stays usable.

    Args:
        workload: a flow name, a ``Flow``, or ``factory(size) -> (runtime, flow)``
            (see ``routilux.tuning.sweep``).
        routine: the entry routine to post to.
        slot: its slot.
        make_data: ``make_data(i) -> dict``, a dict, or None for ``{"i": i}``.
        sizes: pool sizes to try.
        jobs: jobs per size.
        rate: jobs per second to post (None: all at once).
        latency_target_s: a p95 latency target for the recommendation.
        runtime: a live ``Runtime`` the "Apply" button resizes (held weakly).
        simulate_from: the size whose trace the replay uses (default: the first size).
        start: start the sweep now.

    Raises:
        ImportError: ipywidgets is missing or too old (names the version).
        TypeError / ValueError: bad sizes or runtime (sweep's own checks run in the thread
            and show as the error).
    """

    def __init__(
        self,
        workload: Any,
        routine: str,
        slot: str,
        make_data: Any = None,
        sizes: Iterable[int] = (1, 2, 4, 8),
        jobs: int = 40,
        *,
        rate: float | None = None,
        latency_target_s: float | None = None,
        runtime: Runtime | None = None,
        simulate_from: int | None = None,
        start: bool = True,
    ) -> None:
        widgets = require("ipywidgets")
        self.sizes = list(sizes)
        if not self.sizes:
            raise ValueError("sizes must name at least one pool size, e.g. sizes=[1, 2, 4, 8]")
        if simulate_from is not None and simulate_from not in self.sizes:
            raise ValueError(
                f"simulate_from={simulate_from} is not one of the sizes swept: {self.sizes}"
            )
        if runtime is not None and not isinstance(runtime, Runtime):
            raise TypeError(f"runtime must be a routilux.Runtime, got {type(runtime).__name__}")
        self._sweep_args = (workload, routine, slot, make_data, self.sizes, jobs)
        self.rate = rate
        self.latency_target_s = latency_target_s
        self.simulate_from = simulate_from if simulate_from is not None else self.sizes[0]
        self._runtime_ref = weakref.ref(runtime) if runtime is not None else None
        self._serial = next(_serial)
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._closed = False
        self._display_id = f"routilux-tuner-{self._serial}-{id(self):x}"
        self._displayed = False  # published under _display_id: keep that output's picture

        self.frame: pandas.DataFrame | None = None
        """The sweep's DataFrame once the run ended (see ``routilux.tuning.sweep``)."""
        self.recommendation: Recommendation | None = None
        self.simulations: dict[int, Simulation] = {}
        """size -> the replay of the ``simulate_from`` trace with that many threads."""
        self.traces: dict[int, Tracer] = {}
        """size -> the Tracer of that size's run."""
        self.error: BaseException | None = None
        """The exception that ended the last run, if any."""

        self._progress = widgets.FloatProgress(
            value=0.0, min=0.0, max=1.0, description="sweep",
            layout=widgets.Layout(width="40%"),
        )
        self._status = widgets.HTML("ready")
        self._run_button = widgets.Button(description="Run again", icon="refresh",
                                          tooltip="sweep the pool sizes again", disabled=True)
        self._run_button.on_click(lambda _b: self.start())
        self._apply_button = widgets.Button(
            description="Apply", icon="check", disabled=True,
            tooltip="runtime.resize(recommended size)" if runtime is not None
            else "pass runtime=... to apply the size to a live runtime",
        )
        self._apply_button.on_click(self._on_apply)
        self._image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self._reasons = widgets.HTML("")
        title = widgets.HTML(
            f"<b>routilux tuner</b> &nbsp;<code>{html.escape(self._workload_text())}</code> "
            f"sizes {self.sizes}, {jobs} jobs each"
        )
        self.widget = widgets.VBox([
            title,
            widgets.HBox([self._progress, self._status]),
            widgets.HBox([self._run_button, self._apply_button]),
            self._image,
            self._reasons,
        ])
        """The ipywidgets layout (display this, or the tuner itself)."""
        if start:
            self.start()

    # -- public --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether a sweep is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def done(self) -> bool:
        """Whether the last run finished with a recommendation."""
        return not self.running and self.recommendation is not None

    @property
    def runtime(self) -> Runtime | None:
        """The runtime "Apply" resizes, or None (none given, or garbage-collected)."""
        return self._runtime_ref() if self._runtime_ref is not None else None

    def start(self) -> None:
        """Start a sweep in a background thread (``Tuner`` does this unless ``start=False``).

        Raises:
            RuntimeError: the tuner is closed, or a sweep is already running.
        """
        if self._closed:
            raise RuntimeError("this tuner is closed; create a new one")
        if self.running:
            raise RuntimeError("a sweep is already running; wait() for it or close() it")
        self._cancel.clear()
        self.error = None
        self._run_button.disabled = True
        self._apply_button.disabled = True
        self._progress.bar_style = ""
        self._progress.value = 0.0
        self._thread = threading.Thread(target=self._run, name=f"routilux-tuner-{self._serial}",
                                        daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running sweep ends; True if it has (or none was running)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
        self._update_display()
        return True

    def apply(self) -> int:
        """Resize the live runtime to the recommended size; returns that size.

        Raises:
            RuntimeError: no recommendation yet, no runtime given, or it is gone.
        """
        rec = self.recommendation
        if rec is None:
            raise RuntimeError("no recommendation yet: wait() for the sweep to finish")
        runtime = self.runtime
        if runtime is None:
            raise RuntimeError(
                "no live runtime to apply the size to: create the Tuner with runtime=..."
            )
        runtime.resize(rec.size)
        return rec.size

    def figure(self) -> Figure:
        """The chart as a static matplotlib Figure (for notebooks viewed without widgets).

        Raises:
            RuntimeError: no sweep has finished yet.
        """
        if self.frame is None:
            raise RuntimeError("no sweep has finished yet: wait() for it")
        return tuning_figure(self.frame, self.recommendation, self.simulations,
                             self.simulate_from)

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        """Cancel a running sweep, wait for its thread, and close the widgets."""
        self._closed = True
        self._cancel.set()
        self.wait(timeout)
        self._update_display()  # the live view goes: the chart stays
        for w in (self.widget, self._progress, self._status, self._run_button,
                  self._apply_button, self._image, self._reasons):
            w.close()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget view, a plain-text line and, once a sweep ended, the chart as a PNG.

        A frontend with widgets draws the live tuner; one without (nbconvert, GitHub,
        nbviewer, a notebook opened with no kernel) shows the chart.
        """
        return self._bundle()

    def _ipython_display_(self) -> None:
        """Publish the bundle under this tuner's display id, so it can be updated."""
        from IPython.display import display

        display(self._bundle(), raw=True, display_id=self._display_id)
        self._displayed = True

    def _bundle(self) -> dict[str, Any]:
        import base64

        data: dict[str, Any] = {} if self._closed else dict(self.widget._repr_mimebundle_())
        data["text/plain"] = repr(self)
        png = self._image.value
        if png and not self.running:
            data["image/png"] = base64.b64encode(bytes(png)).decode("ascii")
        return data

    def _update_display(self) -> None:
        """Renew the published output (only from a cell: the kernel's main thread)."""
        if not self._displayed or threading.current_thread() is not threading.main_thread():
            return
        try:
            from IPython.display import update_display

            update_display(self._bundle(), raw=True, display_id=self._display_id)
        except Exception:
            logger.exception("routilux tuner: could not update the tuner's output")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        if self.running:
            state = "running"
        elif self.error is not None:
            state = f"failed: {type(self.error).__name__}: {self.error}"
        elif self.recommendation is not None:
            state = f"recommends {self.recommendation.size}"
        else:
            state = "not run"
        return f"<routilux Tuner {self._workload_text()} sizes={self.sizes} {state}>"

    # -- the background run --------------------------------------------------------------

    def _workload_text(self) -> str:
        workload = self._sweep_args[0]
        name = getattr(workload, "flow_id", None) or (
            workload if isinstance(workload, str) else getattr(workload, "__name__", "factory")
        )
        return f"{name}.{self._sweep_args[1]}.{self._sweep_args[2]}"

    def _on_progress(self, p: SweepProgress) -> None:
        self._progress.value = p.fraction
        if p.row is None:
            self._status.value = (f"size {p.size} ({p.index + 1}/{p.sizes}): "
                                  f"{p.jobs_done}/{p.jobs} jobs")
        else:
            self._status.value = (f"size {p.size} ({p.index + 1}/{p.sizes}): "
                                  f"{p.row['throughput']:.1f} jobs/s")

    def _run(self) -> None:
        workload, routine, slot, make_data, sizes, jobs = self._sweep_args
        traces: dict[int, Tracer] = {}
        try:
            frame = sweep(workload, routine, slot, make_data, sizes, jobs, rate=self.rate,
                          progress=self._on_progress, traces=traces, cancel=self._cancel)
            if frame.attrs.get("cancelled"):
                self._status.value = "cancelled"
                self._progress.bar_style = "warning"
                return
            rec = recommend(frame, self.latency_target_s)
            cpu_bound = True if rec.workload == "cpu-bound" else None
            sims = {n: simulate(traces[self.simulate_from], n, cpu_bound=cpu_bound)
                    for n in sizes}
            self.frame, self.recommendation, self.simulations = frame, rec, sims
            self.traces = traces
            self._image.value = figure_png(tuning_figure(frame, rec, sims, self.simulate_from))
            items = "".join(f"<li>{html.escape(r)}</li>" for r in rec.reasons)
            notes = sorted({w for s in sims.values() for w in s.warnings})
            if notes:
                items += "".join(f"<li><i>replay: {html.escape(w)}</i></li>" for w in notes)
            self._reasons.value = f"<ul style='margin:0'>{items}</ul>"
            self._progress.value = 1.0
            self._progress.bar_style = "success"
            self._status.value = f"<b>recommended pool size: {rec.size}</b> ({rec.workload})"
            runtime = self.runtime
            if runtime is not None and not runtime.is_shut_down:
                self._apply_button.description = f"Apply {rec.size}"
                self._apply_button.disabled = False
        except Exception as exc:
            self.error = exc
            logger.exception("routilux tuner: the sweep failed")
            self._progress.bar_style = "danger"
            self._status.value = (f"<span style='color:#c0392b'>failed: "
                                  f"{html.escape(type(exc).__name__)}: "
                                  f"{html.escape(str(exc))}</span>")
        finally:
            if not self._closed:
                self._run_button.disabled = False

    def _on_apply(self, _button: Any) -> None:
        try:
            size = self.apply()
        except Exception as exc:  # a widget callback: IPython would hide it
            logger.warning("routilux tuner: apply failed: %s", exc, exc_info=True)
            self._status.value = (f"<span style='color:#c0392b'>apply failed: "
                                  f"{html.escape(str(exc))}</span>")
            return
        self._status.value = f"<b>runtime resized to {size} threads</b>"


class SweepProgressBar:
    """A notebook progress bar for ``routilux.tuning.sweep(..., progress=SweepProgressBar())``.

    ``sweep`` calls it from the cell's thread about ten times a second while a size runs
    and once per finished size. On the first call it displays an ipywidgets bar and a
    status line; after each size its output is renewed with a static line of the latest
    state, and when the last size is done the widgets close and that line stays, so a
    saved or rendered notebook (nbconvert, GitHub, nbviewer) shows how the sweep went
    instead of stderr text (#12).

    Args:
        description: the bar's label.

    Raises:
        ImportError: ipywidgets is missing or too old (names the version).
    """

    def __init__(self, description: str = "sweep") -> None:
        widgets = require("ipywidgets")
        self.description = description
        self._bar = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, description=description)
        self._label = widgets.HTML("")
        self.widget = widgets.HBox([self._bar, self._label])
        self.text = "not started"
        """The latest status line (also what the saved output shows)."""
        self.done = False
        self._handle: Any = None

    def __call__(self, p: SweepProgress) -> None:
        self._bar.value = p.fraction
        where = f"size {p.size} ({p.index + 1}/{p.sizes})"
        if p.row is None:
            self.text = f"{where}: {p.jobs_done}/{p.jobs} jobs"
        else:
            r = p.row
            p95 = r.get("p95_latency_s")
            self.text = (f"{where}: {r['throughput']:.1f} jobs/s, p95 latency "
                         f"{'-' if p95 is None else f'{p95:.3f} s'}, "
                         f"utilisation {r['utilisation']:.0%}")
            self.done = p.index + 1 == p.sizes
        self._label.value = html.escape(self.text)
        if self.done:
            self._bar.bar_style = "success"
        if self._handle is None:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is None:  # a plain script: one line per finished size
                if p.row is not None:
                    print(f"{self.description}: {self.text}", flush=True)
                return
            self._handle = display(self._bundle(), raw=True, display_id=True)
        elif p.row is not None:
            self._handle.update(self._bundle(), raw=True)
        if self.done:
            self.close()

    def close(self) -> None:
        """Close the widgets; the output keeps the last status line."""
        self.done = True
        for w in (self.widget, self._bar, self._label):
            w.close()

    def _bundle(self) -> dict[str, Any]:
        data: dict[str, Any] = {} if self.done else dict(self.widget._repr_mimebundle_())
        fraction = self._bar.value
        data["text/plain"] = f"{self.description}: {fraction:.0%} | {self.text}"
        data["text/html"] = (
            f"<div><progress value='{fraction:.3f}' max='1' style='width:30%'></progress> "
            f"{html.escape(self.description)}: {html.escape(self.text)}</div>"
        )
        return data

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self._bundle()

    def __repr__(self) -> str:
        return f"<SweepProgressBar {self.description}: {self.text}>"


def tuning_figure(
    frame: pandas.DataFrame,
    rec: Recommendation | None = None,
    simulations: dict[int, Simulation] | None = None,
    simulated_from: int | None = None,
) -> Figure:
    """Throughput and job latency against pool size, measured and replayed.

    The measured curves are solid; the replay of one size's trace at every size is dashed;
    the recommended size is a vertical line; the docs' rule-of-thumb range is shaded.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    from ._charts import ensure_figure_display

    ensure_figure_display()

    sizes = [int(s) for s in frame["size"]]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_x, ax_l = fig.subplots(1, 2)
    ax_x.plot(sizes, frame["throughput"], "o-", color="#4e79a7", label="measured")
    ax_l.plot(sizes, frame["p95_latency_s"], "o-", color="#e15759", label="p95 measured")
    ax_l.plot(sizes, frame["p50_latency_s"], "o-", color="#f28e2b", alpha=0.7,
              label="p50 measured")
    if simulations:
        ns = sorted(simulations)
        label = f"replay of size {simulated_from}" if simulated_from else "replay"
        ax_x.plot(ns, [simulations[n].throughput for n in ns], "s--", color="#4e79a7",
                  alpha=0.55, label=label)
        ax_l.plot(ns, [simulations[n].p95_latency_s for n in ns], "s--", color="#e15759",
                  alpha=0.55, label=f"p95 {label}")
    for ax in (ax_x, ax_l):
        if len(sizes) > 1 and min(sizes) > 0:
            ax.set_xscale("log", base=2)
        ax.xaxis.set_major_locator(FixedLocator(sizes))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(s) for s in sizes])
        ax.set_xlabel("pool size (threads)")
        ax.grid(True, alpha=0.3)
        if rec is not None:
            lo, hi = rec.rule_of_thumb
            ax.axvspan(lo * 0.92, hi * 1.08, color="#bab0ac", alpha=0.25,
                       label=f"rule of thumb ({lo}-{hi})" if lo != hi else f"rule of thumb ({lo})")
            ax.axvline(rec.size, color="#59a14f", linestyle=":", linewidth=2,
                       label=f"recommended: {rec.size}")
    ax_x.set_ylabel("throughput (jobs/s)")
    ax_x.set_ylim(bottom=0)
    ax_l.set_ylabel("job latency (s)")
    ax_l.set_ylim(bottom=0)
    ax_x.set_title("throughput")
    ax_l.set_title("latency")
    ax_x.legend(fontsize=8, loc="best")
    ax_l.legend(fontsize=8, loc="best")
    if rec is not None:
        fig.suptitle(f"recommended pool size {rec.size} ({rec.workload} work on "
                     f"{rec.cpu_count} CPUs)", fontsize=11)
    return fig
