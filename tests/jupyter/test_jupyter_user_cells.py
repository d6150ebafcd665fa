"""Issue 14, item 3: the notebook tools on the user's own cells.

``%%routilux trace`` traces the runtimes a cell creates or posts to, and ``export`` /
``doctor`` afterwards cover them; ``print()`` in logic goes per job to
``get_job_output`` and, in a real kernel, under the cell that posted the job; the
dashboard names a runtime by its variable or its flows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("IPython")

from IPython.utils.capture import capture_output

from routilux import Runtime
from routilux.monitoring import MonitoringRegistry

THREE_STAGE_CELL = """
from routilux import Flow, Routine
from routilux.activation_policies import immediate_policy

def stage(name, nxt):
    def logic(slot_data, policy_message, worker_state):
        if nxt:
            flow.routines[name].emit("out", **slot_data["in"][0])
    r = Routine()
    r.add_slot("in")
    r.add_event("out")
    r.set_logic(logic)
    r.set_activation_policy(immediate_policy())
    return r

flow = Flow()
for name, nxt in (("a", True), ("b", True), ("c", False)):
    flow.add_routine(stage(name, nxt), name)
flow.connect("a", "out", "b", "in")
flow.connect("b", "out", "c", "in")
"""


def magic(ip: Any, line: str, cell: str | None = None) -> Any:
    if cell is None:
        return ip.run_line_magic("routilux", line)
    return ip.run_cell_magic("routilux", line, cell)


def slices(path: Path) -> list[dict[str, Any]]:
    return [e for e in json.loads(path.read_text())["traceEvents"] if e.get("ph") == "X"]


@pytest.mark.timeout(60)
def test_trace_covers_a_runtime_the_cell_creates_untraced(ip: Any, tmp_path: Path) -> None:
    ip.run_cell(THREE_STAGE_CELL)
    cell = (
        "mine = Runtime(thread_pool_size=2)\n"
        "jobs = [mine.post(flow, 'a', 'in', {'i': i})[1] for i in range(20)]\n"
    )
    ip.user_ns["Runtime"] = Runtime
    with capture_output() as cap:
        magic(ip, "trace --no-diagnose", cell)
    assert cap.outputs and "image/png" in cap.outputs[0].data
    mine = ip.user_ns["mine"]
    assert mine.tracer is not None  # created while the magic was on: traced from birth
    assert all(j.status == "completed" for j in ip.user_ns["jobs"])
    assert not MonitoringRegistry.is_enabled()  # the magic switched it off again
    target = tmp_path / "cell.json"
    with capture_output() as cap:
        magic(ip, f"export {target}")
    assert f"to {target}" in cap.stdout
    tasks = slices(target)
    assert len(tasks) == 60  # one slice per task: 20 jobs x 3 routines
    assert sorted({t["name"] for t in tasks}) == ["a", "b", "c"]


@pytest.mark.timeout(60)
def test_trace_covers_a_runtime_from_an_earlier_cell_and_leaves_it_untraced(
    ip: Any, tmp_path: Path
) -> None:
    ip.run_cell(THREE_STAGE_CELL)
    rt = ip.user_ns["rt"] = Runtime(thread_pool_size=2)
    assert rt.tracer is None
    with capture_output():
        magic(ip, "trace --no-diagnose",
              "for i in range(5):\n    rt.post(flow, 'a', 'in', {'i': i})\n")
    assert rt.tracer is None  # tracing only while the cell (and its report) ran
    target = tmp_path / "earlier.json"
    with capture_output():
        magic(ip, f"export {target}")  # the trace the magic recorded is still there
    assert len(slices(target)) == 15
    with capture_output() as cap:
        magic(ip, "doctor")
    assert cap.outputs[0].data["text/plain"]


@pytest.mark.timeout(60)
def test_print_in_logic_is_kept_per_job(ip: Any) -> None:
    import sys

    from routilux import RoutedStdout

    # pytest swaps sys.stdout between a fixture's setup and the test body: load the
    # extension again here, as a notebook's %load_ext would, so its RoutedStdout is in place
    ip.run_line_magic("unload_ext", "routilux_jupyter")
    ip.run_line_magic("load_ext", "routilux_jupyter")
    assert isinstance(sys.stdout, RoutedStdout)
    ip.run_cell(
        "from routilux import Flow, Routine, Runtime, get_job_output\n"
        "from routilux.activation_policies import immediate_policy\n"
        "def shout(slot_data, policy_message, worker_state):\n"
        "    print('job says', slot_data['in'][0]['n'])\n"
        "r = Routine(); r.add_slot('in'); r.set_logic(shout)\n"
        "r.set_activation_policy(immediate_policy())\n"
        "pflow = Flow(); pflow.add_routine(r, 'shout')\n"
        "prt = Runtime(thread_pool_size=2)\n"
        "pjobs = [prt.post(pflow, 'shout', 'in', {'n': n})[1] for n in range(3)]\n"
        "assert all(j.wait(30) for j in pjobs)\n"
    )
    get_job_output = ip.user_ns["get_job_output"]
    for n, job in enumerate(ip.user_ns["pjobs"]):
        assert get_job_output(job.job_id, incremental=False) == f"job says {n}\n"
    ip.user_ns["prt"].shutdown()
    ip.run_line_magic("unload_ext", "routilux_jupyter")
    assert not isinstance(sys.stdout, RoutedStdout)  # unload puts the stream back
    ip.run_line_magic("load_ext", "routilux_jupyter")  # the fixture unloads it again


@pytest.mark.timeout(60)
def test_dashboard_title_names_the_runtime_variable_and_its_flows(ip: Any) -> None:
    from routilux_jupyter import Dashboard

    ip.run_cell(THREE_STAGE_CELL)
    rt = ip.user_ns["etl_runtime"] = Runtime(thread_pool_size=2)
    rt.post(ip.user_ns["flow"], "a", "in", {})[1].wait(30)
    dash = Dashboard(rt, start=False)
    try:
        text = dash._repr_mimebundle_()
        data = text[0] if isinstance(text, tuple) else text
        plain = data["text/plain"]
        assert "etl_runtime" in plain and ip.user_ns["flow"].flow_id in plain
        assert "0x" not in plain
    finally:
        dash.close()
