"""routilux_jupyter._model: trace events -> lanes, bars, samples, counters, locks, findings.

Pure functions over hand-built events: no runtime, no widgets, no threads.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from routilux.trace import TraceEvent, pool_series
from routilux_jupyter._model import (
    MESSAGE_VERSION,
    DashboardModel,
    notebook_for,
    p95,
)

T0 = 1_000_000_000_000  # ns; an arbitrary monotonic origin


class Events:
    """Builds TraceEvents with consecutive seqs; times in seconds after T0."""

    def __init__(self) -> None:
        self.events: list[TraceEvent] = []

    def __call__(self, kind: str, t: float, thread: int = 1, thread_name: str | None = None,
                 **fields: Any) -> TraceEvent:  # fmt: skip
        event = TraceEvent(
            len(self.events) + 1, T0 + int(t * 1e9), kind, thread,
            thread_name or f"RoutiluxWorker-{thread}", **fields,
        )  # fmt: skip
        self.events.append(event)
        return event

    def task(self, t: float, dur: float, thread: int = 1, routine: str = "r", job: str = "j",
             thread_name: str | None = None) -> None:  # fmt: skip
        self("task.started", t, thread, thread_name, routine=routine, job_id=job, value=0.0)
        self("task.finished", t + dur, thread, thread_name, routine=routine, job_id=job,
             value=dur)  # fmt: skip

    def job(self, t: float, latency: float, status: str = "completed", job: str = "j") -> None:
        self("job.posted", t - latency, 0, "MainThread", job_id=job)
        self(f"job.{status}", t, 1, job_id=job, value=latency)


def model_of(ev: Events, **kwargs: Any) -> DashboardModel:
    m = DashboardModel(**kwargs)
    m.feed(ev.events)
    return m


# -- lanes and bars -----------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_one_lane_per_thread_and_tasks_pair_up() -> None:
    ev = Events()
    ev.task(0.0, 0.1, thread=1, routine="a", job="j1")
    ev.task(0.05, 0.2, thread=2, routine="b", job="j2")
    ev("job.posted", 0.3, 99, "MainThread", job_id="j3")  # the poster gets no lane
    m = model_of(ev, merge_gap_s=0.0)
    msg = m.delta()
    assert msg["lanes"] == [[0, "RoutiluxWorker-1", "thread"], [1, "RoutiluxWorker-2", "thread"]]
    assert msg["routines"] == [[0, "a"], [1, "b"]]
    assert msg["bars"] == [[0, 0.0, 0.1, "task", 0], [1, 0.05, 0.25, "task", 1]]
    assert msg["open"] == []


@pytest.mark.timeout(10)
def test_recycled_thread_ident_gets_its_own_lane() -> None:
    ev = Events()
    ev.task(0.0, 0.1, thread=7, routine="a")
    ev.task(0.2, 0.1, thread=7, thread_name="other-thread", routine="a")
    ev("task.started", 0.4, 7, "other-thread", routine="a", job_id="k")
    m = model_of(ev, merge_gap_s=0.0)
    msg = m.delta()
    assert [lane[1] for lane in msg["lanes"]] == ["RoutiluxWorker-7", "other-thread"]
    assert [b[0] for b in msg["bars"]] == [0, 1]
    assert msg["open"] == [[1, 0.4, "task", 0]]


@pytest.mark.timeout(10)
def test_open_task_is_sent_until_it_finishes_and_a_lost_start_is_rebuilt() -> None:
    ev = Events()
    ev("task.started", 0.0, 1, routine="a", job_id="j1")
    m = model_of(ev, merge_gap_s=0.0)
    assert m.delta()["open"] == [[0, 0.0, "task", 0]]
    # a finish whose start never arrived (dropped): start = finish - run time
    later = Events()
    later.events = list(ev.events)
    later("task.finished", 0.5, 1, routine="a", job_id="j1", value=0.5)
    later("task.finished", 0.9, 2, routine="a", job_id="j9", value=0.25)
    m.feed(later.events)
    msg = m.delta()
    assert msg["open"] == []
    assert msg["bars"] == [[0, 0.0, 0.5, "task", 0], [1, 0.65, 0.9, "task", 0]]


@pytest.mark.timeout(10)
def test_close_bars_merge_but_never_beyond_the_gap() -> None:
    ev = Events()
    for k in range(100):  # 100 tasks of 1 ms with 0.1 ms gaps: one bar at a 1 ms gap
        ev.task(k * 0.0011, 0.001, routine="a", job=f"j{k}")
    ev.task(0.5, 0.001, routine="a", job="far")  # far away: its own bar
    m = model_of(ev, merge_gap_s=0.001)
    bars = m.delta()["bars"]
    assert len(bars) == 2
    assert bars[0][1] == 0.0 and bars[0][2] == pytest.approx(0.1099, abs=1e-4)
    assert bars[1][1] == 0.5


@pytest.mark.timeout(10)
def test_thin_bars_of_different_routines_merge_under_the_longer_ones_colour() -> None:
    ev = Events()
    ev.task(0.0, 0.0001, routine="a", job="1")  # thinner than the gap
    ev.task(0.00015, 0.01, routine="b", job="2")
    m = model_of(ev, merge_gap_s=0.001)
    assert m.delta()["bars"] == [[0, 0.0, 0.01015, "task", 1]]


@pytest.mark.timeout(10)
def test_default_merge_gap_follows_the_time_seen() -> None:
    ev = Events()
    ev.task(0.0, 0.01)
    ev.task(2.0, 0.01)
    m = model_of(ev)
    assert m.merge_gap_s == pytest.approx(2.01 / 4000)
    ev.task(400.0, 0.01)
    m.feed(ev.events)
    assert m.merge_gap_s == pytest.approx(30.0 / 4000)  # capped by the window


@pytest.mark.timeout(10)
def test_history_is_bounded_by_window_and_by_count() -> None:
    ev = Events()
    for k in range(50):
        ev.task(k * 1.0, 0.5, job=f"j{k}")
    m = model_of(ev, window_s=10.0, merge_gap_s=0.0)
    m.delta()
    full = m.full()
    assert full["reset"] is True
    assert [b[1] for b in full["bars"]] == [float(k) for k in range(39, 50)]
    small = model_of(ev, window_s=1000.0, merge_gap_s=0.0, max_bars=5)
    assert len(small.full()["bars"]) == 5


# -- delta protocol -----------------------------------------------------------------------


@pytest.mark.timeout(10)
def test_delta_sends_each_item_once_and_is_json() -> None:
    ev = Events()
    ev.task(0.0, 0.1, routine="a")
    m = model_of(ev, merge_gap_s=0.0)
    first = m.delta(T0 + int(0.2e9), extra_key="x")
    assert first["tick"] == 1 and first["v"] == MESSAGE_VERSION and first["reset"] is False
    assert first["t"] == 0.2 and first["extra_key"] == "x"
    assert json.loads(json.dumps(first)) == first
    second = m.delta(T0 + int(0.3e9))
    assert second["tick"] == 2
    assert second["lanes"] == second["routines"] == second["bars"] == second["samples"] == []
    assert "locks" not in second and "findings" not in second  # only when they change
    note = m.note(status="stopped")
    assert note["tick"] == 3 and note["status"] == "stopped" and note["t"] == 0.3
    assert "bars" not in note
    full = m.full()
    assert full["tick"] == 3 and len(full["bars"]) == 1 and full["lanes"] and full["routines"]


@pytest.mark.timeout(10)
def test_overlapping_reads_are_ignored_and_seq_gaps_are_counted() -> None:
    ev = Events()
    for k in range(10):
        ev.task(k * 1.0, 0.5, job=f"j{k}")
    m = DashboardModel(merge_gap_s=0.0)
    m.feed(ev.events[:6])
    m.feed(ev.events[:6])  # the same again: ignored
    m.feed(ev.events[10:])  # seqs 7..10 (tasks 3 and 4) never arrive
    assert m.last_seq == 20
    assert m.lost == 4
    assert len(m.full()["bars"]) == 8
    assert m.delta()["dropped"] == 4
    m.dropped = 11  # the tracer says more were dropped: the larger count is shown
    assert m.delta()["dropped"] == 11


# -- samples and counters -----------------------------------------------------------------


@pytest.mark.timeout(10)
def test_counters_from_the_trace_alone() -> None:
    ev = Events()
    for k in range(19):
        ev.job(1.0 + k * 0.1, latency=0.01 * (k + 1), job=f"c{k}")
    ev.job(3.0, latency=1.0, status="failed", job="f")
    ev("job.posted", 3.5, 0, "MainThread", job_id="still-running")
    m = model_of(ev)
    c = m.delta()["counters"]
    assert c["posted"] == 21 and c["completed"] == 19 and c["failed"] == 1 and c["running"] == 1
    assert c["p95_latency_s"] == pytest.approx(0.19)  # nearest rank 19 of 20 latencies
    # over the trace's span: from the first event (the first post, at 0.99 s) to the last
    assert c["jobs_per_s"] == pytest.approx(round(20 / (3.5 - 0.99), 1))


@pytest.mark.timeout(10)
def test_counters_from_statistics_and_jobs_per_second_from_samples() -> None:
    m = DashboardModel()
    stats = SimpleNamespace(posted=100, completed=60, failed=5, running=35)
    m.add_sample(T0, queued=10, busy=4, size=4, finished=0)
    m.add_sample(T0 + int(1e9), queued=5, busy=4, size=4, finished=65)
    msg = m.delta(T0 + int(1e9), stats)
    assert msg["counters"] == {
        "posted": 100, "running": 35, "completed": 60, "failed": 5,
        "jobs_per_s": 65.0, "p95_latency_s": None,
    }  # fmt: skip
    # No trace at all (a runtime that does not trace): the snapshots are what there is.
    assert msg["samples"] == [[0.0, 10, 4, 4], [1.0, 5, 4, 4]]


@pytest.mark.timeout(10)
def test_queue_depth_events_are_never_drawn_as_the_truth() -> None:
    # A queue.depth sample is a hint taken every ~100 ms: only its pool size is used, for
    # a trace that lacks pool.size; its queue and busy counts are not drawn (issue 12).
    ev = Events()
    ev("queue.depth", 0.0, 5, "RoutiluxMonitor", value=3, detail={"busy": 2, "size": 4})
    assert model_of(ev).delta()["samples"] == [[0.0, 0, 0, 4]]


def series_rows(events: list[TraceEvent]) -> list[tuple[float, int, int, int]]:
    """pool_series as the model's (t, queued, busy, size) rows, t from the first event."""
    origin = events[0].ts_ns
    return [((p.ts_ns - origin) * 1e-9, p.queued, p.busy, p.size or 0)
            for p in pool_series(events)]


@pytest.mark.timeout(10)
def test_live_samples_are_the_pool_series_not_the_statistics_snapshots() -> None:
    # Work arrives in bursts exactly as often as the dashboard samples: every 100 ms the
    # one thread is busy for the first 40 ms. Snapshots at each tick would see it idle
    # every time; the model draws each change instead, fed batch by batch.
    ev = Events()
    m = DashboardModel(merge_gap_s=0.0)
    ev("pool.size", 0.0, 0, "MainThread", value=1)
    for k in range(3):
        t = k * 0.1
        for q in range(3):
            ev("task.queued", t, 0, "MainThread", routine="r", job_id=f"j{k}.{q}", value=q + 1)
        for q in range(3):
            ev.task(t + 0.01 * (q + 1), 0.01, job=f"j{k}.{q}")
        m.feed(ev.events)
        m.add_sample(T0 + int((t + 0.1) * 1e9), queued=0, busy=0, size=1, finished=k + 1)
        m.delta()
    samples = m.view().samples
    assert samples == series_rows(ev.events)
    assert max(s[2] for s in samples) == 1 and max(s[1] for s in samples) == 3
    assert [list(s) for s in m.full()["samples"]] == [
        [round(s[0], 5), s[1], s[2], s[3]] for s in samples]


@pytest.mark.timeout(10)
def test_report_samples_are_the_pool_series() -> None:
    ev = Events()
    for k in range(4):
        ev("queue.depth", k * 0.1, 5, "RoutiluxMonitor", value=0, detail={"busy": 0, "size": 2})
        ev.task(k * 0.1, 0.05, thread=1, job=f"a{k}")
        ev.task(k * 0.1, 0.1, thread=2, job=f"b{k}")
    samples = DashboardModel.from_events(ev.events).view().samples
    assert samples == series_rows(ev.events)
    # both threads start together and thread 1 stops halfway: 2, 1, 2, 1, ..., then 0
    assert [s[2] for s in samples] == [2, 1] * 4 + [0]


@pytest.mark.timeout(10)
def test_p95_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([3.0]) == 3.0
    assert p95(range(1, 101)) == 95
    assert p95([5, 1, 4, 2, 3]) == 5


# -- locks, barriers, findings --------------------------------------------------------------


@pytest.mark.timeout(10)
def test_lock_table_counts_waits_and_tracks_holder_and_waiters() -> None:
    ev = Events()
    ev("lock.wait", 0.0, 2, name="db", detail={"holder": 1, "holder_name": "RoutiluxWorker-1"})
    ev("lock.wait", 0.1, 3, name="db", detail={"holder": 1, "holder_name": "RoutiluxWorker-1"})
    m = model_of(ev, merge_gap_s=0.0)
    msg = m.delta()
    assert msg["locks"] == [
        ["db", 2, 0.0, 0.0, "RoutiluxWorker-1", ["RoutiluxWorker-2", "RoutiluxWorker-3"], False,
         []]
    ]  # fmt: skip
    assert sorted(o[0] for o in msg["open"]) == [0, 1] and {o[2] for o in msg["open"]} == {"lock"}
    ev("lock.acquired", 0.3, 2, name="db", value=0.3)
    ev("lock.timeout", 0.5, 3, name="db", value=0.4)
    ev("lock.released", 0.6, 2, name="db", value=0.3)
    m.feed(ev.events)
    msg = m.delta()
    assert msg["locks"] == [["db", 2, 0.7, 0.4, None, [], False, []]]
    assert [(b[0], b[1], b[2], b[3]) for b in msg["bars"]] == [
        (0, 0.0, 0.3, "lock"), (1, 0.1, 0.5, "lock")
    ]  # fmt: skip
    assert m.view().locks[0].timeouts == 1


@pytest.mark.timeout(10)
def test_barrier_waits_get_their_own_lane() -> None:
    ev = Events()
    ev("barrier.wait", 0.0, 1, routine="join", name="left", detail={"left": 1, "right": 0})
    ev("barrier.wait", 0.2, 2, routine="join", name="left", detail={"left": 2, "right": 0})
    ev("barrier.release", 0.5, 3, routine="join", value=1)
    msg = model_of(ev, merge_gap_s=0.0).delta()
    assert msg["lanes"] == [[0, "barrier join", "barrier"]]
    assert msg["bars"] == [[0, 0.0, 0.5, "barrier", 0]]


@pytest.mark.timeout(10)
def test_findings_from_the_trace_and_from_diagnose_merge_by_key() -> None:
    ev = Events()
    detail = {"title": "self.counter written in logic", "severity": "high",
              "key": "shared_mutable_state:counter.counter"}  # fmt: skip
    ev("finding", 0.1, 1, name="shared_mutable_state", detail=detail)
    ev("finding", 0.2, 1, name="shared_mutable_state", detail=detail)  # recorded twice
    cycle = [
        {"thread_name": "w1", "holds": "a", "waits_for": "b"},
        {"thread_name": "w2", "holds": "b", "waits_for": "a"},
    ]
    ev("deadlock.detected", 0.3, 1, name="a, b",
       detail={"cycle": cycle, "message": "w1 holds 'a' and waits for 'b'; ..."})  # fmt: skip
    m = model_of(ev)
    findings = m.delta()["findings"]
    assert [(f["kind"], f["severity"], f["notebook"]) for f in findings] == [
        ("shared_mutable_state", "high", "01_shared_mutable_state.ipynb"),
        ("deadlock", "high", "03_deadlocks.ipynb"),
    ]
    assert findings[1]["key"] == "deadlock:a,b"
    assert [row.deadlocked for row in m.view().locks] == [True, True]
    # diagnose() later says the same, with a fix: no duplicate, the fix is filled in
    assert not m.add_finding({"kind": "deadlock", "severity": "high", "title": "Deadlock: x",
                              "key": "deadlock:a,b", "fix": "take locks in one order"})  # fmt: skip
    findings = m.delta()["findings"]
    assert len(findings) == 2 and findings[1]["fix"] == "take locks in one order"
    assert "findings" not in m.delta()


@pytest.mark.timeout(10)
def test_notebook_for_kinds() -> None:
    assert notebook_for("blocking") == "02_blocking_the_pool.ipynb"
    assert notebook_for("pool_exhaustion") == "04_pool_exhaustion.ipynb"
    assert notebook_for("barrier") == "05_barrier_usage.ipynb"
    assert notebook_for("something_else") is None
    assert notebook_for(None) is None


@pytest.mark.timeout(10)
def test_view_closes_open_bars_at_now_and_from_events_spans_the_trace() -> None:
    ev = Events()
    ev.task(0.0, 1.0, routine="a", job="1")
    ev("task.started", 1.5, 1, routine="a", job_id="2")
    ev("queue.depth", 2.0, 5, "RoutiluxMonitor", value=0, detail={"busy": 1, "size": 1})
    m = DashboardModel.from_events(ev.events, dropped=3)
    view = m.view()
    assert view.now_s == 2.0
    assert view.window_s >= 2.0
    assert view.bars[-1] == (0, 1.5, 2.0, "task", 0)
    assert view.dropped == 3
    assert view.lanes == [("RoutiluxWorker-1", "thread")]
    assert DashboardModel.from_events([]).view().bars == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("window_s", [0, -1, "30"])
def test_bad_window_is_refused(window_s: Any) -> None:
    with pytest.raises(ValueError, match="window_s must be a number of seconds > 0"):
        DashboardModel(window_s=window_s)


@pytest.mark.timeout(10)
def test_report_bars_are_the_task_spans_of_interleaved_coroutines() -> None:
    # Two coroutines of one routine overlap on the loop's lane, a third task's start was
    # dropped: the static model draws what routilux.trace.task_spans rebuilds.
    from routilux.trace import task_spans

    ev = Events()
    loop = "RoutiluxAsyncLoop"
    ev("task.started", 0.0, 7, loop, routine="f", job_id="A", value=0.0,
       detail={"executor": "asyncio"})
    ev("task.started", 0.1, 7, loop, routine="f", job_id="B", value=0.0,
       detail={"executor": "asyncio"})
    ev("task.finished", 0.2, 7, loop, routine="f", job_id="A", value=0.2)
    ev("task.finished", 0.9, 7, loop, routine="f", job_id="B", value=0.8)
    ev("task.finished", 1.0, 1, routine="g", job_id="C", value=0.3)
    view = DashboardModel.from_events(ev.events).view()
    spans = task_spans(ev.events)
    assert [round(s.run_s, 6) for s in spans] == [0.2, 0.8, 0.3]

    def union(intervals: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
        out: list[list[Any]] = []
        for lane, a, b in sorted(intervals):  # a lane's bars cover what its tasks covered
            if out and out[-1][0] == lane and a <= out[-1][2]:
                out[-1][2] = max(out[-1][2], b)
            else:
                out.append([lane, a, b])
        return [(lane, round(a, 6), round(b, 6)) for lane, a, b in out]

    lanes = {name: i for i, (name, _kind) in enumerate(view.lanes)}
    assert union([(b[0], b[1], b[2]) for b in view.bars]) == union(
        [(lanes[s.thread_name], (s.start_ns - T0) * 1e-9, (s.end_ns - T0) * 1e-9)
         for s in spans])


@pytest.mark.timeout(10)
def test_a_flood_of_samples_is_thinned_per_bucket_keeping_peaks_and_steps() -> None:
    from routilux_jupyter._model import MAX_MESSAGE_SAMPLES

    ev = Events()
    ev("pool.size", 0.0, 0, "MainThread", value=2)
    n = MAX_MESSAGE_SAMPLES * 3  # three changes per bucket of window / MAX_MESSAGE_SAMPLES
    for k in range(n):
        ev("task.queued", 1e-3 * k, 0, "MainThread", routine="r", job_id=f"j{k}", value=k)
    ev("task.started", 1e-3 * n, 1, routine="r", job_id="j0", value=0.0)
    m = DashboardModel(window_s=1e-3 * n)
    m.feed(ev.events)
    samples = m.view().samples
    assert len(samples) == n + 1  # view(): every change (the first with pool.size at 0)
    sent = m.delta()["samples"]
    assert len(sent) < len(samples)
    assert max(s[1] for s in sent) == n  # the deepest queue survives
    assert sent[-1] == [round(samples[-1][0], 5), n - 1, 1, 2]  # and the last step


# -- automatic sizing: decisions on the size line ------------------------------------------


def grow_detail() -> dict[str, Any]:
    """A real controller decision's trace detail: 400 arrivals/s of 40 ms need 16 threads."""
    from routilux._engine._autosize import AutoSizeController, Window

    ctl = AutoSizeController(start=6, max_size=32, cpu_count=2)
    d = ctl.decide(Window(duration_s=0.5, size=6, completions=75, arrivals=200, busy=6.0,
                          queued=60.0, backlog=125, cpu_share=0.01))
    assert d.changed and d.new > 6, d
    return d.detail()


@pytest.mark.timeout(10)
def test_decisions_are_sent_once_with_their_reason_and_the_auto_state() -> None:
    ev = Events()
    detail = grow_detail()
    ev("pool.size", 0.0, 0, "MainThread", value=6)
    ev("pool.autosize", 0.0, 0, "MainThread", name="on", value=6,
       detail={"old": 6, "new": 6, "reason": "start at 6"})
    ev("pool.autosize", 0.5, 0, "RoutiluxAutoSize", name="probe", value=detail["new"],
       detail=detail)
    ev("pool.resize", 0.5, 0, "RoutiluxAutoSize", value=detail["new"], detail=6)
    m = model_of(ev)
    first = m.delta(T0 + int(0.6e9))
    assert first["decisions"] == [[0.0, "on", 6, 6, "start at 6"],
                                  [0.5, "probe", 6, detail["new"], detail["reason"]]]
    assert first["auto"] is True and first["auto_reason"] == detail["reason"]
    assert [s[3] for s in first["samples"]] == [6, detail["new"]]  # the size line
    second = m.delta(T0 + int(0.7e9))
    assert "decisions" not in second and "auto" not in second  # only when they change
    m.set_auto(True, "idle: no work arrived or finished")  # a hold: statistics() only
    third = m.delta(T0 + int(0.8e9))
    assert (third["auto"], third["auto_reason"]) == (True, "idle: no work arrived or finished")
    (d,) = [d for d in m.view().decisions if d.action == "probe"]
    assert d.numbers["throughput"] == detail["throughput"] and d.reason == detail["reason"]
    ev("pool.autosize", 0.9, 0, "MainThread", name="off", value=3,
       detail={"old": 3, "new": 3, "reason": "automatic sizing off: resize(3) by the user"})
    m.feed(ev.events)
    off = m.delta(T0 + int(1e9))
    assert off["decisions"][0][1] == "off" and (off["auto"], off["auto_reason"]) == (False, None)
    m.set_auto(False, None)
    assert "auto" not in m.delta(T0 + int(1.1e9))
    full = m.full()
    assert [x[1] for x in full["decisions"]] == ["on", "probe", "off"] and full["auto"] is False


@pytest.mark.timeout(10)
def test_decisions_are_bounded_by_the_window_and_per_message() -> None:
    from routilux_jupyter._model import MAX_MESSAGE_DECISIONS

    ev = Events()
    ev("pool.size", 0.0, 0, "MainThread", value=4)
    for k in range(50):
        ev("pool.autosize", k * 0.01, 0, "RoutiluxAutoSize", name="grow", value=5 + k,
           detail={"old": 4 + k, "new": 5 + k, "reason": f"{4 + k} -> {5 + k}: need more"})
    m = model_of(ev, window_s=1.0)
    msg = m.delta(T0 + int(0.5e9))
    assert [d[3] for d in msg["decisions"]] == list(range(55 - MAX_MESSAGE_DECISIONS, 55))
    assert len(m.view().decisions) == 50  # the snapshot keeps every one in the window
    m.delta(T0 + int(1.3e9))  # the first 30 fall out of the 1 s window
    assert [d.new for d in m.view(T0 + int(1.3e9)).decisions] == list(range(35, 55))
    assert len(m.full(T0 + int(1.3e9))["decisions"]) == 20


@pytest.mark.timeout(10)
def test_a_fixed_size_runtime_has_no_auto_state() -> None:
    ev = Events()
    ev("pool.size", 0.0, 0, "MainThread", value=4)
    ev("pool.resize", 0.1, 0, "MainThread", value=2, detail=4)
    m = model_of(ev)
    m.set_auto(False, None)  # what statistics() says of a fixed size
    msg = m.delta(T0 + int(0.2e9))
    assert "decisions" not in msg and "auto" not in msg
    assert [s[3] for s in msg["samples"]] == [4, 2]
    view = m.view()
    assert view.decisions == [] and view.auto is None and view.auto_reason is None
    assert m.full()["decisions"] == [] and m.full()["auto"] is None
