"""routilux_jupyter.Dashboard without a browser: pump, counters, slider, errors, lifecycle.

Widgets run on ipywidgets' dummy comm here (no kernel); what goes over the wire is checked by
wrapping the view's comm. Every dashboard is closed and every runtime shut down.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
import types
import weakref
from typing import Any

import pytest
from jupyter_helpers import SharedCounter, finish, make_flow, post_many

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

import routilux_jupyter
from routilux import Runtime
from routilux.trace import Tracer
from routilux_jupyter import Dashboard, _widgets

pytestmark = pytest.mark.usefixtures("close_dashboards")

COUNTER_KEYS = {"posted", "running", "completed", "failed", "jobs_per_s", "p95_latency_s"}


class CommSpy:
    """Wraps a widget's comm and keeps every message the kernel would send."""

    def __init__(self, widget: Any) -> None:
        self.messages: list[dict[str, Any]] = []
        self._send = widget.comm.send
        widget.comm.send = self.send

    def send(self, data: Any = None, *args: Any, **kwargs: Any) -> Any:
        self.messages.append(data)
        return self._send(data, *args, **kwargs)


def job_counts(stats: Any) -> dict[str, int]:
    return {k: getattr(stats, k) for k in ("posted", "running", "completed", "failed")}


@pytest.mark.timeout(60)
def test_counters_equal_statistics_after_a_final_refresh(runtime: Runtime) -> None:
    flow = make_flow()
    dash = Dashboard(runtime)
    post_many(runtime, flow, 500)
    finish(runtime)
    counters = dash.refresh()
    assert set(counters) == COUNTER_KEYS
    assert dash.counters == counters
    assert {k: counters[k] for k in ("posted", "running", "completed", "failed")} == job_counts(
        runtime.statistics()
    )
    assert counters["posted"] == counters["completed"] == 500
    assert counters["p95_latency_s"] is not None and counters["p95_latency_s"] > 0
    dash.close()


@pytest.mark.timeout(60)
def test_each_tick_is_exactly_one_comm_message(runtime: Runtime) -> None:
    flow = make_flow()
    dash = Dashboard(runtime, start=False)
    spy = CommSpy(dash._view)
    sent = dash.updates_sent
    for round_ in range(3):
        post_many(runtime, flow, 50)
        dash.refresh()
        assert dash.updates_sent == sent + round_ + 1
    assert len(spy.messages) == 3
    for message in spy.messages:
        assert message["method"] == "update"
        assert list(message["state"]) == ["_delta"]  # one trait, nothing echoed alongside
    finish(runtime)
    dash.close()


@pytest.mark.timeout(60)
def test_pump_updates_while_the_main_thread_is_busy_and_at_most_ten_a_second(
    runtime: Runtime,
) -> None:
    flow = make_flow()
    dash = Dashboard(runtime)
    assert dash.running
    start_sent = dash.updates_sent
    begin = time.monotonic()
    # The main thread stays busy posting (like a cell that posts jobs) until the pump has
    # sent three updates of its own.
    while dash.updates_sent < start_sent + 3:
        post_many(runtime, flow, 20)
        assert time.monotonic() - begin < 20, "the pump sent nothing while the main thread ran"
    elapsed = time.monotonic() - begin
    sent = dash.updates_sent - start_sent
    assert sent <= elapsed / dash.interval_s + 2
    finish(runtime)
    dash.close()
    assert not dash.running


@pytest.mark.timeout(60)
def test_close_stops_and_joins_the_pump_and_is_idempotent(runtime: Runtime) -> None:
    dash = Dashboard(runtime)
    thread = dash._thread
    assert thread is not None and thread.is_alive() and thread.daemon
    assert dash in routilux_jupyter.dashboards()
    dash.close()
    assert not thread.is_alive()
    assert dash.closed and dash not in routilux_jupyter.dashboards()
    dash.close()
    with pytest.raises(RuntimeError, match="closed"):
        dash.refresh()
    assert "closed" in repr(dash)


@pytest.mark.timeout(60)
def test_stop_keeps_the_view_and_says_stopped(runtime: Runtime) -> None:
    dash = Dashboard(runtime)
    dash.stop()
    assert not dash.running
    assert dash._view._delta["status"] == "stopped"
    dash.refresh()  # a stopped dashboard still refreshes on demand
    assert dash._view._delta["status"].startswith("stopped")
    routilux_jupyter.stop_all()
    dash.close()


@pytest.mark.timeout(60)
def test_pump_ends_when_the_runtime_shuts_down() -> None:
    rt = Runtime(thread_pool_size=2, trace=True)
    dash = Dashboard(rt)
    thread = dash._thread
    rt.shutdown()
    thread.join(10)
    assert not thread.is_alive()
    assert dash._view._delta["status"] == "runtime shut down"
    dash.close()


@pytest.mark.timeout(60)
def test_dashboard_holds_the_runtime_weakly() -> None:
    rt = Runtime(thread_pool_size=2, trace=True)
    dash = Dashboard(rt, start=False)
    dash.refresh()
    rt.shutdown()
    ref = weakref.ref(rt)
    del rt
    gc.collect()
    assert ref() is None, "the dashboard kept its runtime alive"
    assert dash.runtime is None
    assert dash.refresh_quietly() is False
    assert dash._view._delta["status"] == "runtime was garbage-collected"
    dash.close()


@pytest.mark.timeout(60)
def test_refresh_error_shows_in_the_view_is_logged_and_clears(
    runtime: Runtime, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    dash = Dashboard(runtime, start=False)

    def broken() -> Any:
        raise OSError("statistics unavailable")

    monkeypatch.setattr(runtime, "statistics", broken)
    caplog.set_level(logging.ERROR, logger="routilux_jupyter")
    with pytest.raises(OSError, match="statistics unavailable"):
        dash.refresh()
    delta = dash._view._delta
    assert delta["error"] == "dashboard refresh failed: OSError: statistics unavailable"
    assert delta["status"] == "error"
    assert any("statistics unavailable" in r.getMessage() for r in caplog.records)
    # the pump's quiet path: shown and logged once, not raised, and the pump goes on
    caplog.clear()
    assert dash.refresh_quietly() is True
    assert dash.refresh_quietly() is True
    assert dash._view._delta["error"].endswith("statistics unavailable")
    assert len([r for r in caplog.records if "statistics unavailable" in r.getMessage()]) == 0
    monkeypatch.undo()
    dash.refresh()
    assert dash._view._delta["error"] is None
    dash.close()


@pytest.mark.timeout(60)
def test_a_view_that_cannot_be_updated_is_logged_once_and_the_pump_goes_on(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    dash = Dashboard(runtime, start=False)

    def closed_comm(*args: Any, **kwargs: Any) -> None:
        raise OSError("comm closed")

    dash._view.comm.send = closed_comm
    caplog.set_level(logging.ERROR, logger="routilux_jupyter")
    for _ in range(3):
        assert dash.refresh_quietly() is True
    with pytest.raises(OSError, match="comm closed"):
        dash.refresh()
    logged = [r for r in caplog.records if "comm closed" in r.getMessage()]
    assert 1 <= len(logged) <= 2  # the refresh error, and the error note that failed too
    dash.close()


@pytest.mark.timeout(60)
def test_slider_resizes_the_runtime_and_follows_outside_resizes(runtime: Runtime) -> None:
    dash = Dashboard(runtime, start=False)
    slider = dash._slider
    assert slider.value == 4 and not slider.disabled
    slider.value = 6
    assert runtime.statistics().pool_size == 6
    runtime.resize(2)  # elsewhere, e.g. in a cell
    dash.refresh()
    assert slider.value == 2
    assert runtime.statistics().pool_size == 2  # following did not resize back
    events = [e for e in runtime.tracer.read(0) if e.kind == "pool.resize"]
    assert [e.value for e in events] == [6, 2]
    dash.close()


@pytest.mark.timeout(60)
def test_failed_resize_shows_in_the_status_line(runtime: Runtime) -> None:
    dash = Dashboard(runtime, start=False)
    runtime.shutdown()
    dash._slider.value = 8
    assert "resize(8) failed: RuntimeShutDown: Runtime is shut down" in dash._view._delta["error"]
    dash.close()


@pytest.mark.timeout(60)
def test_shared_pool_runtime_has_a_disabled_slider() -> None:
    import routilux

    rt = Runtime(thread_pool_size=0, trace=True)
    try:
        dash = Dashboard(rt, start=False)
        assert dash._slider.disabled
        dash.close()
    finally:
        rt.shutdown()
        routilux.reset_worker_manager()


@pytest.mark.timeout(60)
def test_dropped_events_badge_counts_the_tracer_overflow() -> None:
    rt = Runtime(thread_pool_size=2, trace=Tracer(capacity=50))
    try:
        flow = make_flow()
        post_many(rt, flow, 100)
        finish(rt)
        dash = Dashboard(rt, start=False)
        delta = dash._view._delta
        assert delta["dropped"] == rt.statistics().trace_dropped > 0
        dash.close()
    finally:
        rt.shutdown()


@pytest.mark.timeout(60)
def test_runtime_without_trace_shows_counters_only() -> None:
    rt = Runtime(thread_pool_size=2)
    try:
        flow = make_flow()
        dash = Dashboard(rt, start=False)
        post_many(rt, flow, 30)
        finish(rt)
        counters = dash.refresh()
        assert counters["completed"] == 30 and counters["p95_latency_s"] is None
        assert dash._view._delta["tracing"] is False
        dash.close()
    finally:
        rt.shutdown()


@pytest.mark.timeout(60)
def test_a_new_view_gets_the_whole_history(runtime: Runtime) -> None:
    flow = make_flow()
    dash = Dashboard(runtime, start=False)
    post_many(runtime, flow, 40)
    finish(runtime)
    dash.refresh()
    sent: list[Any] = []
    dash._view.send = sent.append  # what the view's hello is answered with
    dash._view._handle_custom_msg({"type": "hello"}, [])
    assert len(sent) == 1 and sent[0]["type"] == "reset"
    frame = sent[0]["frame"]
    assert frame["reset"] is True and frame["tick"] == dash._view._delta["tick"]
    assert frame["lanes"] and frame["bars"] and frame["counters"]["completed"] == 40
    dash._view._handle_custom_msg({"type": "something else"}, [])
    assert len(sent) == 1
    dash.close()


@pytest.mark.timeout(60)
def test_diagnose_adds_findings_to_the_view(runtime: Runtime) -> None:
    pytest.importorskip("routilux.diagnostics")
    flow = make_flow()
    flow.add_routine(SharedCounter(), "counter")
    post_many(runtime, flow, 10, routine="counter")
    finish(runtime)
    dash = Dashboard(runtime, start=False)
    findings = dash.diagnose()
    assert [f.kind for f in findings] == ["shared_mutable_state"]
    shown = dash._view._delta["findings"]
    assert shown[0]["kind"] == "shared_mutable_state"
    assert shown[0]["notebook"] == "01_shared_mutable_state.ipynb" and shown[0]["fix"]
    dash.close()


@pytest.mark.timeout(60)
def test_snapshot_is_a_plain_matplotlib_figure(runtime: Runtime) -> None:
    from matplotlib.figure import Figure

    flow = make_flow()
    dash = Dashboard(runtime, start=False)
    post_many(runtime, flow, 50)
    finish(runtime)
    dash.refresh()
    fig = dash.snapshot()
    assert isinstance(fig, Figure)
    from routilux_jupyter._charts import figure_png

    assert figure_png(fig).startswith(b"\x89PNG")
    dash.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"runtime": "runtime"}, TypeError, "Dashboard needs a routilux.Runtime, got str"),
        ({"interval_s": 0.001}, ValueError, "interval_s must be >= 0.05 seconds"),
        ({"window_s": 0}, ValueError, "window_s must be between 1 and 3600 seconds"),
    ],
)
def test_bad_arguments(runtime: Runtime, kwargs: dict, error: type, match: str) -> None:
    args = {"runtime": runtime, **kwargs}
    with pytest.raises(error, match=match):
        Dashboard(args.pop("runtime"), **args)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("module", ["anywidget", "ipywidgets"])
def test_missing_widget_package_names_it_and_its_minimum_version(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    monkeypatch.setattr(_widgets, "_live_view_class", None)
    monkeypatch.setitem(sys.modules, module, None)
    minimum = _widgets.REQUIREMENTS[module]
    with pytest.raises(ImportError, match=rf"needs {module}>={minimum}, which is not installed"):
        Dashboard(runtime)


@pytest.mark.timeout(60)
def test_too_old_widget_package_is_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_widgets, "_live_view_class", None)
    monkeypatch.setitem(sys.modules, "anywidget", types.SimpleNamespace(__version__="0.8.4"))
    with pytest.raises(ImportError, match=r"needs anywidget>=0\.9, but anywidget 0\.8\.4 is"):
        Dashboard(runtime)


@pytest.mark.timeout(60)
def test_importing_the_package_loads_no_widget_library() -> None:
    import subprocess

    code = (
        "import sys, routilux_jupyter; "
        "print(sorted(m for m in ('ipywidgets', 'anywidget', 'matplotlib', 'IPython') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.timeout(60)
def test_dashboard_displays_as_its_widget(runtime: Runtime) -> None:
    dash = Dashboard(runtime, start=False)
    bundle = dash._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == dash.widget.model_id
    # named by its notebook variable or its flows (issue 14), never by its address
    assert data["text/plain"].startswith("routilux dashboard (Runtime")
    assert "0x" not in data["text/plain"]
    dash.close()


@pytest.mark.timeout(60)
def test_interpreter_exit_stops_a_dashboard_left_open() -> None:
    import subprocess

    code = (
        "import routilux, routilux_jupyter\n"
        "rt = routilux.Runtime(thread_pool_size=2, trace=True)\n"
        "dash = routilux_jupyter.Dashboard(rt, interval_s=0.05)\n"
        "assert dash.running\n"
        "print('left open')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == "left open", out.stderr
    assert "Traceback" not in out.stderr and "Exception" not in out.stderr, out.stderr
