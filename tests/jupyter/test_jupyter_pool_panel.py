"""The "Queue depth and busy threads" panel draws routilux.trace.pool_series (issue 12).

A lock-wait run (one holder, three waiters on a pool of 4) is drawn by ``snapshot``,
``report`` and the live ``Dashboard``; each test reads back what was drawn (matplotlib's
line data, the widget's message payload) and compares it with ``pool_series``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_helpers import JOIN_TIMEOUT, wait_until

from routilux import Flow, Routine, Runtime, immediate_policy
from routilux.sync import TracedLock
from routilux.trace import TraceEvent, pool_series

pytest.importorskip("matplotlib")

pytestmark = pytest.mark.usefixtures("close_dashboards")

PANEL = "Queue depth and busy threads"


def routine(logic: Any) -> Routine:
    r = Routine()
    r.add_slot("in")
    r.set_logic(logic)
    r.set_activation_policy(immediate_policy())
    return r


class LockRun:
    """One holder keeps 'ledger' while three waiters block on it; then 20 quick jobs."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.held, self.release = threading.Event(), threading.Event()
        lock = TracedLock("ledger", tracer=rt.tracer)

        def holder(d: Any, m: Any, ws: Any) -> None:
            with lock:
                self.held.set()
                assert self.release.wait(JOIN_TIMEOUT)

        def waiter(d: Any, m: Any, ws: Any) -> None:
            with lock:
                pass

        self.flow = Flow(f"pool-panel-{uuid.uuid4().hex[:8]}")
        self.flow.add_routine(routine(holder), "holder")
        self.flow.add_routine(routine(waiter), "waiter")
        rt.exec(self.flow)

    def until_waiting(self) -> None:
        self.rt.post(self.flow.flow_id, "holder", "in", {})
        assert self.held.wait(JOIN_TIMEOUT)
        for _ in range(3):
            self.rt.post(self.flow.flow_id, "waiter", "in", {})
        wait_until(lambda: sum(e.kind == "lock.wait" for e in self.rt.tracer.read()) == 3,
                   "three lock waits")

    def finish(self) -> None:
        self.release.set()
        for _ in range(20):
            self.rt.post(self.flow.flow_id, "waiter", "in", {})
        assert self.rt.wait_until_all_jobs_finished(timeout=JOIN_TIMEOUT)


@pytest.fixture
def lock_run() -> Iterator[LockRun]:
    rt = Runtime(thread_pool_size=4, trace=True)
    run = LockRun(rt)
    try:
        yield run
    finally:
        run.release.set()  # a failed test must not leave the holder waiting
        rt.shutdown(wait=True, timeout=10)


def series_rows(events: list[TraceEvent]) -> list[tuple[float, int, int, int]]:
    origin = events[0].ts_ns
    return [((p.ts_ns - origin) * 1e-9, p.queued, p.busy, p.size or 0)
            for p in pool_series(events)]


def drawn(fig: Any) -> dict[str, list[tuple[float, float]]]:
    """The panel's step lines by label: [(x, y), ...] as matplotlib holds them."""
    axes = [ax for ax in fig.axes if ax.get_title(loc="left") == PANEL]
    assert len(axes) == 1
    panel = axes[0]
    twins = [ax for ax in fig.axes if ax is not panel and ax.bbox.bounds == panel.bbox.bounds]
    lines = {}
    for ax in [panel, *twins]:
        for line in ax.get_lines():
            lines[line.get_label()] = list(zip(line.get_xdata(), line.get_ydata(), strict=True))
    return lines


def assert_panel_is_the_series(fig: Any, events: list[TraceEvent]) -> None:
    rows = series_rows(events)
    lines = drawn(fig)
    for label, column in (("queued", 1), ("busy threads", 2), ("pool size", 3)):
        points = lines[label]
        # every change of pool_series, then the last state held to the right edge
        assert points[:-1] == [(r[0], r[column]) for r in rows], label
        assert points[-1][1] == rows[-1][column] and points[-1][0] >= rows[-1][0]


@pytest.mark.timeout(120)
def test_snapshot_and_report_draw_the_pool_series(lock_run: LockRun) -> None:
    from routilux_jupyter import report, snapshot

    lock_run.until_waiting()
    events = lock_run.rt.tracer.read()
    third = [e for e in events if e.kind == "lock.wait"][-1]
    mid = drawn(snapshot(lock_run.rt.tracer))
    busy_at = [y for x, y in mid["busy threads"] if x <= (third.ts_ns - events[0].ts_ns) * 1e-9]
    assert busy_at[-1] == 4  # the holder and its three waiters hold the 4 threads
    lock_run.finish()
    events = lock_run.rt.tracer.read()
    assert_panel_is_the_series(snapshot(lock_run.rt.tracer), events)
    assert_panel_is_the_series(report(lock_run.rt, diagnose=False).figure, events)


@pytest.mark.timeout(120)
def test_the_dashboard_sends_the_pool_series(
    lock_run: LockRun, dashboard_messages: list[dict[str, Any]]
) -> None:
    from routilux_jupyter import Dashboard

    sent = dashboard_messages  # every message, the first one included
    dash = Dashboard(lock_run.rt, start=False)
    lock_run.until_waiting()
    dash.refresh()
    lock_run.finish()
    dash.refresh()
    dash.close()
    events = lock_run.rt.tracer.read()
    payload = [s for msg in sent for s in msg.get("samples", ())]
    assert payload == [[round(r[0], 5), r[1], r[2], r[3]] for r in series_rows(events)]
    assert max(s[2] for s in payload) == 4
