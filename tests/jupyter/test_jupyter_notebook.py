"""A small notebook run by nbclient in a real kernel (the venv's python3 kernel).

It loads the extension, starts the monitor, posts 2,000 jobs from a cell, and checks from
inside the kernel that the dashboard sent more than one update while they ran and that its
counters equal ``runtime.statistics()`` after a final refresh. Then ``%%routilux trace``,
``run_sync``, top-level ``await`` and ``%routilux export`` in the same kernel.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = [pytest.mark.slow, pytest.mark.allow_thread_leak]  # nbclient's own threads

SETUP = """\
%load_ext routilux_jupyter
import asyncio, json, sys, time
import routilux_jupyter
from routilux import Flow, Routine, Runtime
from routilux.activation_policies import immediate_policy

def work(slot_data, policy_message, worker_state):
    time.sleep(0.001)

routine = Routine()
routine.add_slot("in")
routine.set_logic(work)
routine.set_activation_policy(immediate_policy())
flow = Flow("notebook-test-flow")
flow.add_routine(routine, "work")
runtime = Runtime(thread_pool_size=4, trace=True)
runtime.exec("notebook-test-flow")
print("EXECUTABLE", sys.executable)
"""

MONITOR = """\
%routilux monitor runtime
dash = routilux_jupyter.dashboards()[-1]
"""

POST = """\
before = dash.updates_sent
for i in range(2000):
    runtime.post("notebook-test-flow", "work", "in", {"i": i})
assert runtime.wait_until_all_jobs_finished(timeout=120)
sent_while_running = dash.updates_sent - before
"""

CHECK = """\
monitored = runtime
counters = dash.refresh()
stats = runtime.statistics()
print("RESULT", json.dumps({
    "sent_while_running": sent_while_running,
    "pump_alive": dash.running,
    "counters": counters,
    "stats": {k: getattr(stats, k) for k in ("posted", "running", "completed", "failed")},
}))
"""

TRACE = """\
%%routilux trace --pool 2
for i in range(50):
    runtime.post("notebook-test-flow", "work", "in", {"i": i})
"""

ASYNC = """\
got = routilux_jupyter.run_sync(asyncio.sleep(0, "run_sync ok"))
finished = await runtime.wait_async(timeout=30)
print("ASYNC", got, finished)
"""

EXPORT = """\
%routilux export exported.json runtime
"""

CLEANUP = """\
dash.close()
monitored.shutdown()
runtime.shutdown()
%unload_ext routilux_jupyter
print("CLEAN", dash.running)
"""


def stream_text(cell: Any) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")


def marked(cells: list[Any], mark: str) -> str:
    for cell in cells:
        for line in stream_text(cell).splitlines():
            if line.startswith(mark + " "):
                return line[len(mark) + 1 :]
    raise AssertionError(f"no {mark!r} line in the notebook's output")


@pytest.mark.timeout(300)
def test_notebook_monitor_counts_and_reports(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(src)
        for src in (SETUP, MONITOR, POST, CHECK, TRACE, ASYNC, EXPORT, CLEANUP)
    ]
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=240, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    (tmp_path / "executed.ipynb").write_text(nbformat.writes(nb))

    # the kernel is this venv's python (jupyter_client swaps "python" for sys.executable)
    assert Path(marked(nb.cells, "EXECUTABLE")).resolve() == Path(sys.executable).resolve()

    # The monitor cell showed the dashboard; CLEANUP closed it, which left its output the
    # picture of its last state (#12: readable without a kernel), the live view gone.
    [monitor_output] = nb.cells[1].outputs
    assert set(monitor_output["data"]) == {"image/png", "text/plain"}, monitor_output["data"]
    assert "closed; its last picture" in monitor_output["data"]["text/plain"]

    result = json.loads(marked(nb.cells, "RESULT"))
    assert result["sent_while_running"] > 1, result
    assert result["pump_alive"] is True
    counters, stats = result["counters"], result["stats"]
    assert {k: counters[k] for k in stats} == stats, result
    assert stats["posted"] == stats["completed"] == 2000

    trace_outputs = nb.cells[4].outputs
    assert "`runtime` is now a new Runtime(thread_pool_size=2" in stream_text(nb.cells[4])
    assert any("image/png" in o.get("data", {}) for o in trace_outputs)
    assert any("Findings" in o.get("data", {}).get("text/html", "") for o in trace_outputs)

    assert marked(nb.cells, "ASYNC") == "run_sync ok True"
    assert "wrote" in stream_text(nb.cells[6]) and (tmp_path / "exported.json").exists()
    assert json.loads((tmp_path / "exported.json").read_text())["traceEvents"]
    assert marked(nb.cells, "CLEAN") == "False"
