"""``%routilux`` / ``%%routilux`` through IPython's in-process shell.

Bad arguments are a table: each must raise ``UsageError`` with a message that names the
problem, and IPython must print it as exactly one line, with no traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from jupyter_helpers import SharedCounter, finish, make_flow, post_many

pytest.importorskip("IPython")

from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import routilux_jupyter
from routilux import Runtime

FLOW_CELL = """
from jupyter_helpers import make_flow
flow = make_flow()
"""


def outputs(cap: Any) -> list[dict[str, Any]]:
    return [o.data for o in cap.outputs]


def magic(ip: Any, line: str, cell: str | None = None) -> Any:
    if cell is None:
        return ip.run_line_magic("routilux", line)
    return ip.run_cell_magic("routilux", line, cell)


# -- loading ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_load_registers_and_unload_removes_the_magics(ip: Any) -> None:
    manager = ip.magics_manager
    assert "routilux" in manager.magics["line"] and "routilux" in manager.magics["cell"]
    ip.user_ns["rt"] = Runtime(thread_pool_size=2, trace=True)
    magic(ip, "monitor rt")
    (dash,) = routilux_jupyter.dashboards()
    assert dash.running
    ip.run_line_magic("unload_ext", "routilux_jupyter")
    assert "routilux" not in manager.magics["line"] and "routilux" not in manager.magics["cell"]
    assert not dash.running, "unload must stop the dashboards' pumps"
    ip.run_line_magic("load_ext", "routilux_jupyter")
    assert "routilux" in manager.magics["line"]


@pytest.mark.timeout(60)
def test_help_documents_every_subcommand_and_option(ip: Any) -> None:
    doc = ip.magics_manager.magics["line"]["routilux"].__doc__
    for text in (
        "%routilux monitor [RUNTIME]", "%%routilux trace [--pool N]", "%routilux doctor",
        "%routilux export PATH", "%routilux tune", "--pool N", "--interval S", "--window S",
        "--timeout S", "--no-diagnose", "%routilux tune FLOW ROUTINE SLOT", "--sizes N,N,...",
    ):  # fmt: skip
        assert text in doc, f"{text!r} missing from %routilux?"
    with capture_output() as cap:
        ip.run_cell("%routilux?")
    assert "%%routilux trace" in cap.stdout or any(
        "%%routilux trace" in str(d) for d in outputs(cap)
    )


# -- bad arguments ------------------------------------------------------------------------

BAD = [
    ("", "missing subcommand"),
    ("frobnicate", "unknown subcommand 'frobnicate'; choose one of monitor, trace, doctor"),
    ("monitor --bogus", r"%routilux monitor: unrecognized arguments: --bogus"),
    ("monitor nosuch", "no variable 'nosuch' in the notebook"),
    ("monitor not_a_runtime", "'not_a_runtime' is a int, not a routilux Runtime"),
    ("monitor 1+1", "RUNTIME must be a variable name, got '1\\+1'"),
    ("monitor 'unclosed", "%routilux monitor: No closing quotation"),
    ("monitor rt --interval 0.001", r"interval_s must be >= 0.05 seconds"),
    ("monitor rt --interval fast", "argument --interval: invalid float value: 'fast'"),
    ("monitor rt extra", "unrecognized arguments: extra"),
    ("trace", "trace runs a cell: put %%routilux trace"),
    ("tune", "%routilux tune: the following arguments are required: FLOW, ROUTINE, SLOT"),
    ("tune f r s --sizes 1,x", "--sizes must be comma-separated ints"),
    ("export", "%routilux export: the following arguments are required: PATH"),
    ("export /no/such/dir/t.json rt", r"cannot write /no/such/dir/t.json: No such file"),
    ("export t.json untraced", "this runtime records no trace"),
    ("doctor not_a_runtime", "'not_a_runtime' is a int, not a routilux Runtime or Tracer"),
]


@pytest.fixture
def ns(ip: Any) -> Any:
    ip.user_ns["not_a_runtime"] = 3
    ip.user_ns["rt"] = Runtime(thread_pool_size=2, trace=True)
    ip.user_ns["untraced"] = Runtime(thread_pool_size=1)
    return ip


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("line", "match"), BAD)
def test_bad_arguments_raise_usage_error(ns: Any, line: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        magic(ns, line)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("line", "cell", "match"),
    [
        ("monitor rt", "x = 1", "%%routilux monitor does not take a cell"),
        ("trace --pool 0", "x = 1", "--pool must be >= 1, got 0"),
        ("trace --pool two", "x = 1", "argument --pool: invalid int value: 'two'"),
        ("trace", "x = 1", "no traced runtime recorded anything"),
    ],
)
def test_bad_cell_magic_arguments(ns: Any, line: str, cell: str, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        magic(ns, line, cell)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("line", ["%routilux frobnicate", "%routilux monitor --bogus",
                                  "%routilux tune", "%routilux monitor nosuch"])  # fmt: skip
def test_a_bad_argument_prints_one_line_and_no_traceback(
    ns: Any, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = ns.run_cell(line)
    assert isinstance(result.error_in_exec, UsageError)
    captured = capsys.readouterr()
    text = (captured.out + captured.err).strip()
    assert "Traceback" not in text
    lines = text.splitlines()
    assert len(lines) == 1 and lines[0].startswith("UsageError: "), text


@pytest.mark.timeout(60)
def test_no_runtime_at_all_says_how_to_make_one(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from routilux_jupyter import _magics

    monkeypatch.setattr(_magics, "latest_runtime", lambda: None)
    for line in ("monitor", "doctor", "export t.json"):
        with pytest.raises(UsageError, match=r"no live routilux Runtime: create one"):
            magic(ip, line)


# -- monitor ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_monitor_shows_a_dashboard_of_the_named_or_latest_runtime(ip: Any) -> None:
    ip.user_ns["rt"] = rt = Runtime(thread_pool_size=2, trace=True)
    with capture_output() as cap:
        assert magic(ip, "monitor rt --interval 0.2 --window 10") is None
    (data,) = outputs(cap)
    assert "application/vnd.jupyter.widget-view+json" in data
    (dash,) = routilux_jupyter.dashboards()
    assert dash.runtime is rt and dash.interval_s == 0.2 and dash.running
    newer = ip.user_ns["newer"] = Runtime(thread_pool_size=1, trace=True)
    with capture_output():
        magic(ip, "monitor")
    assert routilux_jupyter.dashboards()[-1].runtime is newer


@pytest.mark.timeout(60)
def test_monitor_again_replaces_the_previous_dashboard(ip: Any) -> None:
    ip.user_ns["rt"] = Runtime(thread_pool_size=2, trace=True)
    with capture_output():
        magic(ip, "monitor rt")
        first = routilux_jupyter.dashboards()[-1]
        magic(ip, "monitor rt")
    second = routilux_jupyter.dashboards()[-1]
    assert first is not second
    assert first.closed and not first.running and second.running


@pytest.mark.timeout(60)
def test_monitor_without_widgets_is_one_usage_line(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from routilux_jupyter import _widgets

    ip.user_ns["rt"] = Runtime(thread_pool_size=2, trace=True)
    monkeypatch.setattr(_widgets, "_live_view_class", None)
    monkeypatch.setitem(sys.modules, "anywidget", None)
    with pytest.raises(UsageError, match=r"needs anywidget>=0\.9, which is not installed"):
        magic(ip, "monitor rt")


# -- trace --------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_trace_with_pool_provides_a_runtime_and_shows_the_report(ip: Any) -> None:
    ip.run_cell(FLOW_CELL)
    cell = "runtime.exec(flow.flow_id)\nfor i in range(100):\n    runtime.post(flow.flow_id, 'work', 'in', {'i': i})\n"
    with capture_output() as cap:
        magic(ip, "trace --pool 3", cell)
    rt = ip.user_ns["runtime"]
    assert isinstance(rt, Runtime) and rt.tracer is not None
    assert rt.statistics().pool_size == 3 and rt.statistics().completed == 100
    datas = outputs(cap)
    assert datas[0]["image/png"]  # the figure
    assert "Findings" in datas[1]["text/html"] and datas[1]["text/plain"]


@pytest.mark.timeout(60)
def test_trace_finds_the_runtime_the_cell_made(ip: Any, tmp_path: Path) -> None:
    ip.run_cell(FLOW_CELL)
    cell = (
        "from routilux import Runtime\n"
        "with Runtime(thread_pool_size=2, trace=True) as mine:\n"
        "    for i in range(20):\n"
        "        mine.post(flow.flow_id, 'work', 'in', {'i': i})\n"
    )
    with capture_output() as cap:
        magic(ip, "trace --no-diagnose", cell)
    assert outputs(cap)[0]["image/png"]
    assert "runtime" not in ip.user_ns or ip.user_ns["runtime"] is not ip.user_ns["mine"]
    # export defaults to the runtime the last trace used (here shut down by the cell)
    target = tmp_path / "last.json"
    with capture_output() as cap:
        magic(ip, f"export {target}")
    assert f"to {target}; open it in https://ui.perfetto.dev" in cap.stdout
    assert json.loads(target.read_text())["traceEvents"]


@pytest.mark.timeout(60)
def test_trace_reports_even_when_the_cell_raises(ip: Any) -> None:
    ip.run_cell(FLOW_CELL)
    cell = "runtime.post(flow.flow_id, 'work', 'in', {})\nraise ValueError('boom in cell')\n"
    with capture_output() as cap:
        magic(ip, "trace --pool 1", cell)
    assert "boom in cell" in cap.stdout + cap.stderr
    assert outputs(cap)[0]["image/png"]


# -- doctor and export --------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_doctor_shows_findings_with_fix_and_notebook(ip: Any) -> None:
    pytest.importorskip("routilux.diagnostics")
    flow = make_flow()
    flow.add_routine(SharedCounter(), "counter")
    rt = ip.user_ns["rt"] = Runtime(thread_pool_size=2, trace=True)
    post_many(rt, flow, 5, routine="counter")
    finish(rt)
    with capture_output() as cap:
        magic(ip, "doctor rt")
    (data,) = outputs(cap)
    text = data["text/plain"]
    assert "shared" in text.lower() or "self.counter" in text
    assert "fix:" in text and "explained in: 01_shared_mutable_state.ipynb" in text
    assert "01_shared_mutable_state.ipynb" in data["text/html"]
    # recorded into the trace, so a live dashboard and an exported trace show it too
    recorded = [e for e in rt.tracer.read() if e.kind == "finding"]
    assert [e.name for e in recorded] == ["shared_mutable_state"]
    with capture_output():
        magic(ip, "doctor rt")
    assert len([e for e in rt.tracer.read() if e.kind == "finding"]) == 1  # once


@pytest.mark.timeout(60)
def test_doctor_healthy_runtime_says_no_findings(ip: Any) -> None:
    pytest.importorskip("routilux.diagnostics")
    rt = ip.user_ns["rt"] = Runtime(thread_pool_size=2, trace=True)
    post_many(rt, make_flow(), 5)
    finish(rt)
    with capture_output() as cap:
        magic(ip, "doctor rt")
    assert outputs(cap)[0]["text/plain"].startswith("No findings")


@pytest.mark.timeout(60)
def test_doctor_without_diagnostics_is_one_clear_line(
    ip: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ip.user_ns["rt"] = Runtime(thread_pool_size=2, trace=True)
    monkeypatch.setitem(sys.modules, "routilux.diagnostics", None)
    with pytest.raises(UsageError, match="routilux.diagnostics is not available"):
        magic(ip, "doctor rt")


@pytest.mark.timeout(60)
def test_export_writes_chrome_trace_json(ip: Any, tmp_path: Path) -> None:
    rt = ip.user_ns["rt"] = Runtime(thread_pool_size=2, trace=True)
    post_many(rt, make_flow(), 10)
    finish(rt)
    target = tmp_path / "run.json"
    with capture_output() as cap:
        magic(ip, f"export {target} rt")
    trace = json.loads(target.read_text())
    slices = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
    assert len(slices) == 10
    written = sum(1 for e in trace["traceEvents"] if e["ph"] != "M")
    assert cap.stdout.startswith(f"wrote {written} trace events to {target}")
    # a Tracer variable works too
    ip.user_ns["tr"] = rt.tracer
    with capture_output():
        magic(ip, f"export {tmp_path / 'tracer.json'} tr")
    assert (tmp_path / "tracer.json").exists()
