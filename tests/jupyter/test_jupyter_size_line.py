"""The pool-size line and the automatic-sizing decisions on it (issue 18, dashboard part).

A runtime with ``thread_pool_size="auto"`` runs some jobs, is turned to a fixed size by the
dashboard's slider (``resize(3)``: automatic sizing off) and back on with
``resize("auto")``. ``snapshot``, ``report`` and the live ``Dashboard`` draw it; each test
reads back what was drawn (matplotlib's line data and texts, the widget's message payload)
and compares it with ``pool_series`` and the trace's ``pool.autosize`` events. A runtime of
fixed size, resized by hand, draws its size line and no decision at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_helpers import finish, make_flow, post_many

from routilux import Runtime
from routilux.trace import TraceEvent, pool_series

pytest.importorskip("matplotlib")

pytestmark = pytest.mark.usefixtures("close_dashboards")

PANEL = "Queue depth and busy threads"
DECISIONS_PANEL = "Pool size decisions (automatic sizing)"
MAX_SIZE = 8
START = min(MAX_SIZE, (os.cpu_count() or 1) + 4)  # where automatic sizing starts


def panel_axes(fig: Any, title: str) -> list[Any]:
    return [ax for ax in fig.axes if ax.get_title(loc="left") == title]


def drawn(fig: Any) -> dict[str, list[tuple[float, float]]]:
    """The queue panel's lines by label (its twin axis included): [(x, y), ...]."""
    (panel,) = panel_axes(fig, PANEL)
    twins = [ax for ax in fig.axes if ax is not panel and ax.bbox.bounds == panel.bbox.bounds]
    lines = {}
    for ax in [panel, *twins]:
        for line in ax.get_lines():
            lines[line.get_label()] = list(zip(line.get_xdata(), line.get_ydata(), strict=True))
    return lines


def size_rows(events: list[TraceEvent]) -> list[tuple[float, int]]:
    origin = events[0].ts_ns
    return [((p.ts_ns - origin) * 1e-9, p.size or 0) for p in pool_series(events)]


def autosize(events: list[TraceEvent]) -> list[TraceEvent]:
    return [e for e in events if e.kind == "pool.autosize"]


def assert_size_line_is_the_series(fig: Any, events: list[TraceEvent]) -> None:
    points = drawn(fig)["pool size"]
    rows = size_rows(events)
    assert points[:-1] == rows  # every change, then the last size held to the right edge
    assert points[-1][1] == rows[-1][1] and points[-1][0] >= rows[-1][0]


def switched(rt: Runtime, flow: Any) -> None:
    """Jobs at the automatic size, the user's resize(3), jobs, resize('auto'), jobs."""
    rt.exec(flow)
    post_many(rt, flow, 20)
    finish(rt)
    rt.resize(3)
    post_many(rt, flow, 20)
    finish(rt)
    rt.resize("auto")
    post_many(rt, flow, 20)
    finish(rt)


@pytest.fixture
def auto_rt() -> Iterator[Runtime]:
    rt = Runtime(thread_pool_size="auto", max_pool_size=MAX_SIZE, trace=True)
    try:
        yield rt
    finally:
        rt.shutdown(wait=True, timeout=10)


def forced(events: list[TraceEvent]) -> list[tuple[str, int, str]]:
    """The switches this test makes (the controller may add decisions of its own)."""
    return [(e.name, int(e.value), e.detail["reason"]) for e in autosize(events)
            if e.name in ("on", "off")]


def check_forced(events: list[TraceEvent]) -> None:
    on, off, again = forced(events)
    assert on[:2] == ("on", START) and "start at" in on[2]
    assert off == ("off", 3, "automatic sizing off: resize(3) by the user")
    assert again[:2] == ("on", 3) and "resize('auto')" in again[2]


@pytest.mark.timeout(120)
def test_snapshot_and_report_draw_the_size_line_and_the_decisions(auto_rt: Runtime) -> None:
    from routilux_jupyter import report, snapshot

    switched(auto_rt, make_flow())
    events = auto_rt.tracer.read()
    check_forced(events)
    origin = events[0].ts_ns
    decisions = autosize(events)
    expected = [((e.ts_ns - origin) * 1e-9, float(e.value)) for e in decisions]
    rep = report(auto_rt, diagnose=False)
    for fig in (snapshot(auto_rt.tracer), rep.figure):
        assert_size_line_is_the_series(fig, events)
        assert drawn(fig)["sizing decisions"] == expected
        (listing,) = panel_axes(fig, DECISIONS_PANEL)
        text = "\n".join(t.get_text() for t in listing.texts)
        first = max(0, len(decisions) - 12)  # the list shows the newest 12
        for i, e in enumerate(decisions[first:], start=first + 1):
            assert f"{i}. " in text and e.detail["reason"][:60] in text
        (panel,) = panel_axes(fig, PANEL)
        assert panel.get_title(loc="right") == "pool size: automatic"
    assert [(d["action"], d["new"], d["reason"]) for d in rep.decisions] == [
        (e.name, int(e.value), e.detail["reason"]) for e in decisions]
    (off,) = [d for d in rep.decisions if d["action"] == "off"]
    assert off["new"] == 3 and off["t_s"] == expected[[e.name for e in decisions].index("off")][0]


@pytest.mark.timeout(120)
def test_the_dashboard_sends_the_size_line_the_decisions_and_the_auto_state(
    auto_rt: Runtime, dashboard_messages: list[dict[str, Any]]
) -> None:
    from routilux_jupyter import Dashboard

    sent = dashboard_messages  # every message, the first one included
    flow = make_flow()
    auto_rt.exec(flow)
    dash = Dashboard(auto_rt, start=False)
    slider = dash._slider
    post_many(auto_rt, flow, 20)
    finish(auto_rt)
    dash.refresh()
    assert sent[-1]["pool"]["size"] == slider.value == START
    assert slider.description == "pool size (auto)" and "turns it off" in slider.tooltip
    last_auto = [m for m in sent if "auto" in m][-1]
    assert last_auto["auto"] is True and last_auto["auto_reason"]

    slider.value = 3  # the user moves the slider: resize(3), automatic sizing off
    assert not auto_rt.statistics().pool_auto
    post_many(auto_rt, flow, 20)
    finish(auto_rt)
    dash.refresh()
    last_auto = [m for m in sent if "auto" in m][-1]
    assert (last_auto["auto"], last_auto["auto_reason"]) == (False, None)
    assert slider.description == "pool size" and sent[-1]["pool"]["size"] == 3

    auto_rt.resize("auto")
    post_many(auto_rt, flow, 20)
    finish(auto_rt)
    dash.refresh()
    assert [m for m in sent if "auto" in m][-1]["auto"] is True
    assert slider.description == "pool size (auto)"
    frame = dash._model.full()
    dash.close()

    events = auto_rt.tracer.read()
    check_forced(events)
    origin = events[0].ts_ns
    samples = [s for msg in sent for s in msg.get("samples", ())]
    assert [(s[0], s[3]) for s in samples] == [(round(t, 5), z) for t, z in size_rows(events)]
    expected = [[round((e.ts_ns - origin) * 1e-9, 5), e.name, e.detail["old"], int(e.value),
                 e.detail["reason"]] for e in autosize(events)]
    assert [d for msg in sent for d in msg.get("decisions", ())] == expected
    assert frame["decisions"] == expected  # a view that reconnects gets them all
    assert all(len(msg.get("decisions", ())) <= 20 for msg in sent)


@pytest.mark.timeout(120)
def test_a_fixed_size_runtime_draws_its_size_line_and_no_decisions(
    runtime: Runtime, dashboard_messages: list[dict[str, Any]]
) -> None:
    from routilux_jupyter import Dashboard, report, snapshot

    sent = dashboard_messages
    flow = make_flow()
    runtime.exec(flow)
    dash = Dashboard(runtime, start=False)
    post_many(runtime, flow, 20)
    finish(runtime)
    runtime.resize(2)  # a change of the size line, made by hand: no decision
    post_many(runtime, flow, 20)
    finish(runtime)
    dash.refresh()
    fig = dash.snapshot()
    dash.close()
    events = runtime.tracer.read()
    assert not autosize(events)
    assert [z for _, z in size_rows(events)][-1] == 2 and size_rows(events)[0][1] == 4
    assert not [m for m in sent if m.get("decisions")]
    assert all(m.get("auto") is None for m in sent)
    rep = report(runtime, diagnose=False)
    for figure in (snapshot(runtime.tracer), rep.figure, fig):
        assert "sizing decisions" not in drawn(figure)
        assert not panel_axes(figure, DECISIONS_PANEL)
        (panel,) = panel_axes(figure, PANEL)
        assert panel.get_title(loc="right") == ""
    assert_size_line_is_the_series(rep.figure, events)
    assert rep.decisions == []
    assert dash._slider.description == "pool size"
