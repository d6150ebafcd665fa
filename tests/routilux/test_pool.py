"""The pool's capacity is really available: an activation never waits for a busy thread
while the pool could run it on another one.

A logic that emits and then waits for its downstream (scatter-gather inside one logic)
is the docs' pool-exhaustion pitfall only when *every* thread is blocked. With a spare
thread, or a thread that frees up, the downstream must run.
"""

from __future__ import annotations

import threading

import pytest
from util import JOIN_TIMEOUT, Recorder, finish_all, make_routine, new_flow, running

WAIT_S = 5.0  # seconds the upstream waits for its downstream before giving up


def _gather_flow(got: threading.Event, before_emit=None, after_emit=None):
    outcome = Recorder()

    def up_logic(slot_data, policy_message, worker_state):
        if before_emit is not None:
            before_emit()
        up.emit("out", x=1)
        if after_emit is not None:
            after_emit()
        outcome.add(got.wait(WAIT_S))

    up = make_routine(up_logic)
    flow = new_flow("gather")
    flow.add_routine(up, "up")
    flow.add_routine(make_routine(lambda sd, pm, ws: got.set(), events=()), "down")
    flow.connect("up", "out", "down", "in")
    return flow, outcome


@pytest.mark.timeout(30)
def test_downstream_runs_on_a_spare_thread_while_upstream_waits_for_it() -> None:
    got = threading.Event()
    flow, outcome = _gather_flow(got)
    with running(thread_pool_size=4) as rt:
        rt.post(flow.flow_id, "up", "in", {})
        finish_all(rt)
        assert outcome.snapshot() == [True]  # not a timeout: down ran meanwhile
        assert rt.statistics().threads == 2


@pytest.mark.timeout(30)
def test_downstream_runs_on_the_first_thread_that_frees_up() -> None:
    got = threading.Event()
    both_busy = threading.Barrier(2)
    emitted = threading.Event()
    flow, outcome = _gather_flow(got, before_emit=lambda: both_busy.wait(JOIN_TIMEOUT),
                                 after_emit=emitted.set)

    def other(slot_data, policy_message, worker_state):
        both_busy.wait(JOIN_TIMEOUT)  # both threads are busy when `up` emits ...
        assert emitted.wait(JOIN_TIMEOUT)  # ... and this one frees up only afterwards

    flow.add_routine(make_routine(other, events=()), "other")
    with running(thread_pool_size=2) as rt:
        rt.post(flow.flow_id, "up", "in", {})
        rt.post(flow.flow_id, "other", "in", {})  # occupies the second thread briefly
        finish_all(rt)
        assert outcome.snapshot() == [True]
        assert {j.status for j in rt.list_jobs()} == {"completed"}


@pytest.mark.timeout(30)
def test_pool_statistics_and_repr() -> None:
    gate = threading.Event()
    started = threading.Barrier(3)

    def logic(slot_data, policy_message, worker_state):
        if slot_data["in"][0]["i"] < 2:
            started.wait(JOIN_TIMEOUT)
            assert gate.wait(JOIN_TIMEOUT)

    flow = new_flow("pool-stats")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=2) as rt:
        for i in range(5):
            rt.post(flow.flow_id, "r", "in", {"i": i})
        started.wait(JOIN_TIMEOUT)
        s = rt.statistics()
        assert (s.pool_size, s.threads, s.busy, s.idle, s.queued) == (2, 2, 2, 0, 3)
        assert (s.posted, s.running, s.completed) == (5, 5, 0)
        assert "pool=2 busy=2 queued=3" in repr(rt)
        assert "size=2 busy=2 queued=3" in repr(rt.thread_pool)
        running_now = rt.running_tasks()
        assert len(running_now) == 2 and {t["routine"] for t in running_now} == {"r"}
        gate.set()
        finish_all(rt)
        s = rt.statistics()
        assert (s.completed, s.running, s.tasks_completed >= 5) == (5, 0, True)
