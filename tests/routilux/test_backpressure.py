"""Backpressure: ``Runtime(max_queue_size=N)`` bounds the run queue for ``post``.

Each test fills the queue deterministically: a pool of one thread runs a logic that waits
on a gate, so every further activation stays queued until the test opens the gate.
"""

from __future__ import annotations

import threading
import time

import pytest
from util import JOIN_TIMEOUT, Recorder, finish_all, make_routine, new_flow, running, wait_until

from routilux import QueueFullError, RoutiluxError


class Blocked:
    """A flow whose routine ``r`` blocks on ``gate`` for items with ``{"block": True}``."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.running = threading.Event()
        self.ran = Recorder()

        def logic(slot_data, policy_message, worker_state):
            item = slot_data["in"][0]
            if item.get("block"):
                self.running.set()
                assert self.gate.wait(JOIN_TIMEOUT)
            self.ran.add(item.get("i"))

        self.flow = new_flow("bp")
        self.flow.add_routine(make_routine(logic, events=()), "r")

    def fill(self, rt, queued: int) -> None:
        """One activation running (blocked) and ``queued`` waiting in the run queue."""
        rt.post(self.flow.flow_id, "r", "in", {"block": True, "i": -1})
        assert self.running.wait(JOIN_TIMEOUT)
        for i in range(queued):
            rt.post(self.flow.flow_id, "r", "in", {"i": i})
        assert rt.statistics().queued == queued


@pytest.mark.timeout(30)
def test_queue_full_error_is_a_routilux_error() -> None:
    assert issubclass(QueueFullError, RoutiluxError)


@pytest.mark.timeout(30)
def test_non_blocking_post_raises_at_once_and_registers_nothing() -> None:
    b = Blocked()
    with running(thread_pool_size=1, max_queue_size=3) as rt:
        b.fill(rt, 3)
        jobs, posted = rt.list_jobs(), rt.statistics().posted
        start = time.monotonic()
        with pytest.raises(QueueFullError, match=r"run queue is full \(3 activations waiting"):
            rt.post(b.flow.flow_id, "r", "in", {"i": 99}, block=False)
        assert time.monotonic() - start < 1.0  # no waiting (generous bound for slow CI)
        assert rt.list_jobs() == jobs
        assert rt.statistics().posted == posted
        assert rt.statistics().queued == 3
        b.gate.set()
        finish_all(rt)
        assert sorted(b.ran.snapshot()) == [-1, 0, 1, 2]


@pytest.mark.timeout(30)
def test_blocking_post_with_timeout_raises_after_the_timeout() -> None:
    b = Blocked()
    with running(thread_pool_size=1, max_queue_size=2) as rt:
        b.fill(rt, 2)
        jobs = rt.list_jobs()
        start = time.monotonic()
        with pytest.raises(QueueFullError, match=r"stayed full .* for 0.2 s; no job was registered"):
            rt.post(b.flow.flow_id, "r", "in", {"i": 99}, block=True, timeout=0.2)
        assert time.monotonic() - start >= 0.2
        assert rt.list_jobs() == jobs
        b.gate.set()
        finish_all(rt)
        assert 99 not in b.ran.snapshot()


@pytest.mark.timeout(30)
def test_blocking_post_without_timeout_waits_until_workers_drain() -> None:
    b = Blocked()
    with running(thread_pool_size=1, max_queue_size=2) as rt:
        b.fill(rt, 2)
        result: list = []
        errors: list[BaseException] = []

        def poster() -> None:
            try:
                result.append(rt.post(b.flow.flow_id, "r", "in", {"i": 99}, block=True))
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        t = threading.Thread(target=poster)
        t.start()
        # The poster is parked on the pool's room condition, not finished.
        wait_until(lambda: rt._pool.room_waiters == 1, what="poster waiting for room")
        assert result == [] and t.is_alive()
        assert len(rt.list_jobs()) == 3
        b.gate.set()
        t.join(JOIN_TIMEOUT)
        assert not t.is_alive()
        assert errors == []
        (_, job), = result
        finish_all(rt)
        assert job.status == "completed"
        assert sorted(b.ran.snapshot()) == [-1, 0, 1, 99]


@pytest.mark.timeout(30)
def test_shutdown_wakes_a_blocked_poster_with_runtime_error() -> None:
    b = Blocked()
    errors: list[BaseException] = []
    with running(thread_pool_size=1, max_queue_size=1) as rt:
        b.fill(rt, 1)
        jobs = rt.list_jobs()

        def poster() -> None:
            try:
                rt.post(b.flow.flow_id, "r", "in", {"i": 99})
            except BaseException as exc:  # noqa: BLE001 - inspected below
                errors.append(exc)

        t = threading.Thread(target=poster)
        t.start()
        wait_until(lambda: rt._pool.room_waiters == 1, what="poster waiting for room")
        stopper = threading.Thread(target=rt.shutdown, kwargs={"wait": False})
        stopper.start()
        t.join(JOIN_TIMEOUT)  # woken by shutdown, while the gate is still closed
        assert not t.is_alive()
        b.gate.set()
        stopper.join(JOIN_TIMEOUT)
        assert not stopper.is_alive()
        assert len(errors) == 1 and isinstance(errors[0], RuntimeError)
        assert "shut down" in str(errors[0])
        assert rt.list_jobs() == jobs
        assert [j.status for j in jobs] == ["cancelled", "cancelled"]


@pytest.mark.timeout(30)
def test_emits_inside_logic_are_never_refused() -> None:
    fanned = Recorder()

    def fan(slot_data, policy_message, worker_state):
        for i in range(20):
            src.emit("out", i=i)

    src = make_routine(fan)
    flow = new_flow("bp-emit")
    flow.add_routine(src, "src")
    flow.add_routine(make_routine(lambda sd, pm, ws: fanned.add(sd["in"][0]["i"]), events=()),
                     "sink")
    flow.connect("src", "out", "sink", "in")
    with running(thread_pool_size=1, max_queue_size=1) as rt:
        _, job = rt.post(flow.flow_id, "src", "in", {}, block=False)
        finish_all(rt)
        assert job.status == "completed"
        assert sorted(fanned.snapshot()) == list(range(20))


@pytest.mark.timeout(30)
def test_unbounded_runtime_never_refuses_posts() -> None:
    b = Blocked()
    with running(thread_pool_size=1) as rt:
        b.fill(rt, 50)
        rt.post(b.flow.flow_id, "r", "in", {"i": 50}, block=False)
        assert rt.statistics().queued == 51
        b.gate.set()
        finish_all(rt)
        assert len(b.ran) == 52
