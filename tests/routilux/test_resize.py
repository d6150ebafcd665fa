"""``Runtime.resize``: the pool changes size while jobs run, loses nothing, and never starts
a task while as many tasks as its current size are running.

Two deterministic tests pin the mechanics (a shrink lets running tasks finish and then
runs the backlog one at a time; a grow starts new threads for the backlog at once), and a
churn test resizes up and down while 1000 jobs run and replays the trace to check that
no task started while ``busy >= size``.
"""

from __future__ import annotations

import threading
import time

import pytest
from util import JOIN_TIMEOUT, Concurrency, Recorder, finish_all, make_routine, new_flow, running

from routilux.trace import TraceEvent


@pytest.mark.timeout(30)
def test_shrink_lets_running_tasks_finish_then_runs_the_backlog_one_at_a_time() -> None:
    gate = threading.Event()
    started = threading.Barrier(5)
    conc = Concurrency()
    overlap_at_start = Recorder()

    def logic(slot_data, policy_message, worker_state):
        with conc:
            overlap_at_start.add((slot_data["in"][0]["i"], conc.now))
            if slot_data["in"][0]["i"] < 4:
                started.wait(JOIN_TIMEOUT)
                assert gate.wait(JOIN_TIMEOUT)

    flow = new_flow("shrink")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=4) as rt:
        for i in range(4):
            rt.post(flow.flow_id, "r", "in", {"i": i})
        started.wait(JOIN_TIMEOUT)  # all four run at once
        rt.resize(1)
        assert rt.thread_pool_size == 1
        for i in range(4, 10):
            rt.post(flow.flow_id, "r", "in", {"i": i})
        stats = rt.statistics()
        assert (stats.pool_size, stats.busy, stats.queued) == (1, 4, 6)
        gate.set()
        finish_all(rt)
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        later = [now for i, now in overlap_at_start.snapshot() if i >= 4]
        assert later == [1] * 6  # each ran alone: the surplus threads had exited
        assert rt.statistics().threads == 1
        assert {j.status for j in rt.list_jobs()} == {"completed"}


@pytest.mark.timeout(30)
def test_grow_starts_threads_for_the_backlog_at_once() -> None:
    gate = threading.Event()
    first_running = threading.Event()
    together = threading.Barrier(4)  # the three queued tasks and this test

    def logic(slot_data, policy_message, worker_state):
        if slot_data["in"][0]["i"] == 0:
            first_running.set()
            assert gate.wait(JOIN_TIMEOUT)
        else:
            together.wait(JOIN_TIMEOUT)  # passes only if all three run at the same time

    flow = new_flow("grow")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=1) as rt:
        rt.post(flow.flow_id, "r", "in", {"i": 0})
        assert first_running.wait(JOIN_TIMEOUT)
        for i in range(1, 4):
            rt.post(flow.flow_id, "r", "in", {"i": i})
        assert rt.statistics().queued == 3
        rt.resize(4)
        together.wait(JOIN_TIMEOUT)
        stats = rt.statistics()
        assert stats.pool_size == 4 and stats.threads == 4
        gate.set()
        finish_all(rt)
        assert {j.status for j in rt.list_jobs()} == {"completed"}


@pytest.mark.timeout(30)
def test_resize_on_the_shared_pool_is_refused() -> None:
    with running(thread_pool_size=0) as rt, pytest.raises(RuntimeError, match="shared pool"):
        rt.resize(4)


def _replay_busy_against_size(events: list[TraceEvent], initial: int) -> list[str]:
    """Every task.started must find fewer running tasks than the pool size.

    ``pool.resize`` is recorded just after the size changed, so at any point in the trace
    the true size is the last recorded one, or (while a resize call is in progress) the
    next one; a task's start record may also lag its take by a resize. The allowance is
    therefore the largest of the previous, the current and the next recorded size.
    """
    resizes = [(e.seq, int(e.value)) for e in events if e.kind == "pool.resize"]
    sizes = [initial] + [size for _, size in resizes]
    problems = []
    running: set[int] = set()
    k = 0  # resizes recorded so far
    for e in events:
        if e.kind == "pool.resize":
            k += 1
        elif e.kind == "task.started":
            window = sizes[max(k - 1, 0): k + 2]
            if len(running) >= max(window):
                problems.append(
                    f"seq {e.seq}: a task started while {len(running)} ran; sizes {window}"
                )
            running.add(e.thread)
        elif e.kind == "task.finished":
            running.discard(e.thread)
    return problems


@pytest.mark.timeout(120)
def test_resize_up_and_down_while_1000_jobs_run_loses_none() -> None:
    done = Recorder()
    conc = Concurrency()
    sizes_set = [4]
    over_threads = Recorder()

    def logic(slot_data, policy_message, worker_state):
        with conc:
            stats = rt.statistics()
            if stats.busy > stats.threads or stats.threads > max(sizes_set):
                over_threads.add(stats)
            time.sleep(0.0005)
        done.add(slot_data["in"][0]["n"])

    flow = new_flow("resize")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=4, trace=True) as rt:
        errors: list[BaseException] = []

        def poster() -> None:
            try:
                for n in range(1000):
                    rt.post(flow.flow_id, "r", "in", {"n": n})
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        t = threading.Thread(target=poster)
        t.start()
        for step, size in enumerate([8, 2, 16, 1, 6, 3, 12, 2], start=1):
            done.wait_for(step * 100)
            sizes_set.append(size)
            rt.resize(size)
        t.join(JOIN_TIMEOUT)
        assert errors == []
        finish_all(rt)
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        jobs = rt.list_jobs()
        assert len(jobs) == 1000
        assert {j.status for j in jobs} == {"completed"}
        assert sorted(done.snapshot()) == list(range(1000))
        stats = rt.statistics()
        assert stats.pool_size == 2 and stats.threads <= 2
        assert stats.tasks_completed >= 1000
        assert over_threads.snapshot() == []
        tracer = rt.tracer
        assert tracer.dropped == 0
        events = tracer.read()
        resizes = [(int(e.value), e.detail) for e in events if e.kind == "pool.resize"]
        assert resizes == [(8, 4), (2, 8), (16, 2), (1, 16), (6, 1), (3, 6), (12, 3), (2, 12)]
        assert sum(e.kind == "task.started" for e in events) == 1000
        assert sum(e.kind == "task.finished" for e in events) == 1000
        assert _replay_busy_against_size(events, initial=4) == []
