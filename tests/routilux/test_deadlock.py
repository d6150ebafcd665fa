"""The pure cycle finder over small graphs, the wait-for graph with fake locks, and the message."""

from __future__ import annotations

import pickle
import threading

import pytest

from routilux._deadlock import Waiter, WaitForGraph, describe_cycle, find_cycle
from routilux._errors import DeadlockError, RoutiluxError

pytestmark = pytest.mark.timeout(10)


def _rotations(cycle):
    return [cycle[i:] + cycle[:i] for i in range(len(cycle))]


# find_cycle: threads are strings "T1"..., locks are strings "a"...


def test_empty_graph_has_no_cycle():
    assert find_cycle({}, {}) is None
    assert find_cycle({}, {}, start="T1") is None


def test_waiting_for_a_free_lock_is_no_cycle():
    assert find_cycle({"T1": "a"}, {}) is None
    assert find_cycle({"T1": "a"}, {"a": set()}) is None


def test_waiting_for_a_running_owner_is_no_cycle():
    assert find_cycle({"T1": "a"}, {"a": {"T2"}}) is None


def test_two_threads_in_opposite_order_form_a_cycle():
    waits = {"T1": "b", "T2": "a"}
    owners = {"a": {"T1"}, "b": {"T2"}}
    assert find_cycle(waits, owners, start="T1") == [("T1", "b"), ("T2", "a")]
    assert find_cycle(waits, owners, start="T2") == [("T2", "a"), ("T1", "b")]
    assert find_cycle(waits, owners) in _rotations([("T1", "b"), ("T2", "a")])


def test_three_thread_cycle():
    waits = {"T1": "b", "T2": "c", "T3": "a"}
    owners = {"a": {"T1"}, "b": {"T2"}, "c": {"T3"}}
    assert find_cycle(waits, owners, start="T2") == [("T2", "c"), ("T3", "a"), ("T1", "b")]
    assert find_cycle(waits, owners) in _rotations([("T1", "b"), ("T2", "c"), ("T3", "a")])


def test_self_wait_on_a_non_reentrant_lock():
    assert find_cycle({"T1": "a"}, {"a": {"T1"}}, start="T1") == [("T1", "a")]
    assert find_cycle({"T1": "a"}, {"a": {"T1"}}) == [("T1", "a")]


def test_chain_without_cycle():
    # T1 -> a (T2) -> b (T3) -> c (T4, running)
    waits = {"T1": "a", "T2": "b", "T3": "c"}
    owners = {"a": {"T2"}, "b": {"T3"}, "c": {"T4"}}
    assert find_cycle(waits, owners) is None
    for t in waits:
        assert find_cycle(waits, owners, start=t) is None


def test_thread_waiting_behind_a_cycle_is_not_in_it():
    waits = {"T0": "a", "T1": "b", "T2": "a"}
    owners = {"a": {"T1"}, "b": {"T2"}}
    assert find_cycle(waits, owners, start="T0") is None
    assert find_cycle(waits, owners, start="T1") == [("T1", "b"), ("T2", "a")]
    assert find_cycle(waits, owners) in _rotations([("T1", "b"), ("T2", "a")])


def test_semaphore_with_a_running_holder_is_no_deadlock():
    # T1 holds lock L and waits for a permit of S; S's permits are held by T2 (blocked on L)
    # and T3 (running, will release): T1 can still get a permit.
    waits = {"T1": "S", "T2": "L"}
    owners = {"S": {"T2", "T3"}, "L": {"T1"}}
    assert find_cycle(waits, owners) is None
    assert find_cycle(waits, owners, start="T1") is None


def test_semaphore_whose_holders_are_all_stuck_is_a_deadlock():
    waits = {"T1": "S", "T2": "L", "T3": "L"}
    owners = {"S": {"T2", "T3"}, "L": {"T1"}}
    found = find_cycle(waits, owners, start="T1")
    assert found == [("T1", "S"), ("T2", "L")]  # shortest, successors in sorted order
    assert find_cycle(waits, owners, start="T3") == [("T3", "L"), ("T1", "S")]


def test_semaphore_self_wait_with_other_holder_running():
    assert find_cycle({"T1": "S"}, {"S": {"T1", "T2"}}) is None
    assert find_cycle({"T1": "S"}, {"S": {"T1"}}) == [("T1", "S")]


def test_unorderable_threads_still_work():
    t1, t2 = object(), object()
    waits = {t1: "b", t2: "a"}
    owners = {"a": {t1}, "b": {t2}}
    assert find_cycle(waits, owners, start=t1) == [(t1, "b"), (t2, "a")]


def test_find_cycle_does_not_modify_its_inputs():
    waits = {"T1": "b", "T2": "a"}
    owners = {"a": {"T1"}, "b": {"T2"}}
    find_cycle(waits, owners)
    assert waits == {"T1": "b", "T2": "a"}
    assert owners == {"a": {"T1"}, "b": {"T2"}}


# describe_cycle and DeadlockError


CYCLE = [
    {
        "thread": 2,
        "thread_name": "RoutiluxWorker-2",
        "routine": "a",
        "job_id": "1f3e0000-aaaa",
        "holds": "cache",
        "waits_for": "db",
    },
    {
        "thread": 5,
        "thread_name": "RoutiluxWorker-5",
        "routine": None,
        "job_id": None,
        "holds": "db",
        "waits_for": "cache",
    },
]


def test_describe_cycle_in_plain_words():
    assert describe_cycle(CYCLE) == (
        "RoutiluxWorker-2 (routine 'a', job 1f3e0000) holds 'cache' and waits for 'db'; "
        "RoutiluxWorker-5 holds 'db' and waits for 'cache'"
    )


def test_deadlock_error_carries_the_cycle_as_data():
    err = DeadlockError(describe_cycle(CYCLE), CYCLE)
    assert isinstance(err, RoutiluxError)
    assert err.locks == ["db", "cache"]
    assert err.threads == ["RoutiluxWorker-2", "RoutiluxWorker-5"]
    assert err.cycle == CYCLE
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)
    assert copy.cycle == CYCLE


# WaitForGraph with fake locks


class FakeLock:
    def __init__(self, name, *owners):
        self.name = name
        self.owners = set(owners)

    def _owner_idents(self):
        return tuple(self.owners)


def _waiter(lock, name):
    return Waiter(lock, name, None, None)


def test_graph_claim_lets_exactly_one_thread_take_a_cycle():
    a, b = FakeLock("a", 1), FakeLock("b", 2)
    graph = WaitForGraph()
    graph.add(1, _waiter(b, "T1"))
    graph.add(2, _waiter(a, "T2"))
    found = graph.check(1, claim=True)
    assert found is not None and found.claimed
    assert found.locks == ["b", "a"]
    assert found.message == "T1 holds 'a' and waits for 'b'; T2 holds 'b' and waits for 'a'"
    assert graph.check(2, claim=True) is None  # T1 left the graph: the cycle is broken
    assert set(graph.waiting()) == {2}


def test_graph_report_returns_a_cycle_once_until_it_breaks():
    a, b = FakeLock("a", 1), FakeLock("b", 2)
    graph = WaitForGraph()
    graph.add(1, _waiter(b, "T1"))
    graph.add(2, _waiter(a, "T2"))
    first = graph.check(1, claim=False)
    assert first is not None and not first.claimed
    assert graph.check(1, claim=False) is None
    assert graph.check(2, claim=False) is None
    assert set(graph.waiting()) == {1, 2}
    graph.discard(2)  # T2 timed out...
    graph.add(2, _waiter(a, "T2"))  # ...and waits again: a new occurrence
    assert graph.check(2, claim=False) is not None


def test_graph_self_wait_message_gives_the_hint():
    class NonReentrant(FakeLock):
        _SELF_WAIT_HINT = "not reentrant"

    lock = NonReentrant("db", 7)
    graph = WaitForGraph()
    graph.add(7, _waiter(lock, "MainThread"))
    found = graph.check(7, claim=True)
    assert found.message == "MainThread holds 'db' and waits for 'db' (not reentrant)"


def test_graph_check_of_a_thread_not_waiting():
    assert WaitForGraph().check(1, claim=True) is None


# once end to end (more in test_sync.py)


@pytest.mark.timeout(10)
def test_end_to_end_two_locks_in_opposite_order():
    from routilux.sync import TracedLock

    cache, db = TracedLock("cache"), TracedLock("db")
    both_hold_one = threading.Barrier(2)
    errors: list[DeadlockError] = []
    finished: list[str] = []

    def run(first, second):
        try:
            with first:
                both_hold_one.wait()
                with second:
                    finished.append(threading.current_thread().name)
        except DeadlockError as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=run, args=(cache, db), name="E2E-1"),
        threading.Thread(target=run, args=(db, cache), name="E2E-2"),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and len(finished) == 1
    assert sorted(errors[0].threads) == ["E2E-1", "E2E-2"]
    assert sorted(errors[0].locks) == ["cache", "db"]


@pytest.mark.timeout(30)
def test_end_to_end_inside_a_runtime_names_routines_and_jobs():
    from util import make_routine, new_flow, running

    from routilux.sync import TracedLock

    cache, db = TracedLock("cache"), TracedLock("db")
    both_hold_one = threading.Barrier(2)

    def opposite(first, second):
        def logic(slot_data, policy_message, worker_state):
            with first:
                both_hold_one.wait()
                with second:
                    pass

        return logic

    flow = new_flow("deadlock")
    flow.add_routine(make_routine(opposite(cache, db)), "a")
    flow.add_routine(make_routine(opposite(db, cache)), "b")
    with running(thread_pool_size=2, trace=True) as rt:
        _, job_a = rt.post(flow.flow_id, "a", "in", {})
        _, job_b = rt.post(flow.flow_id, "b", "in", {})
        assert rt.wait_until_all_jobs_finished(timeout=20)
        assert sorted([job_a.status, job_b.status]) == ["completed", "failed"]
        detected = [e for e in rt.tracer.read() if e.kind == "deadlock.detected"]
    assert len(detected) == 1
    cycle = detected[0].detail["cycle"]
    assert {(s["routine"], s["job_id"]) for s in cycle} == {
        ("a", job_a.job_id),
        ("b", job_b.job_id),
    }
    assert (
        f"(routine 'a', job {job_a.job_id[:8]}) holds 'cache' and waits for 'db'"
        in (detected[0].detail["message"])
    )
