"""Static reports of a recorded trace: a matplotlib figure plus the findings.

What ``%%routilux trace`` shows after its cell, and what a notebook rendered without a
kernel (nbconvert, GitHub, Binder before widgets load) still shows: a PNG and text/HTML,
no widget.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from routilux import Runtime
from routilux.trace import Tracer

from ._charts import dashboard_figure, figure_png
from ._findings import (
    DiagnosticsUnavailable,
    finding_dicts,
    findings_html,
    findings_text,
    run_diagnose,
)
from ._model import DashboardModel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Report", "report", "snapshot", "tracer_of"]

logger = logging.getLogger("routilux_jupyter")


def tracer_of(source: Any) -> Tracer:
    """The tracer behind ``source``: a Runtime, a Tracer, or a path written by Tracer.save.

    Raises:
        ValueError: A runtime that records no trace.
        TypeError: Anything else.
    """
    if isinstance(source, Tracer):
        return source
    if isinstance(source, Runtime):
        if source.tracer is None:
            raise ValueError("this runtime records no trace; create it with Runtime(trace=True)")
        return source.tracer
    if isinstance(source, str | os.PathLike):
        return Tracer.load(source)
    raise TypeError(
        f"expected a routilux Runtime, a Tracer or a saved trace's path, got "
        f"{type(source).__name__}"
    )


def _model_of(tracer: Tracer) -> DashboardModel:
    read_rows = getattr(tracer, "read_rows", None)  # cheaper than read(), same events
    events = read_rows(0) if read_rows is not None else tracer.read(0)
    return DashboardModel.from_events(events, dropped=tracer.dropped)


def snapshot(source: Any, title: str | None = None) -> Figure:
    """A static figure of a whole recorded trace (timeline, queue/busy, lock table)."""
    model = _model_of(tracer_of(source))
    return dashboard_figure(model.view(), title=title or "routilux trace")


class Report:
    """A figure and the findings for one trace; displays as a PNG plus text/HTML.

    Attributes:
        figure: The matplotlib ``Figure``.
        findings: Findings as dicts (kind, severity, title, evidence, fix, notebook).
        counters: posted, running, completed, failed, jobs_per_s, p95_latency_s.
        note: Why there may be fewer findings than expected (diagnostics missing/failed).
        locks: The lock table as of the trace's end, as dicts, most waited-for first:
            name, waits, total_wait_s, max_wait_s, timeouts, holder (None once released),
            waiters (still waiting), deadlocked, and caused: the waiting charged to each
            holder, ``[{routine, site, total_s, max_s, holds}, ...]``, biggest first.
        decisions: The automatic-sizing decisions (``pool.autosize`` events), oldest
            first, as dicts: t_s (seconds since the trace's first event), action, old, new,
            reason, and the numbers behind it (throughput, arrival_rate, service_s, ...).
            Empty for a runtime of fixed size. The figure numbers the newest of them.
    """

    def __init__(
        self,
        figure: Figure,
        findings: list[dict[str, Any]],
        counters: dict[str, Any],
        note: str | None = None,
        locks: list[dict[str, Any]] | None = None,
        decisions: list[dict[str, Any]] | None = None,
    ) -> None:
        self.figure = figure
        self.findings = findings
        self.counters = counters
        self.note = note
        self.locks = locks if locks is not None else []
        self.decisions = decisions if decisions is not None else []
        self._png: bytes | None = None

    def png(self) -> bytes:
        """The figure as PNG bytes (rendered once)."""
        if self._png is None:
            self._png = figure_png(self.figure)
        return self._png

    def text(self) -> str:
        return findings_text(self.findings, self.note)

    def _repr_png_(self) -> bytes:
        return self.png()

    def _ipython_display_(self) -> None:
        import base64

        from IPython.display import display

        counters = self.counters
        alt = (
            f"routilux trace report: {counters.get('completed', 0)} of "
            f"{counters.get('posted', 0)} jobs completed (timeline, queue depth, locks)"
        )
        png = base64.b64encode(self.png()).decode("ascii")
        display({"image/png": png, "text/plain": alt}, raw=True)
        display(
            {"text/plain": self.text(), "text/html": findings_html(self.findings, self.note)},
            raw=True,
        )

    def __repr__(self) -> str:
        return f"<Report {len(self.findings)} finding(s) counters={self.counters}>"


def report(source: Any, diagnose: bool = True, title: str | None = None) -> Report:
    """Build the static report of a runtime's (or tracer's, or saved file's) trace.

    Findings are the trace's own ``finding``/``deadlock.detected`` events plus, with
    ``diagnose``, those of ``routilux.diagnostics.diagnose(source)`` when available. A
    failing detector is noted in the report and logged; the charts still show.
    """
    tracer = tracer_of(source)
    model = _model_of(tracer)
    note = None
    if diagnose:
        try:
            # a runtime gives the detectors its statistics too; a saved file, its tracer
            target = source if isinstance(source, Runtime | Tracer) else tracer
            for item in finding_dicts(run_diagnose(target, record=True)):
                model.add_finding(item)
        except DiagnosticsUnavailable as exc:
            note = str(exc)
        except Exception as exc:
            logger.exception("routilux_jupyter: diagnose failed")
            note = f"diagnose failed: {type(exc).__name__}: {exc}"
    view = model.view()
    figure = dashboard_figure(view, title=title or "routilux trace")
    decisions = [{"t_s": d.t, "action": d.action, "old": d.old, "new": d.new,
                  "reason": d.reason, **d.numbers} for d in view.decisions]
    return Report(figure, view.findings, view.counters, note, locks=_lock_dicts(view.locks),
                  decisions=decisions)


def _lock_dicts(rows: list[Any]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        item = asdict(row)
        item["waiters"] = list(row.waiters)
        out.append(item)
    return out
