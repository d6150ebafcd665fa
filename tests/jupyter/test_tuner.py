"""routilux_jupyter.Tuner and ``%routilux tune``: the sweep runs in a thread, the progress
bar follows it, the chart and the recommendation appear, "Apply" resizes a live runtime.

Runs are coordinated with Events (a gate the logic waits on) where a test needs the sweep
to be in progress; sleeping logic is the workload, never the coordination.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from jupyter_helpers import make_flow, wait_until

from routilux import Runtime

pytest.importorskip("ipywidgets")
pytest.importorskip("matplotlib")
pytest.importorskip("pandas")

from IPython.core.error import UsageError

from routilux_jupyter import Tuner

PNG = b"\x89PNG\r\n\x1a\n"
WAIT_S = 60.0  # seconds; far beyond what any sweep here needs


def sleeper(seconds: float = 0.005) -> Any:
    def work(slot_data, policy_message, worker_state):
        time.sleep(seconds)

    return work


def gated(gate: threading.Event) -> Any:
    def work(slot_data, policy_message, worker_state):
        gate.wait(WAIT_S)

    return work


@pytest.fixture
def tuners() -> Any:
    made: list[Tuner] = []
    yield made
    for tuner in made:
        tuner.close()
    assert not [t for t in made if t.running], "a tuner thread did not end"


@pytest.mark.timeout(90)
def test_the_sweep_runs_in_the_background_and_fills_the_widget(tuners: list[Tuner]) -> None:
    gate = threading.Event()
    flow = make_flow(gated(gate))
    seen: list[float] = []
    tuner = Tuner(flow, "work", "in", sizes=[1, 2], jobs=4)
    tuners.append(tuner)
    tuner._progress.observe(lambda change: seen.append(change["new"]), names="value")
    # The constructor returned while the first size's jobs are still blocked.
    assert tuner.running and not tuner.done
    assert "running" in repr(tuner)
    wait_until(lambda: "size 1 (1/2)" in tuner._status.value, "progress in the status line")
    assert tuner._run_button.disabled and tuner._apply_button.disabled
    gate.set()
    assert tuner.wait(WAIT_S)
    assert tuner.error is None, tuner.error
    assert tuner.done
    assert list(tuner.frame["size"]) == [1, 2]
    assert tuner.recommendation is not None
    assert set(tuner.simulations) == {1, 2} and set(tuner.traces) == {1, 2}
    assert tuner.simulations[2].jobs == 4
    assert bytes(tuner._image.value).startswith(PNG)
    assert tuner._progress.value == 1.0 and tuner._progress.bar_style == "success"
    assert f"recommended pool size: {tuner.recommendation.size}" in tuner._status.value
    assert "<li>" in tuner._reasons.value and "Little&#x27;s law" in tuner._reasons.value
    assert seen and seen == sorted(seen) and seen[-1] == 1.0  # set from the sweep thread
    assert not tuner._run_button.disabled
    assert tuner._apply_button.disabled  # no runtime was given
    assert f"recommends {tuner.recommendation.size}" in repr(tuner)


@pytest.mark.timeout(90)
def test_apply_resizes_the_live_runtime(tuners: list[Tuner]) -> None:
    flow = make_flow(sleeper())
    live = Runtime(thread_pool_size=1)
    try:
        tuner = Tuner(flow, "work", "in", sizes=[2, 3], jobs=6, runtime=live)
        tuners.append(tuner)
        assert tuner.wait(WAIT_S) and tuner.error is None, tuner.error
        size = tuner.recommendation.size
        assert not tuner._apply_button.disabled
        assert tuner._apply_button.description == f"Apply {size}"
        tuner._apply_button.click()
        assert live.statistics().pool_size == size
        assert f"runtime resized to {size} threads" in tuner._status.value
        assert tuner.apply() == size
    finally:
        live.shutdown()
    tuner._apply_button.click()  # a shut-down runtime: the error shows, nothing raises
    assert "apply failed" in tuner._status.value


@pytest.mark.timeout(60)
def test_apply_without_a_runtime_or_a_result_says_what_is_missing(tuners: list[Tuner]) -> None:
    tuner = Tuner(make_flow(sleeper()), "work", "in", sizes=[1], jobs=1, start=False)
    tuners.append(tuner)
    assert "not run" in repr(tuner)
    with pytest.raises(RuntimeError, match="no recommendation yet"):
        tuner.apply()
    with pytest.raises(RuntimeError, match="no sweep has finished yet"):
        tuner.figure()
    tuner.start()
    assert tuner.wait(WAIT_S)
    with pytest.raises(RuntimeError, match="create the Tuner with runtime="):
        tuner.apply()


@pytest.mark.timeout(60)
def test_a_failed_sweep_turns_the_bar_red_and_keeps_the_error(tuners: list[Tuner]) -> None:
    tuner = Tuner(make_flow(sleeper()), "nosuch", "in", sizes=[1], jobs=1)
    tuners.append(tuner)
    assert tuner.wait(WAIT_S)
    assert isinstance(tuner.error, ValueError)
    assert tuner._progress.bar_style == "danger"
    assert "failed: ValueError" in tuner._status.value and "nosuch" in tuner._status.value
    assert not tuner._run_button.disabled  # it may be run again
    assert "failed: ValueError" in repr(tuner)


@pytest.mark.timeout(60)
def test_run_again_and_close_while_running(tuners: list[Tuner]) -> None:
    gate = threading.Event()
    tuner = Tuner(make_flow(gated(gate)), "work", "in", sizes=[1, 2, 4], jobs=3)
    tuners.append(tuner)
    with pytest.raises(RuntimeError, match="already running"):
        tuner.start()
    wait_until(lambda: tuner._progress.value > 0 or "size 1" in tuner._status.value,
               "the sweep to start")
    threading.Timer(0.05, gate.set).start()  # unblock the pool threads being abandoned
    started = time.monotonic()
    tuner.close()
    assert not tuner.running and time.monotonic() - started < 15
    assert tuner.frame is None and tuner.recommendation is None
    with pytest.raises(RuntimeError, match="closed"):
        tuner.start()


@pytest.mark.timeout(60)
def test_the_static_figure_and_the_plain_text_fallback(tuners: list[Tuner]) -> None:
    tuner = Tuner(make_flow(sleeper()), "work", "in", sizes=[1, 2], jobs=4)
    tuners.append(tuner)
    assert tuner.wait(WAIT_S) and tuner.error is None, tuner.error
    fig = tuner.figure()
    ax_x, ax_l = fig.axes
    assert ax_x.get_ylabel() == "throughput (jobs/s)"
    assert ax_l.get_ylabel() == "job latency (s)"
    labels = [line.get_label() for line in ax_x.get_lines()]
    assert "measured" in labels and "replay of size 1" in labels
    assert any(label.startswith("recommended: ") for label in labels)
    bundle = tuner._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["text/plain"].startswith("<routilux Tuner ")


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sizes": []}, ValueError, "at least one pool size"),
        ({"simulate_from": 3}, ValueError, "simulate_from=3 is not one of the sizes"),
        ({"runtime": "rt"}, TypeError, "runtime must be a routilux.Runtime"),
    ],
)
def test_tuner_rejects_bad_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    args: dict[str, Any] = {"sizes": [1, 2], "jobs": 1, "start": False}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        Tuner("x", "work", "in", **args)


# -- %routilux tune -------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_the_magic_sweeps_and_returns_the_tuner(ip: Any) -> None:
    flow = make_flow(sleeper())
    ip.user_ns["tune_flow"] = flow
    ip.user_ns["payload"] = {"x": 1}
    ip.user_ns["live"] = Runtime(thread_pool_size=1)
    tuner = ip.run_line_magic(
        "routilux",
        "tune tune_flow work in --sizes 1,2 --jobs 5 --data payload --latency-target 5 "
        "--apply-to live --wait",
    )
    try:
        assert isinstance(tuner, Tuner)
        assert tuner.done and tuner.error is None, tuner.error
        assert list(tuner.frame["size"]) == [1, 2] and list(tuner.frame["jobs"]) == [5, 5]
        assert tuner.latency_target_s == 5.0
        assert tuner.runtime is ip.user_ns["live"]
        assert tuner.apply() == tuner.recommendation.size
        assert ip.user_ns["live"].statistics().pool_size == tuner.recommendation.size
    finally:
        tuner.close()
    # By name, with a factory for data, and without --wait: it returns at once.
    gate = threading.Event()
    gated_flow = make_flow(gated(gate))
    ip.user_ns["make"] = lambda i: {"i": i}
    tuner = ip.run_line_magic(
        "routilux", f"tune {gated_flow.flow_id} work in --sizes 1 --jobs 2 --data make")
    try:
        assert tuner.running
        gate.set()
        assert tuner.wait(WAIT_S) and tuner.error is None, tuner.error
        assert list(tuner.frame["size"]) == [1]
    finally:
        gate.set()
        tuner.close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("tune f work in --sizes 0,1", "--sizes must be distinct ints >= 1"),
        ("tune f work in --sizes 2,2", "--sizes must be distinct ints >= 1"),
        ("tune f work in --sizes ,", "--sizes must be distinct ints >= 1"),
        ("tune f work in --jobs 0", "--jobs must be >= 1, got 0"),
        ("tune f work in --rate 0", "--rate must be > 0"),
        ("tune f work in --latency-target -1", "--latency-target must be > 0"),
        ("tune f work in --data nosuch", "--data nosuch: no such variable"),
        ("tune f work in --data number", "--data number is a int; it must be a dict"),
        ("tune f work in --apply-to nosuch", "no variable 'nosuch' in the notebook"),
        ("tune f work in --jobs many", "argument --jobs: invalid int value: 'many'"),
    ],
)
def test_the_magic_rejects_bad_arguments(ip: Any, line: str, match: str) -> None:
    ip.user_ns["number"] = 7
    with pytest.raises(UsageError, match=match):
        ip.run_line_magic("routilux", line)


@pytest.mark.timeout(60)
def test_the_magic_documents_its_options(ip: Any) -> None:
    doc = ip.magics_manager.magics["line"]["routilux"].__doc__
    for text in ("%routilux tune FLOW ROUTINE SLOT", "--sizes N,N,...", "--jobs N", "--rate R",
                 "--data VAR", "--latency-target S", "--apply-to RUNTIME", "--wait"):
        assert text in doc, text
