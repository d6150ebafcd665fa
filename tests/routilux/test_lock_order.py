"""Lock order (issue 17): edges recorded by traced locks, and ``lock_order`` findings from them.

The inversions here never overlap in time: each routine runs alone, one after the other
(the second is posted once the first job has finished), so no run could deadlock. The
finding must come from the order alone. Where a deadlock is wanted, a Barrier forces it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from routilux import get_current_job, sync
from routilux.diagnostics._lock_order import lock_order_cycles, lock_order_edges
from routilux.diagnostics import FINDING_NOTEBOOKS, Finding, detect_lock_order, diagnose
from routilux.sync import (
    DeadlockError,
    TracedLock,
    TracedRLock,
    TracedSemaphore,
    set_deadlock_action,
)
from routilux.trace import TraceEvent, Tracer
from tests.util import JOIN_TIMEOUT, make_routine, new_flow, running

SITES: dict[str, int] = {}  # label -> line number of a "# site: label" comment in this file


def _sites() -> None:
    with open(__file__, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if "# site: " in line and not line.lstrip().startswith("SITES"):
                SITES[line.rsplit("# site: ", 1)[1].strip()] = number


_sites()


def site(label: str) -> str:
    return f"{__file__}:{SITES[label]}"


def nested(first: Any, second: Any) -> Callable[..., None]:
    """Logic that takes ``first``, then ``second`` inside it."""

    def logic(slot_data, policy_message, worker_state):
        with first:  # noqa: SIM117 - two statements: the site is the inner one
            with second:  # site: nested
                get_current_job().set_data("done", True)

    return logic


def run_one_after_another(rt: Any, flow_id: str, routine_ids: list[str]) -> list[Any]:
    """Post each routine once, waiting for its job before the next: no overlap at all."""
    jobs = []
    for rid in routine_ids:
        _, job = rt.post(flow_id, rid, "in", {})
        assert job.wait(JOIN_TIMEOUT), f"job of {rid} did not finish"
        jobs.append(job)
    return jobs


def of_kind(findings: list[Finding], kind: str) -> list[Finding]:
    return [f for f in findings if f.kind == kind]


@pytest.fixture(autouse=True)
def _default_action():
    yield
    set_deadlock_action("raise")


# ---------------------------------------------------------------------------------------
# end to end, through a Runtime
# ---------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_opposite_orders_are_found_from_a_run_with_no_overlap() -> None:
    accounts, ledger = TracedLock("accounts"), TracedLock("ledger")
    flow = new_flow("lock-order")
    flow.add_routine(make_routine(nested(accounts, ledger)), "debit")
    flow.add_routine(make_routine(nested(ledger, accounts)), "audit")
    with running(thread_pool_size=2, trace=True) as rt:
        jobs = run_one_after_another(rt, flow.flow_id, ["debit", "audit"])
        events = rt.tracer.read()
        findings = diagnose(rt)
    assert [job.status for job in jobs] == ["completed", "completed"]
    # No lock was ever contended: the two routines never ran at the same time.
    assert not [e for e in events if e.kind in ("lock.wait", "deadlock.detected")]

    assert [f.kind for f in findings] == ["lock_order"]
    f = findings[0]
    assert f.severity == "high" and f.notebook == "03_deadlocks.ipynb"
    assert "'accounts' -> 'ledger' (routine 'debit')" in f.title
    assert "'ledger' -> 'accounts' (routine 'audit')" in f.title
    assert f.evidence["locks"] == ["accounts", "ledger"]
    assert f.evidence["routines"] == ["audit", "debit"]
    by_routine = {e["routine"]: e for e in f.evidence["edges"]}
    assert set(by_routine) == {"debit", "audit"}
    for routine_id, job in zip(["debit", "audit"], jobs, strict=True):
        edge = by_routine[routine_id]
        assert edge["job"] == job.job_id
        assert edge["site"] == site("nested")
        assert edge["thread"].startswith("RoutiluxThread")
    assert (by_routine["debit"]["held"], by_routine["debit"]["acquired"]) == ("accounts", "ledger")
    # debit's order came first, so audit's edge is the one to change.
    assert f.evidence["order"] == ["accounts", "ledger"]
    assert "always 'accounts' then 'ledger'" in f.fix
    assert "routine 'audit'" in f.fix and site("nested") in f.fix
    assert set(f.events) == {e.seq for e in events if e.kind == "lock.order"}


@pytest.mark.timeout(60)
def test_a_three_lock_cycle_across_three_routines_is_found() -> None:
    a, b, c = TracedLock("a"), TracedLock("b"), TracedLock("c")
    flow = new_flow("lock-order")
    flow.add_routine(make_routine(nested(a, b)), "ab")
    flow.add_routine(make_routine(nested(b, c)), "bc")
    flow.add_routine(make_routine(nested(c, a)), "ca")
    with running(thread_pool_size=3, trace=True) as rt:
        run_one_after_another(rt, flow.flow_id, ["ab", "bc", "ca"])
        findings = diagnose(rt)
    assert [f.kind for f in findings] == ["lock_order"]
    f = findings[0]
    assert f.evidence["locks"] == ["a", "b", "c"]
    assert [(e["held"], e["acquired"], e["routine"]) for e in f.evidence["edges"]] == [
        ("a", "b", "ab"), ("b", "c", "bc"), ("c", "a", "ca")]  # fmt: skip
    assert "'a' -> 'b' (routine 'ab'), 'b' -> 'c' (routine 'bc') and 'c' -> 'a' " \
        "(routine 'ca')" in f.title
    assert "always 'a' then 'b' then 'c'" in f.fix and "routine 'ca'" in f.fix


@pytest.mark.timeout(60)
def test_one_order_everywhere_gives_no_finding() -> None:
    a, b, c = TracedLock("a"), TracedRLock("b"), TracedSemaphore("c", 2)

    def all_three(slot_data, policy_message, worker_state):
        with a, b, c:
            pass

    flow = new_flow("lock-order")
    flow.add_routine(make_routine(nested(a, b)), "ab")
    flow.add_routine(make_routine(nested(b, c)), "bc")
    flow.add_routine(make_routine(nested(a, c)), "ac")
    flow.add_routine(make_routine(all_three), "abc")
    with running(thread_pool_size=2, trace=True) as rt:
        run_one_after_another(rt, flow.flow_id, ["ab", "bc", "ac", "abc"])
        edges = [(e.detail["held"], e.name) for e in rt.tracer.read() if e.kind == "lock.order"]
        assert diagnose(rt) == []
    assert sorted(edges) == [("a", "b"), ("a", "c"), ("b", "c")]  # each once


@pytest.mark.timeout(60)
def test_sequential_acquisitions_make_no_edge() -> None:
    a, b = TracedLock("a"), TracedLock("b")

    def one_then_other(first: Any, second: Any) -> Callable[..., None]:
        def logic(slot_data, policy_message, worker_state):
            with first:
                pass
            with second:
                pass
            first.acquire()
            first.release()

        return logic

    flow = new_flow("lock-order")
    flow.add_routine(make_routine(one_then_other(a, b)), "ab")
    flow.add_routine(make_routine(one_then_other(b, a)), "ba")
    with running(thread_pool_size=2, trace=True) as rt:
        run_one_after_another(rt, flow.flow_id, ["ab", "ba"])
        assert not [e for e in rt.tracer.read() if e.kind == "lock.order"]
        assert diagnose(rt) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("action", ["raise", "report"])
def test_a_cycle_that_deadlocked_is_reported_once(action: str) -> None:
    """Both threads hold their first lock, then reach for the other's: the deadlock finding
    only. With "report" both threads end up taking both locks (one times out, retries),
    so the order graph has the cycle too; it must not be reported a second time."""
    set_deadlock_action(action)
    cache, db = TracedLock("cache"), TracedLock("db")
    both_hold_first = threading.Barrier(2, timeout=JOIN_TIMEOUT)
    errors: list[BaseException] = []
    patient_done = threading.Event()

    def take(first: Any, second: Any, timeout_s: float) -> Callable[..., None]:
        def logic(slot_data, policy_message, worker_state):
            for attempt in range(2):
                with first:
                    if attempt == 0:
                        both_hold_first.wait()
                    try:
                        if second.acquire(timeout=timeout_s):
                            second.release()
                            if first is cache:
                                patient_done.set()
                            return
                    except DeadlockError as exc:
                        errors.append(exc)
                        raise
                # Timed out and let go of ``first``: retry once the other one is through.
                assert patient_done.wait(JOIN_TIMEOUT)
            raise AssertionError("no second lock after two attempts")

        return logic

    flow = new_flow("lock-order")
    flow.add_routine(make_routine(take(cache, db, JOIN_TIMEOUT)), "patient")
    flow.add_routine(make_routine(take(db, cache, 0.5)), "impatient")
    with running(thread_pool_size=2, trace=True) as rt:
        rt.post(flow.flow_id, "patient", "in", {})
        rt.post(flow.flow_id, "impatient", "in", {})
        assert rt.wait_until_all_jobs_finished(JOIN_TIMEOUT)
        events = rt.tracer.read()
        findings = diagnose(rt)
    assert len([e for e in events if e.kind == "deadlock.detected"]) == 1
    assert [f.kind for f in findings] == ["deadlock"]
    if action == "report":
        assert not errors
        # Both orders were taken: the order graph has the cycle the deadlock finding names.
        edges = {(e.detail["held"], e.name) for e in events if e.kind == "lock.order"}
        assert edges == {("cache", "db"), ("db", "cache")}
    else:
        assert len(errors) == 1


# ---------------------------------------------------------------------------------------
# what makes an edge, and how often it is recorded
# ---------------------------------------------------------------------------------------
def _orders(tracer: Tracer) -> list[tuple[str, str]]:
    return [(e.detail["held"], e.name) for e in tracer.read() if e.kind == "lock.order"]


@pytest.mark.timeout(10)
def test_an_edge_is_recorded_once_per_tracer_and_again_after_clear() -> None:
    tracer = Tracer()
    a, b = TracedLock("a", tracer=tracer), TracedLock("b", tracer=tracer)
    for _ in range(3):
        with a, b:
            pass
    assert _orders(tracer) == [("a", "b")]
    e = next(e for e in tracer.read() if e.kind == "lock.order")
    assert e.thread_name == "MainThread" and e.routine is None
    assert e.detail == {"held": "a", "held_id": a._serial, "acquired": "b",
                        "acquired_id": b._serial, "site": e.detail["site"]}  # fmt: skip
    tracer.clear()
    with a, b:
        pass
    assert _orders(tracer) == [("a", "b")]  # the first record was cleared away

    other = Tracer()
    c, d = TracedLock("c", tracer=other), TracedLock("d", tracer=other)
    with a, c, d:  # each lock records into its own tracer
        pass
    assert sorted(_orders(other)) == [("a", "c"), ("a", "d"), ("c", "d")]


@pytest.mark.timeout(10)
def test_an_edge_dropped_by_a_full_ring_is_recorded_again() -> None:
    tracer = Tracer(capacity=4)
    a, b = TracedLock("a", tracer=tracer), TracedLock("b", tracer=tracer)
    with a, b:
        pass
    for _ in range(4):
        tracer.record("task.queued")
    assert _orders(tracer) == []  # dropped
    with a, b:
        pass
    assert _orders(tracer) == [("a", "b")]


@pytest.mark.timeout(10)
def test_reentrant_and_non_blocking_acquires_make_no_edge() -> None:
    tracer = Tracer()
    r, a = TracedRLock("r", tracer=tracer), TracedLock("a", tracer=tracer)
    s = TracedSemaphore("s", 2, tracer=tracer)
    with r, a, r:  # the second r is reentrant: this thread holds it, so it cannot wait
        pass
    assert _orders(tracer) == [("r", "a")]
    with a:
        assert r.acquire(blocking=False)  # a try-lock never waits, so never deadlocks
        r.release()
        with s, s:  # a second permit of a held semaphore is no edge either
            pass
    assert _orders(tracer) == [("r", "a"), ("a", "s")]


@pytest.mark.timeout(10)
def test_non_lifo_release_keeps_the_rest_of_the_chain() -> None:
    tracer = Tracer()
    a, b, c = (TracedLock(n, tracer=tracer) for n in "abc")
    a.acquire()
    b.acquire()
    a.release()  # not the newest: b stays held, and is what c nests in
    with c:
        pass
    b.release()
    with c:  # nothing held any more
        pass
    assert _orders(tracer) == [("a", "b"), ("b", "c")]
    assert sync._chain._cells[threading.get_ident()][0] is None  # holds nothing


@pytest.mark.timeout(10)
def test_a_permit_given_back_by_another_thread_leaves_its_holders_chain() -> None:
    tracer = Tracer()
    s, a = TracedSemaphore("s", 1, tracer=tracer), TracedLock("a", tracer=tracer)
    s.acquire()
    t = threading.Thread(target=s.release)
    t.start()
    t.join(JOIN_TIMEOUT)
    assert not t.is_alive()
    with a:  # s is no longer held by this thread
        pass
    assert _orders(tracer) == []
    assert sync._chain._cells[threading.get_ident()][0] is None  # holds nothing


@pytest.mark.timeout(10)
def test_same_named_locks_are_distinct_locks() -> None:
    """Per-account locks share a name; taking one inside another is not a cycle."""
    tracer = Tracer()
    x, y = TracedLock("account", tracer=tracer), TracedLock("account", tracer=tracer)
    with x, y:
        pass
    with x:
        pass
    assert _orders(tracer) == [("account", "account")]
    assert diagnose(tracer) == []


@pytest.mark.timeout(10)
def test_findings_survive_save_and_load(tmp_path) -> None:
    tracer = Tracer()
    a, b = TracedLock("a", tracer=tracer), TracedLock("b", tracer=tracer)
    with a, b:
        pass
    with b, a:
        pass
    path = tmp_path / "trace.jsonl"
    tracer.save(path)
    loaded = Tracer.load(path)
    assert [f.kind for f in diagnose(loaded)] == ["lock_order"]
    assert [f.to_dict() for f in diagnose(loaded)] == [f.to_dict() for f in diagnose(tracer)]


# ---------------------------------------------------------------------------------------
# the cycle finder as pure functions
# ---------------------------------------------------------------------------------------
def _trace(*edges: tuple[str, str], routine: str | None = None) -> list[TraceEvent]:
    ids = {}
    out = []
    for seq, (held, acquired) in enumerate(edges, 1):
        for n in (held, acquired):
            ids.setdefault(n, len(ids) + 1)
        out.append(TraceEvent(seq, seq * 1000, "lock.order", 7, "w-7", None, f"job-{seq}",
                              routine, acquired, None,
                              {"held": held, "held_id": ids[held], "acquired": acquired,
                               "acquired_id": ids[acquired], "site": f"app.py:{seq}"}))
    return out


def _cycles(*edges: tuple[str, str]) -> list[list[str]]:
    return [[e.held_name for e in c] for c in lock_order_cycles(lock_order_edges(_trace(*edges)))]


def test_every_elementary_cycle_once() -> None:
    assert _cycles(("a", "b"), ("b", "c")) == []
    assert _cycles(("a", "b"), ("b", "a"), ("a", "b")) == [["a", "b"]]
    # two cycles sharing lock a, and a three-cycle through all
    assert _cycles(("a", "b"), ("b", "a"), ("a", "c"), ("c", "a"), ("b", "c")) == [
        ["a", "b"], ["a", "b", "c"], ["a", "c"]]  # fmt: skip


def test_two_cycles_sharing_a_lock_are_two_findings() -> None:
    findings = detect_lock_order(_trace(("a", "b"), ("b", "a"), ("a", "c"), ("c", "a")))
    assert [f.evidence["locks"] for f in findings] == [["a", "b"], ["a", "c"]]
    assert len({f.key for f in findings}) == 2


def test_the_order_to_adopt_changes_the_newest_edge() -> None:
    (f,) = detect_lock_order(_trace(("b", "a"), ("a", "b")))
    assert f.evidence["order"] == ["b", "a"]
    assert f.evidence["change"] == {"held": "a", "acquired": "b", "site": "app.py:2"}
    assert "always 'b' then 'a'" in f.fix
    assert "takes 'b' while holding 'a' at app.py:2" in f.fix


def test_a_trace_without_routines_names_the_thread() -> None:
    (f,) = detect_lock_order(_trace(("a", "b"), ("b", "a")))
    assert "'a' -> 'b' (thread w-7)" in f.title
    assert f.evidence["edges"][0] == {"held": "a", "acquired": "b", "routine": None,
                                      "thread": "w-7", "job": "job-1", "site": "app.py:1",
                                      "times": 1}  # fmt: skip


def test_lock_order_is_a_finding_kind_of_notebook_03() -> None:
    assert FINDING_NOTEBOOKS["lock_order"] == "03_deadlocks.ipynb"


@pytest.mark.timeout(60)
def test_contended_nesting_in_one_order_keeps_every_chain_true(monkeypatch) -> None:
    """Eight threads take varying subsets of a, b, c, always in that order, contending all
    the time: every edge points forward, nothing is left in any chain, no finding."""
    monkeypatch.setattr(sync._primitive, "WAIT_SLICE", 0.001)
    tracer = Tracer()
    locks = [TracedLock("a", tracer=tracer), TracedRLock("b", tracer=tracer),
             TracedSemaphore("c", 2, tracer=tracer)]  # fmt: skip
    start = threading.Barrier(8, timeout=JOIN_TIMEOUT)
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        try:
            start.wait()
            for i in range(500):
                chosen = [k for k in range(3) if (i + seed) >> k & 1] or [0, 1, 2]
                for k in chosen:
                    locks[k].acquire()
                time.sleep(0)  # let the others run into the held locks
                for k in reversed(chosen) if i % 2 else chosen:  # LIFO and not
                    locks[k].release()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    assert not [t for t in threads if t.is_alive()] and not errors
    events = tracer.read()
    assert {(e.detail["held"], e.name) for e in events if e.kind == "lock.order"} <= {
        ("a", "b"), ("a", "c"), ("b", "c")}  # fmt: skip
    assert not [e for e in events if e.kind == "deadlock.detected"]
    assert [e for e in events if e.kind == "lock.wait"], "the test should contend"
    assert diagnose(tracer) == []
    for t in threads:
        assert sync._chain._cells.get(t.ident, [None])[0] is None
    assert not any(lock.locked() for lock in locks[:2]) and not locks[2].locked()
