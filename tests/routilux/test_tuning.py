"""routilux.tuning: the replay on synthetic traces with known answers, the utilisation curve,
the recommendation on hand-built frames, and sweep / simulate against real runs.

Synthetic traces are built event by event (``FakeTrace``) so every expected number can be
worked out by hand. The real runs use sleeping logic (I/O-like work, whose run time does
not depend on how many threads run) or a pure-Python loop (CPU-bound work).
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from util import make_routine, new_flow, running

import routilux
from routilux import Runtime
from routilux.trace import TraceEvent, Tracer
from routilux.tuning import (
    SWEEP_COLUMNS,
    Recommendation,
    Simulation,
    SweepProgress,
    recommend,
    simulate,
    sweep,
    utilisation_curve,
)
from routilux.tuning._recording import _rebuild  # the pure trace reader, tested on its own

pd = pytest.importorskip("pandas")

T0 = 1_000_000_000_000  # ns; start of the synthetic traces
MAIN = (1, "MainThread")  # the posting thread of the synthetic traces


# ---------------------------------------------------------------------------------------
# synthetic traces
# ---------------------------------------------------------------------------------------
class FakeTrace:
    """Builds the events the runtime would record for a schedule given in seconds."""

    def __init__(self, pool_size: int | None = None) -> None:
        self._rows: list[tuple[float, int, dict[str, Any]]] = []
        self._threads: dict[str, tuple[int, str]] = {}
        if pool_size is not None:
            self._add(0.0, "queue.depth", MAIN, value=0,
                      detail={"busy": 0, "size": pool_size})

    def thread(self, name: str) -> tuple[int, str]:
        return self._threads.setdefault(name, (100 + len(self._threads), name))

    def _add(self, t: float, kind: str, thread: tuple[int, str], **fields: Any) -> None:
        self._rows.append((t, len(self._rows), {"kind": kind, "thread": thread, **fields}))

    def post(self, job: str, t: float) -> None:
        self._add(t, "job.posted", MAIN, job_id=job, routine="a", name="in")

    def task(
        self, job: str, routine: str, thread: str, start: float, end: float,
        queued_at: float, queued_by: tuple[int, str] = MAIN,
    ) -> None:
        worker = self.thread(thread)
        self._add(queued_at, "task.queued", queued_by, job_id=job, routine=routine, name="in",
                  value=1)
        self._add(start, "task.started", worker, job_id=job, routine=routine, name="in",
                  value=start - queued_at)
        self._add(end, "task.finished", worker, job_id=job, routine=routine, name="in",
                  value=end - start)

    def child(self, job: str, routine: str, thread: str, start: float, end: float,
              parent_thread: str, parent_end: float) -> None:
        """A task scheduled by ``emit`` just before its parent's logic returned."""
        self.task(job, routine, thread, start, end, parent_end - 1e-6,
                  queued_by=self.thread(parent_thread))

    def events(self) -> list[TraceEvent]:
        out = []
        for seq, (t, _, f) in enumerate(sorted(self._rows, key=lambda r: (r[0], r[1])), 1):
            ident, name = f.pop("thread")
            out.append(TraceEvent(seq, T0 + round(t * 1e9), f.pop("kind"), ident, name, "w1",
                                  f.get("job_id"), f.get("routine"), f.get("name"),
                                  f.get("value"), f.get("detail")))
        return out


def sequential_jobs(n: int, run_s: float = 1.0) -> list[TraceEvent]:
    """n jobs posted at t=0, one task each, recorded on a pool of one thread."""
    fake = FakeTrace(pool_size=1)
    for i in range(n):
        fake.post(f"j{i}", 0.0)
    for i in range(n):
        fake.task(f"j{i}", "a", "w", i * run_s, (i + 1) * run_s, queued_at=0.0)
    return fake.events()


def chain_jobs(n: int) -> list[TraceEvent]:
    """n jobs posted at t=0, each a -> b of 1 s each, recorded on a pool of one thread."""
    fake = FakeTrace(pool_size=1)
    for i in range(n):
        fake.post(f"j{i}", 0.0)
    t = 0.0
    for i in range(n):  # one thread: a then b (its continuation) per job
        fake.task(f"j{i}", "a", "w", t, t + 1, queued_at=0.0)
        fake.child(f"j{i}", "b", "w", t + 1, t + 2, parent_thread="w", parent_end=t + 1)
        t += 2
    return fake.events()


# ---------------------------------------------------------------------------------------
# simulate: known answers
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_ten_one_second_jobs_on_two_threads_take_five_seconds() -> None:
    sim = simulate(sequential_jobs(10), 2)
    assert isinstance(sim, Simulation)
    assert sim.makespan_s == pytest.approx(5.0)
    assert (sim.jobs, sim.tasks, sim.pool_size, sim.recorded_pool_size) == (10, 10, 2, 1)
    # Jobs finish in pairs at 1, 2, ..., 5 s.
    assert sim.p50_latency_s == pytest.approx(3.0)
    assert sim.p95_latency_s == pytest.approx(5.0)
    assert sim.throughput == pytest.approx(2.0)
    assert sim.utilisation == pytest.approx(1.0)
    assert sim.mean_queue_wait_s == pytest.approx((0 + 0 + 1 + 1 + 2 + 2 + 3 + 3 + 4 + 4) / 10)
    assert sim.queue_depth == ((0.0, 8), (1.0, 6), (2.0, 4), (3.0, 2), (4.0, 0))


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("threads", "makespan"), [(1, 10.0), (3, 4.0), (10, 1.0), (20, 1.0)])
def test_makespan_of_the_same_jobs_at_other_sizes(threads: int, makespan: float) -> None:
    sim = simulate(sequential_jobs(10), threads)
    assert sim.makespan_s == pytest.approx(makespan)
    if threads >= 10:
        assert sim.utilisation == pytest.approx(10 / threads)
        assert sim.queue_depth == ((0.0, 0),)


@pytest.mark.timeout(30)
def test_a_chain_runs_its_downstream_task_after_its_upstream_one() -> None:
    # Two threads: a1, a2 run at 0; each emits with no thread idle, so b1, b2 run next on
    # the same threads at 1; a3, a4 at 2; b3, b4 at 3.
    sim = simulate(chain_jobs(4), 2)
    assert sim.makespan_s == pytest.approx(4.0)
    assert sim.tasks == 8 and sim.jobs == 4
    assert sim.p50_latency_s == pytest.approx(3.0)  # latencies 2, 2, 4, 4
    assert sim.p95_latency_s == pytest.approx(4.0)
    # Four threads: every chain at once, a then b.
    wide = simulate(chain_jobs(4), 4)
    assert wide.makespan_s == pytest.approx(2.0)
    assert wide.p95_latency_s == pytest.approx(2.0)
    # A chain never runs faster than its length, however many threads.
    assert simulate(chain_jobs(4), 64).makespan_s == pytest.approx(2.0)


@pytest.mark.timeout(30)
def test_the_replay_of_the_recorded_size_reproduces_the_recording() -> None:
    sim = simulate(chain_jobs(3), 1)
    assert sim.makespan_s == pytest.approx(6.0)
    assert sorted([2.0, 4.0, 6.0])[1] == pytest.approx(sim.p50_latency_s)


@pytest.mark.timeout(30)
def test_fan_out_runs_the_last_emitted_branch_next_and_queues_the_others() -> None:
    # One job: a (1 s) emits to b (1 s) then c (2 s). One thread: c runs next, b queues.
    fake = FakeTrace(pool_size=2)
    fake.post("j", 0.0)
    fake.task("j", "a", "w1", 0.0, 1.0, queued_at=0.0)
    fake.child("j", "b", "w1", 1.0, 2.0, parent_thread="w1", parent_end=1.0)
    fake.child("j", "c", "w2", 1.0, 3.0, parent_thread="w1", parent_end=1.0)
    events = fake.events()
    assert simulate(events, 1).makespan_s == pytest.approx(4.0)
    two = simulate(events, 2)
    assert two.makespan_s == pytest.approx(3.0)
    assert two.p50_latency_s == pytest.approx(3.0)


@pytest.mark.timeout(30)
def test_arrivals_are_replayed_at_their_recorded_times() -> None:
    fake = FakeTrace(pool_size=1)
    for i, t in enumerate([0.0, 2.0, 4.0]):
        fake.post(f"j{i}", t)
        fake.task(f"j{i}", "a", "w", t, t + 1.0, queued_at=t)
    sim = simulate(fake.events(), 1)
    assert sim.makespan_s == pytest.approx(5.0)  # first post to last task end
    assert sim.p95_latency_s == pytest.approx(1.0)  # nobody waits: the pool keeps up
    assert sim.mean_queue_wait_s == pytest.approx(0.0)


@pytest.mark.timeout(30)
def test_a_task_whose_queued_event_comes_after_its_start_is_still_linked() -> None:
    # The runtime records task.queued after handing the task to the pool, so an idle
    # thread may record the child's task.started first; it is still a's child.
    fake = FakeTrace(pool_size=2)
    fake.post("j", 0.0)
    fake.task("j", "a", "w1", 0.0, 1.0, queued_at=0.0)
    w1, w2 = fake.thread("w1"), fake.thread("w2")
    fake._add(0.9990, "task.started", w2, job_id="j", routine="b", name="in", value=0.0)
    fake._add(0.9995, "task.queued", w1, job_id="j", routine="b", name="in", value=0)
    fake._add(2.0, "task.finished", w2, job_id="j", routine="b", name="in", value=1.001)
    events = fake.events()
    assert [e.kind for e in events if e.routine == "b"] == [
        "task.started", "task.queued", "task.finished"]
    tasks = _rebuild(events).tasks
    assert [(t.routine, t.parent) for t in tasks] == [("a", None), ("b", 0)]
    assert tasks[0].children == [1]
    assert simulate(events, 1).makespan_s == pytest.approx(2.001)


def save_events(events: list[TraceEvent], path: Any) -> None:
    """Write synthetic events in Tracer.save's format (keeping their timestamps)."""
    header = {"format": "routilux-trace", "version": 1, "capacity": 1000, "dropped": 0,
              "pid": 1, "events": len(events), "fields": list(TraceEvent._fields)}
    lines = [json.dumps(header)] + [json.dumps(e.to_dict()) for e in events]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.timeout(30)
def test_simulate_reads_a_tracer_a_saved_file_and_a_runtime(tmp_path: Any) -> None:
    path = tmp_path / "run.jsonl"
    save_events(sequential_jobs(4), path)
    for source in (Tracer.load(path), path, str(path)):
        sim = simulate(source, 2)
        assert (sim.tasks, sim.jobs) == (4, 4)
        assert sim.makespan_s == pytest.approx(2.0)
    with running(thread_pool_size=2, trace=True) as rt:
        flow = sleeping_flow(0.001)
        for i in range(3):
            rt.post(flow, "a", "in", {"i": i})
        assert rt.wait_until_all_jobs_finished(timeout=10)
        assert simulate(rt, 4).jobs == 3


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("trace", "size", "error", "match"),
    [
        ([], 2, ValueError, "found no task"),
        (None, 2, TypeError, "needs a routilux.trace.Tracer"),
        ({"a": 1}, 2, TypeError, "needs a routilux.trace.Tracer"),
        ([1, 2], 2, TypeError, "not all TraceEvent"),
        ("seq", 0, ValueError, "pool_size must be an int >= 1, got 0"),
        ("seq", 2.0, TypeError, "pool_size must be an int >= 1"),
        ("seq", True, TypeError, "pool_size must be an int >= 1"),
    ],
)
def test_simulate_rejects_bad_input(trace: Any, size: Any, error: type, match: str) -> None:
    if trace == "seq":
        trace = sequential_jobs(2)
    with pytest.raises(error, match=match):
        simulate(trace, size)


@pytest.mark.timeout(30)
def test_simulate_refuses_a_runtime_without_a_trace() -> None:
    with running(thread_pool_size=1) as rt, pytest.raises(ValueError, match="trace=True"):
        simulate(rt, 2)


# ---------------------------------------------------------------------------------------
# simulate: when not to trust it
# ---------------------------------------------------------------------------------------
def gil_like_trace() -> list[TraceEvent]:
    """Tasks that take 1 s alone and 2 s when two run at once (threads sharing the GIL)."""
    fake = FakeTrace(pool_size=2)
    for i in range(5):
        fake.post(f"j{i}", 0.0)
    fake.task("j0", "a", "w1", 0.0, 2.0, queued_at=0.0)
    fake.task("j1", "a", "w2", 0.0, 2.0, queued_at=0.0)
    fake.task("j2", "a", "w1", 2.0, 4.0, queued_at=0.0)
    fake.task("j3", "a", "w2", 2.0, 4.0, queued_at=0.0)
    fake.task("j4", "a", "w1", 4.0, 5.0, queued_at=0.0)  # alone: 1 s
    return fake.events()


@pytest.mark.timeout(30)
def test_run_times_that_grow_with_concurrency_are_flagged_as_cpu_bound() -> None:
    sim = simulate(gil_like_trace(), 4)
    assert len(sim.warnings) == 1
    assert "CPU-bound" in sim.warnings[0] and "too optimistic" in sim.warnings[0]
    assert "warning: task run times grow" in str(sim)
    fewer = simulate(gil_like_trace(), 1)
    assert "too pessimistic" in fewer.warnings[0]
    assert simulate(gil_like_trace(), 4, cpu_bound=False).warnings == ()


@pytest.mark.timeout(30)
def test_the_caller_can_say_cpu_bound() -> None:
    events = chain_jobs(2)
    (text,) = simulate(events, 4, cpu_bound=True).warnings
    assert "CPU-bound (as the caller said)" in text and "GIL" in text


@pytest.mark.timeout(30)
def test_a_recording_of_one_task_at_a_time_says_it_cannot_tell() -> None:
    (text,) = simulate(sequential_jobs(4), 2).warnings
    assert "one task at a time" in text and "cpu_bound=True" in text
    assert simulate(sequential_jobs(4), 1).warnings == ()


@pytest.mark.timeout(30)
def test_steady_run_times_raise_no_warning() -> None:
    fake = FakeTrace(pool_size=2)
    for i in range(6):
        fake.post(f"j{i}", 0.0)
    for i in range(6):  # 1 s each, whether one or two run at once
        fake.task(f"j{i}", "a", f"w{i % 2}", (i // 2) * 1.0 + (0.5 if i == 5 else 0.0),
                  (i // 2) * 1.0 + 1.0 + (0.5 if i == 5 else 0.0), queued_at=0.0)
    assert simulate(fake.events(), 8).warnings == ()


@pytest.mark.timeout(30)
def test_unfinished_tasks_and_dropped_events_are_reported() -> None:
    fake = FakeTrace(pool_size=1)
    fake.post("j0", 0.0)
    fake.post("j1", 0.0)
    fake.task("j0", "a", "w", 0.0, 1.0, queued_at=0.0)
    fake._add(1.0, "task.started", fake.thread("w"), job_id="j1", routine="a", name="in",
              value=1.0)
    fake._add(1.5, "queue.depth", MAIN, value=0, detail={"busy": 1, "size": 1})
    sim = simulate(fake.events(), 1)
    assert sim.makespan_s == pytest.approx(1.5)
    assert any("still running when the trace ended" in w for w in sim.warnings)

    tracer = Tracer(capacity=8)
    for e in sequential_jobs(4):  # 4 posts + 12 task events: 8 dropped
        tracer.record_as(e.thread, e.kind, e.job_id, e.routine, e.name, e.value, e.detail,
                         e.worker_id, e.thread_name)
    assert any("lost 9 events" in w for w in simulate(tracer, 1).warnings)


# ---------------------------------------------------------------------------------------
# simulate against a real run (issue #9: within 15% on makespan for I/O-like work)
# ---------------------------------------------------------------------------------------
def sleeping_chain(first_s: float, second_s: float) -> Any:
    flow = new_flow("tune-chain")

    def first(slot_data, policy_message, worker_state):
        time.sleep(first_s)
        worker_state  # noqa: B018 - the emit is the last thing the logic does
        head.emit("out", x=1)

    def second(slot_data, policy_message, worker_state):
        time.sleep(second_s)

    head = make_routine(first)
    flow.add_routine(head, "a")
    flow.add_routine(make_routine(second), "b")
    flow.connect("a", "out", "b", "in")
    return flow


@pytest.mark.timeout(90)
def test_a_replay_from_pool_2_predicts_a_real_run_at_pool_8() -> None:
    flow = sleeping_chain(0.05, 0.025)
    traces: dict[int, Tracer] = {}
    recorded = sweep(flow, "a", "in", sizes=[2], jobs=32, progress=False, traces=traces)
    predicted = simulate(traces[2], 8)
    assert predicted.recorded_pool_size == 2
    assert predicted.jobs == 32 and predicted.tasks == 64
    assert predicted.warnings == ()
    # Three real runs at 8 threads, compared by their median: on a machine shared with
    # other processes one run can lose tens of milliseconds to the scheduler (measured:
    # up to 20% of a 0.25 s run), which says nothing about the replay.
    reruns = pd.concat([sweep(flow, "a", "in", sizes=[8], jobs=32, progress=False)
                        for _ in range(3)])
    real = reruns.median(numeric_only=True)
    error = abs(predicted.makespan_s - real["makespan_s"]) / real["makespan_s"]
    assert error < 0.15, (predicted, reruns.to_dict("records"))
    # Latency follows too (the replay models the pool's run-next continuation).
    assert predicted.p95_latency_s == pytest.approx(real["p95_latency_s"], rel=0.25)
    assert predicted.p50_latency_s == pytest.approx(real["p50_latency_s"], rel=0.25)
    # And the replay of the recorded size reproduces the recording.
    again = simulate(traces[2], 2)
    assert again.makespan_s == pytest.approx(recorded["makespan_s"].iloc[0], rel=0.1)


@pytest.mark.timeout(60)
def test_sweep_tells_computing_threads_from_waiting_ones_by_cpu_time() -> None:
    def burn(slot_data, policy_message, worker_state):
        x = 0
        for i in range(200_000):
            x += i * i

    computing = new_flow("tune-cpu")
    computing.add_routine(make_routine(burn), "a")
    waiting = sleeping_flow(0.02)
    share = {}
    for name, flow in (("cpu", computing), ("io", waiting)):
        row = sweep(flow, "a", "in", sizes=[1], jobs=4, progress=False).iloc[0]
        share[name] = row["cpu_per_job_s"] / row["work_per_job_s"]
    # Other processes busy on this machine take CPU from the computing thread (its share
    # fell to about 0.2 on a loaded 2-core machine), so compare the two, loosely.
    assert share["io"] < 0.25, share
    assert share["cpu"] > 4 * share["io"], share


# ---------------------------------------------------------------------------------------
# utilisation_curve
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_utilisation_curve_worst_and_best_windows() -> None:
    # Pool of 2 over 4 s: one thread busy throughout, the other for the first 2 s.
    fake = FakeTrace(pool_size=2)
    fake.post("j0", 0.0)
    fake.post("j1", 0.0)
    fake.task("j0", "a", "w1", 0.0, 4.0, queued_at=0.0)
    fake.task("j1", "a", "w2", 0.0, 2.0, queued_at=0.0)
    curve = utilisation_curve(fake.events(), [0.01, 1.0, 2.0, 3.0, 4.0, 9.0])
    assert list(curve.columns) == ["window_s", "utilisation", "max_utilisation"]
    got = {round(w, 3): (u, m) for w, u, m in curve.itertuples(index=False)}
    assert set(got) == {0.01, 1.0, 2.0, 3.0, 4.0}  # 9 s is longer than the run
    assert got[0.01] == pytest.approx((0.5, 1.0))
    assert got[2.0] == pytest.approx((0.5, 1.0))
    assert got[3.0] == pytest.approx((4 / 6, 5 / 6))
    assert got[4.0] == pytest.approx((0.75, 0.75))  # the whole run: the mean


@pytest.mark.timeout(30)
def test_utilisation_curve_shows_a_starved_pool() -> None:
    # Busy 0-1 s and 3-4 s, idle in between: any window up to 2 s can be empty.
    fake = FakeTrace(pool_size=1)
    for i, t in enumerate([0.0, 3.0]):
        fake.post(f"j{i}", t)
        fake.task(f"j{i}", "a", "w", t, t + 1.0, queued_at=t)
    curve = utilisation_curve(fake.events(), [0.5, 2.0, 3.0, 4.0])
    u = dict(zip(curve["window_s"].round(3), curve["utilisation"], strict=True))
    assert u[0.5] == pytest.approx(0.0) and u[2.0] == pytest.approx(0.0)
    assert u[3.0] == pytest.approx(1 / 3)
    assert u[4.0] == pytest.approx(0.5)


@pytest.mark.timeout(30)
def test_utilisation_curve_defaults_and_pool_size() -> None:
    events = [e for e in sequential_jobs(4) if e.kind != "queue.depth"]
    curve = utilisation_curve(events)  # no size in the trace: the most seen at once (1)
    assert len(curve) == 40
    assert curve["window_s"].is_monotonic_increasing
    assert curve["utilisation"].iloc[-1] == pytest.approx(1.0)
    halved = utilisation_curve(events, pool_size=2)
    assert halved["utilisation"].iloc[-1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must be > 0"):
        utilisation_curve(events, [0.0, 1.0])
    with pytest.raises(ValueError, match="no finished task"):
        utilisation_curve([])


@pytest.mark.timeout(30)
def test_utilisation_curve_follows_a_resize() -> None:
    fake = FakeTrace(pool_size=1)
    fake.post("j0", 0.0)
    fake.post("j1", 0.0)
    fake.task("j0", "a", "w1", 0.0, 2.0, queued_at=0.0)
    fake._add(1.0, "pool.resize", MAIN, value=2, detail=1)
    fake.task("j1", "a", "w2", 1.0, 2.0, queued_at=0.0)
    curve = utilisation_curve(fake.events(), [2.0])
    assert curve["utilisation"].iloc[0] == pytest.approx(1.0)  # full before and after


# ---------------------------------------------------------------------------------------
# recommend
# ---------------------------------------------------------------------------------------
def frame(rows: list[tuple[Any, ...]], **attrs: Any) -> Any:
    cols = ["size", "throughput", "p95_latency_s", "work_per_job_s"]
    df = pd.DataFrame(rows, columns=cols)
    df.attrs.update(attrs)
    return df


CPU_FRAME = [(1, 100.0, 0.40, 0.010), (2, 104.0, 0.39, 0.019), (4, 101.0, 0.40, 0.038),
             (8, 99.0, 0.41, 0.075)]  # fmt: skip
IO_FRAME = [(1, 20.0, 2.00, 0.050), (2, 40.0, 1.00, 0.050), (4, 78.0, 0.50, 0.050),
            (8, 80.0, 0.30, 0.050)]  # fmt: skip


@pytest.mark.timeout(30)
def test_recommend_cpu_bound_work() -> None:
    rec = recommend(frame(CPU_FRAME), cpu_count=4)
    assert isinstance(rec, Recommendation)
    assert (rec.size, rec.knee_size, rec.workload, rec.rule_of_thumb) == (1, 1, "cpu-bound",
                                                                            (4, 4))
    assert rec.busy_threads == pytest.approx(1.04)
    text = str(rec)
    assert text.startswith("Recommended pool size: 1 (cpu-bound work on 4 CPUs)")
    assert "levels off at 1 thread:" in text and "(104.0 jobs/s at 2)" in text
    assert "Little's law" in text and "GIL" in text and "os.cpu_count() = 4" in text
    assert "below the rule of thumb (4)" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.size = 3  # type: ignore[misc]


@pytest.mark.timeout(30)
def test_recommend_io_bound_work() -> None:
    rec = recommend(frame(IO_FRAME), cpu_count=2)
    assert (rec.size, rec.knee_size, rec.workload, rec.rule_of_thumb) == (4, 4, "io-bound",
                                                                            (4, 8))
    assert rec.busy_threads == pytest.approx(4.0)
    assert any("2-4 x os.cpu_count() = 4-8" in r for r in rec.reasons)
    assert any("agrees with the rule of thumb" in r for r in rec.reasons)
    assert rec.size > recommend(frame(CPU_FRAME), cpu_count=2).size


@pytest.mark.timeout(30)
def test_recommend_with_a_latency_target() -> None:
    rec = recommend(frame(IO_FRAME), latency_target_s=0.4, cpu_count=2)
    assert (rec.size, rec.knee_size, rec.latency_size) == (8, 4, 8)
    assert any("first met at 8 threads" in r for r in rec.reasons)
    easy = recommend(frame(IO_FRAME), latency_target_s=1.5, cpu_count=2)
    assert (easy.size, easy.latency_size) == (4, 2)
    assert any("met from 2 threads on" in r for r in easy.reasons)
    hard = recommend(frame(IO_FRAME), latency_target_s=0.1, cpu_count=2)
    assert hard.size == 4 and hard.latency_size is None
    assert any("No size tried meets" in r and "0.3 s at 8 threads" in r for r in hard.reasons)


@pytest.mark.timeout(30)
def test_recommend_with_an_arrival_rate() -> None:
    rows = [(1, 20.0, 2.0, 0.05), (2, 39.0, 1.0, 0.05), (4, 60.0, 0.1, 0.05),
            (8, 60.0, 0.06, 0.05)]  # fmt: skip
    rec = recommend(frame(rows, rate=60.0), cpu_count=2)  # the sweep's own rate
    assert rec.size == 4
    assert any("Jobs arrive at 60/s" in r and "3.0 threads" in r
               and "smallest size that kept up was 4" in r for r in rec.reasons)
    fast = recommend(frame(rows), arrival_rate=100.0, cpu_count=2)
    assert any("no size tried kept up" in r for r in fast.reasons)


@pytest.mark.timeout(30)
def test_recommend_reads_the_kind_of_work_from_cpu_time() -> None:
    def with_cpu(rows: list[tuple[Any, ...]], cpu_s: list[float], **attrs: Any) -> Any:
        df = frame(rows, **attrs)
        df["cpu_per_job_s"] = cpu_s
        return df

    # Paced I/O at 60/s x 50 ms: only 3 threads busy, fewer than 2 x 2 CPUs, yet waiting.
    paced = [(1, 20.0, 2.0, 0.05), (2, 39.0, 1.0, 0.05), (4, 60.0, 0.1, 0.05),
             (8, 60.0, 0.06, 0.05)]  # fmt: skip
    rec = recommend(with_cpu(paced, [0.001] * 4, rate=60.0), cpu_count=2)
    assert rec.workload == "io-bound" and rec.rule_of_thumb == (4, 8)
    assert any("1.0 ms of CPU for 50.0 ms of thread time (2%)" in r and "mostly wait" in r
               for r in rec.reasons)
    # Computing threads that still got 4 jobs' worth done at once: mixed.
    rec = recommend(with_cpu(IO_FRAME, [0.02] * 4), cpu_count=2)
    assert rec.workload == "mixed" and rec.rule_of_thumb == (2, 2)
    assert any("do compute" in r for r in rec.reasons)
    # One thread's worth at a time, computing: the GIL.
    rec = recommend(with_cpu(CPU_FRAME, [0.009] * 4), cpu_count=2)
    assert rec.workload == "cpu-bound"


@pytest.mark.timeout(30)
def test_recommend_does_not_follow_noise_past_what_littles_law_allows() -> None:
    # CPU-bound work measured on a busy machine: 4 threads looked 16% faster, yet only
    # 100/s x 11.5 ms = 1.15 threads' worth of work ran at once.
    noisy = [(1, 86.0, 0.25, 0.0115), (2, 72.0, 0.30, 0.026), (4, 100.0, 0.15, 0.028)]
    rec = recommend(frame(noisy), cpu_count=2)
    assert (rec.knee_size, rec.size, rec.workload) == (4, 1, "cpu-bound")
    assert any("So 1 thread cover that" in r and "16% more throughput measured at 4" in r
               for r in rec.reasons), rec.reasons
    # A latency target still wins over the cap.
    assert recommend(frame(noisy), latency_target_s=0.2, cpu_count=2).size == 4


@pytest.mark.timeout(30)
def test_recommend_says_when_throughput_is_still_rising() -> None:
    rows = [(1, 20.0, 1.0, 0.05), (2, 40.0, 0.5, 0.05), (4, 80.0, 0.25, 0.05)]
    rec = recommend(frame(rows), cpu_count=2)
    assert rec.size == 4
    assert "still rising at the largest size tried (4" in rec.reasons[0]


@pytest.mark.timeout(30)
def test_recommend_without_work_per_job_uses_the_speedup() -> None:
    df = frame(IO_FRAME).drop(columns=["work_per_job_s"])
    rec = recommend(df, cpu_count=2)
    assert rec.busy_threads is None
    assert rec.workload == "io-bound"  # 80 / 20 x 1 = 4 threads' worth of work


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("df", "kwargs", "match"),
    [
        (lambda: pd.DataFrame({"size": [1]}), {}, "missing: throughput, p95_latency_s"),
        (lambda: frame([]), {}, "empty sweep frame"),
        (lambda: frame(IO_FRAME), {"latency_target_s": 0}, "latency_target_s must be > 0"),
        (lambda: frame(IO_FRAME), {"tolerance": 1.5}, "tolerance must be in"),
        (lambda: frame(IO_FRAME), {"arrival_rate": -1}, "arrival_rate must be > 0"),
    ],
)
def test_recommend_rejects_bad_input(df: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        recommend(df(), **kwargs)


# ---------------------------------------------------------------------------------------
# sweep
# ---------------------------------------------------------------------------------------
def sleeping_flow(sleep_s: float = 0.01) -> Any:
    flow = new_flow("tune-sweep")

    def work(slot_data, policy_message, worker_state):
        time.sleep(sleep_s)

    flow.add_routine(make_routine(work), "a")
    return flow


def pool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("RoutiluxThread")]


@pytest.mark.timeout(60)
def test_sweep_measures_each_size_from_its_trace() -> None:
    seen: list[SweepProgress] = []
    traces: dict[int, Tracer] = {}
    data: list[int] = []

    def make_data(i: int) -> dict[str, int]:
        data.append(i)
        return {"i": i}

    flow = sleeping_flow(0.02)  # the registry holds flows weakly: keep it alive
    df = sweep(flow.flow_id, "a", "in", make_data, sizes=[1, 4], jobs=8,
               progress=seen.append, traces=traces)
    assert list(df.columns) == list(SWEEP_COLUMNS)
    assert list(df["size"]) == [1, 4] and list(df["jobs"]) == [8, 8]
    assert data == list(range(8)) * 2
    assert list(df["failed"]) == [0, 0]
    one, four = df.iloc[0], df.iloc[1]
    assert one["makespan_s"] >= 8 * 0.02
    # Loose bounds: other processes on the machine may delay any thread a little.
    assert four["throughput"] > 1.5 * one["throughput"]
    assert 0.7 < one["utilisation"] <= 1.0
    assert one["work_per_job_s"] == pytest.approx(0.02, rel=0.5)
    assert one["p50_latency_s"] <= one["p95_latency_s"] <= one["p99_latency_s"]
    assert one["mean_queue_wait_s"] > four["mean_queue_wait_s"]
    assert set(traces) == {1, 4} and all(isinstance(t, Tracer) for t in traces.values())
    assert df.attrs["cpu_count"] >= 1 and df.attrs["cancelled"] is False
    finished = [p for p in seen if p.row is not None]
    assert [p.size for p in finished] == [1, 4]
    assert finished[-1].fraction == 1.0 and finished[0].fraction == 0.5
    assert finished[0].row == {k: df.iloc[0][k] for k in SWEEP_COLUMNS}
    assert all(0.0 <= p.fraction <= 1.0 for p in seen)


@pytest.mark.timeout(60)
def test_sweep_prints_one_line_per_size_without_tqdm(
    capsys: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # makes `import tqdm` fail: not installed
    df = sweep(sleeping_flow(), "a", "in", {"x": 1}, sizes=[1, 2], jobs=3)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and len(df) == 2
    assert err[0].startswith("sweep: size 1 (1/2): ") and "jobs/s" in err[0]
    assert err[1].startswith("sweep: size 2 (2/2): ")
    sweep(sleeping_flow(), "a", "in", sizes=[1], jobs=1, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.timeout(60)
def test_sweep_shows_a_tqdm_bar_by_default(capsys: Any) -> None:
    import tqdm  # the dev extra installs it; sweep must find it by itself

    slow = threading.Event()

    def work(slot_data, policy_message, worker_state):
        slow.wait(0.05)  # long enough for a few in-between progress reports per size

    flow = new_flow("tune-tqdm")
    flow.add_routine(make_routine(work), "a")
    before = len(tqdm.tqdm._instances)
    df = sweep(flow, "a", "in", sizes=[1, 2], jobs=6)
    out = capsys.readouterr()
    assert out.out == "" and len(df) == 2
    # tqdm redraws its line with carriage returns; the size lines are written above it.
    frames = [f for line in out.err.splitlines() for f in line.split("\r") if f.strip()]
    sizes = [f for f in frames if f.startswith("sweep: size ")]
    bars = [f for f in frames if f.startswith("sweep:") and "|" in f]
    assert [s.split(" (")[0] for s in sizes] == ["sweep: size 1", "sweep: size 2"], frames
    assert "jobs/s" in sizes[0] and "(2/2)" in sizes[1], sizes
    assert bars and all("/12" in b for b in bars), bars  # one bar: 2 sizes x 6 jobs
    assert "12/12" in bars[-1] and "100%" in bars[-1], bars[-1]
    assert any("size 1 (1/2)" in b for b in bars) and "size 2 (2/2)" in bars[-1], bars
    assert len(tqdm.tqdm._instances) == before  # closed when the sweep ended


@pytest.mark.timeout(60)
def test_a_failing_sweep_closes_its_tqdm_bar(capsys: Any) -> None:
    import tqdm

    flow = sleeping_flow()

    def factory(size: int) -> Any:
        if size == 2:
            return "not a runtime"  # the second size fails, after the first one's row
        return Runtime(thread_pool_size=size, trace=True), flow

    before = len(tqdm.tqdm._instances)
    with pytest.raises(TypeError, match="must return"):
        sweep(factory, "a", "in", sizes=[1, 2], jobs=2)
    assert len(tqdm.tqdm._instances) == before
    err = capsys.readouterr().err
    assert "sweep: size 1 (1/2)" in err and "2/4" in err, err


@pytest.mark.timeout(60)
def test_sweep_with_a_runtime_factory_and_a_rate() -> None:
    made: list[Runtime] = []
    flow = sleeping_flow(0.001)

    def factory(size: int) -> tuple[Runtime, Any]:
        rt = Runtime(thread_pool_size=size, trace=True, max_queue_size=100)
        made.append(rt)
        return rt, flow.flow_id

    df = sweep(factory, "a", "in", sizes=[2], jobs=10, rate=100.0, progress=False)
    assert [rt.thread_pool_size for rt in made] == [2]
    assert all(rt.is_shut_down for rt in made)
    assert df.attrs["rate"] == 100.0
    assert df["makespan_s"].iloc[0] >= 9 / 100.0  # ten posts paced 10 ms apart


@pytest.mark.timeout(60)
def test_sweep_can_be_cancelled_between_and_during_sizes() -> None:
    cancel = threading.Event()

    def stop_after_first(p: SweepProgress) -> None:
        if p.row is not None:
            cancel.set()

    df = sweep(sleeping_flow(), "a", "in", sizes=[1, 2, 4], jobs=3, progress=stop_after_first,
               cancel=cancel)
    assert list(df["size"]) == [1] and df.attrs["cancelled"] is True

    slow = sleeping_flow(0.2)
    cancel = threading.Event()

    def stop_now(p: SweepProgress) -> None:
        cancel.set()

    started = time.monotonic()
    df = sweep(slow, "a", "in", sizes=[1], jobs=20, progress=stop_now, cancel=cancel)
    assert len(df) == 0 and df.attrs["cancelled"] is True
    assert time.monotonic() - started < 3.0  # did not wait for 20 x 0.2 s


@pytest.mark.timeout(60)
def test_sweep_times_out_and_shuts_its_runtime_down() -> None:
    before = routilux.latest_runtime()
    with pytest.raises(TimeoutError, match="pool size 1 did not finish 5 jobs within 0.3 s"):
        sweep(sleeping_flow(0.2), "a", "in", sizes=[1], jobs=5, progress=False, timeout_s=0.3)
    assert routilux.latest_runtime() is before


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sizes": []}, ValueError, "at least one pool size"),
        ({"sizes": [0]}, ValueError, "ints >= 1, got 0"),
        ({"sizes": [1.5]}, TypeError, "ints >= 1, got float"),
        ({"sizes": [2, 2]}, ValueError, "must not repeat"),
        ({"sizes": 3}, TypeError, "list of ints"),
        ({"jobs": 0}, ValueError, "jobs must be an int >= 1"),
        ({"rate": 0}, ValueError, "rate must be"),
        ({"make_data": 5}, TypeError, "make_data must be"),
        ({"routine": "nope"}, ValueError, "has no routine 'nope'"),
        ({"slot": "nope"}, ValueError, "has no slot 'nope'"),
        ({"workload": 42}, TypeError, "workload must be a flow name"),
        ({"workload": lambda n: Runtime(thread_pool_size=n, trace=True)}, TypeError,
         "must return \\(runtime, flow\\)"),
        ({"workload": lambda n: (Runtime(thread_pool_size=n), "x")}, ValueError,
         "without tracing"),
    ],
)
def test_sweep_rejects_bad_input(kwargs: dict[str, Any], error: type, match: str) -> None:
    args: dict[str, Any] = {"workload": sleeping_flow(), "routine": "a", "slot": "in",
                            "sizes": [1], "jobs": 1, "progress": False}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        sweep(**args)
    assert routilux.latest_runtime() is None or routilux.latest_runtime().is_shut_down


@pytest.mark.timeout(30)
def test_sweep_and_the_curve_name_the_extra_when_pandas_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install routilux\[jupyter\]"):
        sweep("x", "a", "in", sizes=[1], jobs=1)
    with pytest.raises(ImportError, match=r"pip install routilux\[jupyter\]"):
        utilisation_curve(sequential_jobs(1))
    assert simulate(sequential_jobs(2), 2).makespan_s == pytest.approx(1.0)  # pure Python


@pytest.mark.timeout(60)
def test_importing_tuning_does_not_import_pandas() -> None:
    code = ("import sys, routilux.tuning; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pandas', 'numpy', 'matplotlib', 'IPython', 'ipywidgets', 'tqdm')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.timeout(30)
def test_the_sweep_columns_are_documented() -> None:
    doc = sweep.__doc__ or ""
    for column in SWEEP_COLUMNS:
        assert f"``{column}``" in doc, column
    assert math.isclose(SweepProgress(1, 0, 2, 5, 10).fraction, 0.25)
