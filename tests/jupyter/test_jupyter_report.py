"""Static reports and snapshots of a recorded trace (what %%routilux trace shows)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from jupyter_helpers import finish, make_flow, post_many

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure

from routilux import Runtime
from routilux.sync import TracedLock
from routilux_jupyter import Report, report, snapshot


@pytest.fixture
def traced() -> Runtime:
    lock = TracedLock("shared")

    def work(slot_data, policy_message, worker_state):
        with lock:
            sum(range(2000))

    rt = Runtime(thread_pool_size=3, trace=True)
    post_many(rt, make_flow(work), 200)
    finish(rt)
    yield rt
    rt.shutdown()


@pytest.mark.timeout(60)
def test_report_of_a_runtime_a_tracer_and_a_saved_file(traced: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    traced.tracer.save(path)
    for source in (traced, traced.tracer, path, str(path)):
        rep = report(source)
        assert isinstance(rep, Report) and isinstance(rep.figure, Figure)
        assert rep.counters["posted"] == rep.counters["completed"] == 200
        assert rep.png().startswith(b"\x89PNG")
        assert rep._repr_png_() == rep.png()


@pytest.mark.timeout(60)
def test_report_displays_a_png_and_the_findings_as_text_and_html(
    traced: Runtime, ip: object
) -> None:
    from IPython.utils.capture import capture_output

    rep = report(traced)
    with capture_output() as cap:
        rep._ipython_display_()
    image, findings = (o.data for o in cap.outputs)
    assert image["image/png"]
    assert findings["text/plain"] == rep.text()
    assert "Findings" in findings["text/html"]


@pytest.mark.timeout(60)
def test_report_without_diagnostics_says_so(
    traced: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "routilux.diagnostics", None)
    rep = report(traced)
    assert rep.note is not None and "routilux.diagnostics is not available" in rep.note
    assert "routilux.diagnostics is not available" in rep.text()
    assert report(traced, diagnose=False).note is None


@pytest.mark.timeout(60)
def test_a_failing_detector_is_noted_and_logged_not_raised(
    traced: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("routilux.diagnostics")
    import routilux.diagnostics

    def broken(source, **kwargs):
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(routilux.diagnostics, "diagnose", broken)
    rep = report(traced)
    assert rep.note == "diagnose failed: RuntimeError: detector exploded"
    assert any("diagnose failed" in r.getMessage() for r in caplog.records)


@pytest.mark.timeout(60)
def test_snapshot_draws_the_lock_table_and_the_lanes(traced: Runtime) -> None:
    fig = snapshot(traced, title="t")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    tables = [ax.tables[0] for ax in fig.axes if ax.tables]
    lanes = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert lanes and all(name.startswith("thread-") for name in lanes)
    if tables:  # the lock was contended: a table row names it
        cells = [c.get_text().get_text() for c in tables[0].get_celld().values()]
        assert "shared" in cells
    else:
        assert any("no traced lock was contended" in t for t in texts)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("source", "error", "match"),
    [
        (42, TypeError, "expected a routilux Runtime, a Tracer or a saved trace's path, got int"),
        ("/no/such/trace.jsonl", FileNotFoundError, "trace.jsonl"),
    ],
)
def test_bad_sources(source: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        report(source)


@pytest.mark.timeout(60)
def test_untraced_runtime_is_refused() -> None:
    with Runtime(thread_pool_size=1) as rt, pytest.raises(ValueError, match="trace=True"):
        snapshot(rt)
