"""Widget outputs readable without a kernel (#12): a PNG of the latest state in the bundle.

The Dashboard and the Tuner display under their own display id; the bundle carries an
``image/png`` beside the widget view, calls from a cell renew it, and ``close()`` leaves the
picture only. Displays are captured from IPython's in-process shell (``capture_output``
records every publish, updates included, with their transient display ids).
``SweepProgressBar`` leaves a static line of the sweep's last state the same way.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from jupyter_helpers import finish, make_flow, post_many

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")
pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

from IPython.display import display
from IPython.utils.capture import capture_output

from routilux import Runtime
from routilux.tuning import sweep
from routilux_jupyter import Dashboard, SweepProgressBar, Tuner

PNG = b"\x89PNG\r\n\x1a\n"
WIDGET = "application/vnd.jupyter.widget-view+json"
WAIT_S = 60.0  # seconds; far beyond what any run here needs


def sleeper(seconds: float = 0.002) -> Any:
    def work(slot_data, policy_message, worker_state):
        time.sleep(seconds)

    return work


def png_of(data: dict[str, Any]) -> bytes:
    raw = base64.b64decode(data["image/png"])
    assert raw.startswith(PNG), raw[:16]
    return raw


def display_id(output: Any) -> str:
    return (output.transient or {}).get("display_id")


@pytest.mark.timeout(90)
def test_dashboard_output_carries_its_latest_picture_and_keeps_it_on_close(
    ip: Any, runtime: Runtime
) -> None:
    flow = make_flow(sleeper())
    dash = Dashboard(runtime, start=False)
    with capture_output() as cap:
        display(dash)
        post_many(runtime, flow, 40)
        finish(runtime)
        dash.refresh()  # the run ended: renew the picture
        dash.close()
    shown, *updates = cap.outputs
    assert not shown.update and display_id(shown)
    assert WIDGET in shown.data and shown.data["text/plain"].startswith("routilux dashboard")
    before = png_of(shown.data)

    assert len(updates) == 2 and all(u.update for u in updates)
    assert {display_id(u) for u in updates} == {display_id(shown)}
    after_run, closed = updates
    assert WIDGET in after_run.data and png_of(after_run.data) != before
    # close(): the live view is gone from the output; the picture and a plain line stay.
    assert WIDGET not in closed.data and "closed" in closed.data["text/plain"]
    assert png_of(closed.data)


@pytest.mark.timeout(60)
def test_dashboard_never_displayed_publishes_nothing(ip: Any, runtime: Runtime) -> None:
    dash = Dashboard(runtime, start=False)
    with capture_output() as cap:
        dash.refresh()
        dash.stop()
        dash.close()
    assert cap.outputs == []
    # its bundle still carries the picture, for any frontend that asks for one
    assert png_of(dash._repr_mimebundle_())


@pytest.mark.timeout(90)
def test_tuner_output_carries_the_chart_after_the_sweep_and_keeps_it_on_close(ip: Any) -> None:
    tuner = Tuner(make_flow(sleeper()), "work", "in", sizes=[1, 2], jobs=4, start=False)
    try:
        with capture_output() as cap:
            display(tuner)  # before any run: no chart yet
            tuner.start()
            assert tuner.wait(WAIT_S) and tuner.error is None, tuner.error
            tuner.close()
    finally:
        tuner.close()
    shown, *updates = cap.outputs
    assert WIDGET in shown.data and "image/png" not in shown.data
    assert updates and all(u.update and display_id(u) == display_id(shown) for u in updates)
    after_run = updates[0]
    assert WIDGET in after_run.data
    assert png_of(after_run.data) == bytes(tuner._image.value)
    closed = updates[-1]
    assert WIDGET not in closed.data and png_of(closed.data)
    assert closed.data["text/plain"].startswith("<routilux Tuner ")
    assert f"recommends {tuner.recommendation.size}" in closed.data["text/plain"]


@pytest.mark.timeout(90)
def test_sweep_progress_bar_leaves_the_last_line_of_the_sweep(ip: Any) -> None:
    bar = SweepProgressBar("demo")
    with capture_output() as cap:
        frame = sweep(make_flow(sleeper()), "work", "in", sizes=[1, 2], jobs=6, progress=bar)
    assert cap.stderr == ""  # no stderr lines: the bar replaces them
    shown, *updates = cap.outputs
    assert WIDGET in shown.data
    assert updates and all(u.update and display_id(u) == display_id(shown) for u in updates)
    last = updates[-1].data
    assert WIDGET not in last  # the bar closed when the last size was done
    throughput = frame.set_index("size").loc[2, "throughput"]
    assert last["text/plain"].startswith(f"demo: 100% | size 2 (2/2): {throughput:.1f} jobs/s")
    assert "<progress value='1.000'" in last["text/html"]
    assert bar.done
