"""routilux.sync: the threading contract, tracing of contended waits, and deadlocks end to end.

Concurrency here is coordinated with Barriers and Events, never with sleeps; every thread a
test starts is joined (``_run``), and a thread's exception is re-raised in the test.
"""

from __future__ import annotations

import re
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from routilux import sync
from routilux._model import _context
from routilux._model._context import Activation
from routilux.sync import (
    DeadlockError,
    TracedLock,
    TracedRLock,
    TracedSemaphore,
    get_deadlock_action,
    set_deadlock_action,
)

JOIN_TIMEOUT = 20  # seconds; far beyond what any thread here needs
RELEASE_LINE = 345  # the line of "lock.release()  # RELEASE_LINE" below


class Recorder:
    """A stand-in tracer: keeps every event as a dict and lets a test wait for a kind."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()

    def record(self, kind, job_id=None, routine=None, name=None, value=None, detail=None,
               worker_id=None):  # fmt: skip
        with self._cond:
            self.events.append(
                {"kind": kind, "job_id": job_id, "routine": routine, "name": name,
                 "value": value, "detail": detail, "worker_id": worker_id,
                 "thread": threading.current_thread().name}
            )  # fmt: skip
            self._cond.notify_all()

    def of(self, kind: str) -> list[dict[str, Any]]:
        with self._cond:
            return [e for e in self.events if e["kind"] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = JOIN_TIMEOUT) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.of(kind)) >= count, timeout)
        assert ok, f"no {kind!r} event within {timeout} s; got {[e['kind'] for e in self.events]}"


class FakeRuntime:
    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer


class Worker(threading.Thread):
    """A thread that keeps its target's result or exception for the test to look at."""

    def __init__(self, target, *args, name: str | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self._call = (target, args)
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        target, args = self._call
        try:
            self.result = target(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc


def _run(*workers: Worker, expect_errors: tuple[type[BaseException], ...] = ()) -> None:
    for w in workers:
        w.start()
    for w in workers:
        w.join(JOIN_TIMEOUT)
    stuck = [w.name for w in workers if w.is_alive()]
    assert not stuck, f"threads still running: {stuck}"
    for w in workers:
        if w.error is not None and not isinstance(w.error, expect_errors):
            raise w.error


def _in_thread(fn, *args) -> Any:
    worker = Worker(fn, *args)
    _run(worker)
    return worker.result


def _enter(routine: str, job_id: str | None = None, tracer: Any = None, worker_id=None) -> None:
    job = SimpleNamespace(job_id=job_id) if job_id is not None else None
    ws = SimpleNamespace(worker_id=worker_id) if worker_id is not None else None
    runtime = FakeRuntime(tracer) if tracer is not None else None
    _context.enter(Activation(job, ws, routine, None, runtime))


@pytest.fixture(autouse=True)
def _isolate(monkeypatch):
    """No tracer from other tests' runtimes; the deadlock action back to its default."""
    monkeypatch.setattr(_context, "_default_tracer_runtime", None)
    yield
    set_deadlock_action("raise")
    # Some tests end holding a lock on purpose, in this thread or in one that has ended
    # ("that thread keeps it"); forget those holds, so that the next test's first acquire
    # (maybe in a thread whose ident the system reused) is not taken "while holding" them.
    alive = {t.ident for t in threading.enumerate()} - {threading.get_ident()}
    for ident, cell in list(sync._chain._cells.items()):
        if ident not in alive:
            cell[0] = None


# --------------------------------------------------------------------------------------
# The threading contract, run against ours and threading's own as the reference.

PRIMITIVES = [
    pytest.param((threading.Lock, "lock"), id="threading.Lock"),
    pytest.param((lambda: TracedLock("l"), "lock"), id="TracedLock"),
    pytest.param((threading.RLock, "rlock"), id="threading.RLock"),
    pytest.param((lambda: TracedRLock("r"), "rlock"), id="TracedRLock"),
    pytest.param((lambda: threading.Semaphore(1), "semaphore"), id="threading.Semaphore"),
    pytest.param((lambda: TracedSemaphore("s"), "semaphore"), id="TracedSemaphore"),
]


@pytest.fixture(params=PRIMITIVES)
def prim(request):
    factory, kind = request.param
    return SimpleNamespace(new=factory, kind=kind)


@pytest.mark.timeout(10)
def test_acquire_returns_true_and_release_frees(prim):
    lock = prim.new()
    assert lock.acquire() is True
    assert _in_thread(lambda: lock.acquire(False)) is False
    lock.release()
    assert lock.acquire(blocking=False) is True
    lock.release()


@pytest.mark.timeout(10)
def test_context_manager_holds_for_the_block(prim):
    lock = prim.new()
    with lock as entered:
        assert entered is True
        assert _in_thread(lambda: lock.acquire(False)) is False
    assert _in_thread(lambda: lock.acquire(False)) is True  # that thread keeps it...
    if prim.kind == "lock":
        pass  # ...a plain lock then stays locked for good in this test
    elif prim.kind == "semaphore":
        lock.release()


@pytest.mark.timeout(10)
def test_timeout_while_held_elsewhere_returns_false(prim):
    lock = prim.new()
    with lock:
        assert _in_thread(lambda: lock.acquire(True, 0.05)) is False
        assert _in_thread(lambda: lock.acquire(timeout=0)) is False


@pytest.mark.timeout(10)
def test_waiter_gets_the_lock_once_released(prim):
    lock = prim.new()
    about_to_wait = threading.Event()

    def waiter():
        about_to_wait.set()
        ok = lock.acquire(timeout=JOIN_TIMEOUT)
        if ok:
            lock.release()
        return ok

    lock.acquire()
    w = Worker(waiter)
    w.start()
    assert about_to_wait.wait(JOIN_TIMEOUT)
    lock.release()
    w.join(JOIN_TIMEOUT)
    assert not w.is_alive() and w.error is None
    assert w.result is True


@pytest.mark.timeout(30)
def test_mutual_exclusion(prim):
    lock = prim.new()
    counter = [0]
    start = threading.Barrier(4)

    def bump():
        start.wait()
        for _ in range(500):
            with lock:
                value = counter[0]
                time.sleep(0)  # hand the GIL over inside the critical section
                counter[0] = value + 1

    _run(*(Worker(bump) for _ in range(4)))
    assert counter[0] == 2000


@pytest.mark.timeout(10)
def test_non_blocking_call_with_timeout_is_rejected(prim):
    lock = prim.new()
    with pytest.raises(ValueError, match="can't specify"):
        lock.acquire(False, 1)
    assert lock.acquire(False) is True  # the bad call took nothing


@pytest.mark.timeout(10)
def test_release_of_an_unheld_lock_raises(prim):
    if prim.kind == "semaphore":
        pytest.skip("a semaphore may be released beyond its initial value")
    lock = prim.new()
    with pytest.raises(RuntimeError):
        lock.release()


@pytest.mark.timeout(10)
def test_plain_lock_is_not_reentrant(prim):
    if prim.kind == "rlock":
        pytest.skip("reentrant by design")
    lock = prim.new()
    with lock:
        assert lock.acquire(False) is False


@pytest.mark.timeout(10)
def test_rlock_is_reentrant_and_owned(prim):
    if prim.kind != "rlock":
        pytest.skip("only reentrant locks")
    lock = prim.new()
    assert lock.acquire() and lock.acquire()
    lock.release()
    assert _in_thread(lambda: lock.acquire(False)) is False  # still held once
    with pytest.raises(RuntimeError):
        _run_raising(lock.release)
    lock.release()
    assert _in_thread(lambda: lock.acquire(False)) is True
    with pytest.raises(RuntimeError):
        lock.release()  # that thread holds it now


def _run_raising(fn):
    w = Worker(fn)
    _run(w, expect_errors=(RuntimeError,))
    if w.error is not None:
        raise w.error


@pytest.mark.timeout(10)
def test_condition_over_the_lock(prim):
    if prim.kind == "semaphore":
        pytest.skip("Condition needs a lock")
    cond = threading.Condition(prim.new())
    ready: list[int] = []

    def consume():
        with cond:
            assert cond.wait_for(lambda: ready, JOIN_TIMEOUT)
            return ready[0]

    consumer = Worker(consume)
    consumer.start()
    with cond:
        ready.append(42)
        cond.notify_all()
    consumer.join(JOIN_TIMEOUT)
    assert consumer.error is None and consumer.result == 42


@pytest.mark.timeout(10)
def test_locked_reports_state(prim):
    lock = prim.new()
    if not hasattr(lock, "locked"):
        pytest.skip(f"{type(lock).__name__} has no locked() in this Python")
    assert lock.locked() is False
    with lock:
        assert lock.locked() is True
    assert lock.locked() is False


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "new_semaphore",
    [threading.Semaphore, lambda n: TracedSemaphore("pool", n)],
    ids=["threading.Semaphore", "TracedSemaphore"],
)
def test_semaphore_counts_permits(new_semaphore):
    sem = new_semaphore(2)
    assert sem.acquire(False) and sem.acquire(False)
    assert sem.acquire(False) is False
    sem.release()
    assert sem.acquire(False) is True
    sem.release(2)
    assert sem.acquire(False) and sem.acquire(False)
    _in_thread(sem.release)  # any thread may release a permit
    assert sem.acquire(False) is True
    with pytest.raises(ValueError, match="n must be one or more"):
        sem.release(0)


# --------------------------------------------------------------------------------------
# Tracing


@pytest.mark.timeout(10)
@pytest.mark.parametrize("new", [TracedLock, TracedRLock, TracedSemaphore])
def test_uncontended_use_records_nothing(new):
    rec = Recorder()
    lock = new("db", tracer=rec)
    for _ in range(3):
        with lock:
            pass
        assert lock.acquire(timeout=1)
        lock.release()
    assert rec.events == []


@pytest.mark.timeout(10)
@pytest.mark.parametrize("new", [TracedLock, TracedRLock, TracedSemaphore])
def test_contended_wait_records_wait_acquired_released(new):
    rec = Recorder()
    lock = new("db", tracer=rec)

    def waiter():
        _enter("b", job_id="9c2a-job", worker_id="w-1")
        with lock:
            pass

    lock.acquire()
    w = Worker(waiter, name="Waiter")
    w.start()
    rec.wait_for("lock.wait")
    lock.release()  # RELEASE_LINE
    w.join(JOIN_TIMEOUT)
    assert not w.is_alive() and w.error is None

    # The holder's release comes first (it is recorded before the lock is let go): it
    # carries the waiting it caused, charged to where it took the lock.
    kinds = [e["kind"] for e in rec.events]
    assert kinds == ["lock.wait", "lock.released", "lock.acquired", "lock.released"]
    wait, caused, acquired, released = rec.events
    assert wait["detail"] == {"holder": threading.get_ident(), "holder_name": "MainThread"}
    for e in (wait, acquired, released):
        assert (e["name"], e["routine"], e["job_id"], e["worker_id"], e["thread"]) == (
            "db", "b", "9c2a-job", "w-1", "Waiter"
        )  # fmt: skip
    assert (caused["name"], caused["routine"], caused["thread"]) == ("db", None, "MainThread")
    assert caused["value"] is None  # an uncontended acquire has no start time to measure from
    assert caused["detail"]["waiters"] == 1
    assert 0 < caused["detail"]["caused_s"] <= acquired["value"]
    assert caused["detail"]["site"] == f"{__file__}:{RELEASE_LINE}"
    assert acquired["value"] > 0
    assert released["value"] >= 0
    assert released["detail"] is None  # nobody waited for the waiter


@pytest.mark.timeout(10)
def test_rlock_taken_after_a_wait_is_still_reentrant():
    rec = Recorder()
    lock = TracedRLock("config", tracer=rec)

    def waiter():
        with lock:
            with lock, lock:
                assert lock._is_owned()
            assert _in_thread(lambda: lock.acquire(False)) is False
        return lock.locked()

    lock.acquire()
    w = Worker(waiter)
    w.start()
    rec.wait_for("lock.wait")
    lock.release()
    _run_joined(w)
    assert w.result is False
    assert [e["kind"] for e in rec.events] == [
        "lock.wait", "lock.released", "lock.acquired", "lock.released"]  # fmt: skip


@pytest.mark.timeout(10)
def test_timeout_returns_false_and_records_lock_timeout():
    rec = Recorder()
    lock = TracedLock("db", tracer=rec)
    with lock:
        assert _in_thread(lambda: lock.acquire(timeout=0.1)) is False
    assert [e["kind"] for e in rec.events] == ["lock.wait", "lock.timeout", "lock.released"]
    assert rec.events[1]["value"] >= 0.1
    # The wait that gave up is charged to the holder, at the line of its ``with``.
    caused = rec.events[2]
    assert caused["thread"] == "MainThread" and caused["detail"]["waiters"] == 1
    assert caused["detail"]["caused_s"] >= 0.1
    with_line = test_timeout_returns_false_and_records_lock_timeout.__code__.co_firstlineno + 4
    assert caused["detail"]["site"] == f"{__file__}:{with_line}"
    assert lock.acquire(False)  # nothing was left behind


@pytest.mark.timeout(10)
def test_tracer_comes_from_the_context_unless_given(monkeypatch):
    from_runtime, default, explicit = Recorder(), Recorder(), Recorder()
    runtime = FakeRuntime(default)
    _context.set_default_tracer_runtime(runtime)
    plain, own = TracedLock("plain"), TracedLock("own", tracer=explicit)

    def in_activation():
        _enter("r", tracer=from_runtime)
        assert plain.acquire(timeout=0.01) is False
        assert own.acquire(timeout=0.01) is False

    with plain, own:
        _in_thread(lambda: plain.acquire(timeout=0.01))  # no activation: the default runtime
        _in_thread(in_activation)
    assert [e["name"] for e in default.of("lock.wait")] == ["plain"]
    assert [e["name"] for e in from_runtime.of("lock.wait")] == ["plain"]
    assert [e["name"] for e in explicit.of("lock.wait")] == ["own"]


@pytest.mark.timeout(10)
def test_a_failing_tracer_does_not_break_the_lock(caplog):
    class Broken:
        def record(self, *args, **kwargs):
            raise OSError("disk full")

    lock = TracedLock("db", tracer=Broken())
    with lock:
        assert _in_thread(lambda: lock.acquire(timeout=0.01)) is False
    assert "tracer failed to record lock.wait for lock 'db'" in caplog.text
    assert lock.acquire(False)


@pytest.mark.timeout(10)
def test_with_the_real_tracer():
    from routilux.trace import Tracer

    tracer = Tracer()
    lock = TracedLock("db", tracer=tracer)
    lock.acquire()
    w = Worker(lambda: lock.acquire(timeout=JOIN_TIMEOUT) and lock.release(), name="Waiter")
    w.start()
    while not any(e.kind == "lock.wait" for e in tracer.read()):
        time.sleep(0.001)  # polling the public reader; no assumption about timing
    lock.release()
    _run_joined(w)
    events = tracer.read()
    assert [e.kind for e in events] == [
        "lock.wait", "lock.released", "lock.acquired", "lock.released"]  # fmt: skip
    assert {e.name for e in events} == {"db"}
    assert [e.thread_name for e in events] == ["Waiter", "MainThread", "Waiter", "Waiter"]
    assert events[0].detail["holder_name"] == "MainThread"
    assert events[1].detail["waiters"] == 1


def _run_joined(w: Worker) -> None:
    w.join(JOIN_TIMEOUT)
    assert not w.is_alive()
    if w.error is not None:
        raise w.error


# --------------------------------------------------------------------------------------
# Misuse and bad values


@pytest.mark.timeout(10)
@pytest.mark.parametrize("new", [TracedLock, TracedRLock])
def test_release_by_another_thread_names_both(new):
    lock = new("db")
    held, done = threading.Event(), threading.Event()

    def hold():
        with lock:
            held.set()
            done.wait(JOIN_TIMEOUT)

    holder = Worker(hold, name="RoutiluxThread-3")
    holder.start()
    try:
        assert held.wait(JOIN_TIMEOUT)
        with pytest.raises(
            RuntimeError,
            match=rf"^{new.__name__} 'db' is held by RoutiluxThread-3; MainThread cannot release it$",
        ):
            lock.release()
    finally:
        done.set()
        _run_joined(holder)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("new", "text"),
    [
        (TracedLock, "release unlocked lock: TracedLock 'db' is not held"),
        (TracedRLock, "cannot release un-acquired lock: TracedRLock 'db' is not held"),
    ],
)
def test_release_of_unheld_lock_message(new, text):
    with pytest.raises(RuntimeError, match=f"^{re.escape(text)}$"):
        new("db").release()


BAD_ACTIONS = ["RAISE", "ignore", "", None, 1]


@pytest.mark.parametrize("bad", BAD_ACTIONS)
def test_set_deadlock_action_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=r"deadlock action must be one of 'raise', 'report'; got "):
        set_deadlock_action(bad)
    assert get_deadlock_action() == "raise"


def test_deadlock_action_round_trip():
    assert get_deadlock_action() == "raise"
    set_deadlock_action("report")
    assert get_deadlock_action() == "report"


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [
        (lambda: TracedLock(3), TypeError, "TracedLock name must be a str, not int"),
        (lambda: TracedSemaphore("s", -1), ValueError, "semaphore initial value must be >= 0"),
        (lambda: TracedLock("l").acquire(timeout=-2), ValueError, "non-negative number or -1"),
        (lambda: TracedRLock("r").acquire(timeout=1e300), OverflowError, "too large"),
    ],
)
def test_bad_arguments(call, error, text):
    with pytest.raises(error, match=re.escape(text)):
        call()


def test_repr_shows_state():
    lock = TracedLock("db")
    assert repr(lock) == "<TracedLock 'db' unlocked>"
    with lock:
        assert repr(lock) == "<TracedLock 'db' locked by MainThread>"
    assert repr(TracedSemaphore("pool", 3)) == "<TracedSemaphore 'pool' available=3 holders=0>"


# --------------------------------------------------------------------------------------
# Deadlocks end to end


def _opposite_order(first, second, barrier, tracer=None, routine=None, job_id=None):
    """Hold ``first``, meet the others at ``barrier``, then take ``second``."""
    if routine is not None:
        _enter(routine, job_id=job_id)
    with first:
        barrier.wait()
        met = time.monotonic()
        try:
            with second:
                return "finished"
        except DeadlockError as exc:
            exc.after_s = time.monotonic() - met  # type: ignore[attr-defined]
            raise


@pytest.mark.timeout(10)
def test_two_threads_in_opposite_order_one_raises_the_other_finishes():
    rec = Recorder()
    cache, db = TracedLock("cache", tracer=rec), TracedLock("db", tracer=rec)
    barrier = threading.Barrier(2)
    w2 = Worker(_opposite_order, cache, db, barrier, rec, "a", "1f3e9a7b-0001",
                name="RoutiluxThread-2")  # fmt: skip
    w5 = Worker(_opposite_order, db, cache, barrier, rec, "b", "9c2a41d0-0002",
                name="RoutiluxThread-5")  # fmt: skip
    _run(w2, w5, expect_errors=(DeadlockError,))

    errors = [w.error for w in (w2, w5) if w.error is not None]
    assert len(errors) == 1
    assert sorted(w.result for w in (w2, w5) if w.error is None) == ["finished"]
    err = errors[0]
    assert err.after_s < 1.0
    assert sorted(err.threads) == ["RoutiluxThread-2", "RoutiluxThread-5"]
    assert sorted(err.locks) == ["cache", "db"]
    clause_2 = "RoutiluxThread-2 (routine 'a', job 1f3e9a7b) holds 'cache' and waits for 'db'"
    clause_5 = "RoutiluxThread-5 (routine 'b', job 9c2a41d0) holds 'db' and waits for 'cache'"
    first, second = (clause_2, clause_5) if w2.error is err else (clause_5, clause_2)
    with pytest.raises(DeadlockError, match=f"^{re.escape(f'{first}; {second}')}$"):
        raise err
    step = next(s for s in err.cycle if s["thread_name"] == "RoutiluxThread-2")
    assert step == {
        "thread": w2.ident, "thread_name": "RoutiluxThread-2", "routine": "a",
        "job_id": "1f3e9a7b-0001", "holds": "cache", "waits_for": "db",
    }  # fmt: skip

    detected = rec.of("deadlock.detected")
    assert len(detected) == 1
    assert detected[0]["name"] == ", ".join(err.locks)
    assert detected[0]["detail"] == {"cycle": err.cycle, "message": str(err)}


@pytest.mark.timeout(10)
def test_three_thread_cycle():
    rec = Recorder()
    a, b, c = (TracedLock(n, tracer=rec) for n in "abc")
    barrier = threading.Barrier(3)
    workers = [
        Worker(_opposite_order, a, b, barrier, name="T-ab"),
        Worker(_opposite_order, b, c, barrier, name="T-bc"),
        Worker(_opposite_order, c, a, barrier, name="T-ca"),
    ]
    _run(*workers, expect_errors=(DeadlockError,))
    errors = [w.error for w in workers if w.error is not None]
    assert len(errors) == 1
    assert [w.result for w in workers].count("finished") == 2
    assert sorted(errors[0].threads) == ["T-ab", "T-bc", "T-ca"]
    assert sorted(errors[0].locks) == ["a", "b", "c"]
    assert len(rec.of("deadlock.detected")) == 1


@pytest.mark.timeout(10)
def test_cycle_through_rlock_and_semaphore():
    r, s = TracedRLock("config"), TracedSemaphore("pool", 1)
    barrier = threading.Barrier(2)

    def reentrant_first():
        with r, r:  # held twice: still one owner
            barrier.wait()
            with s:
                return "finished"

    workers = [Worker(reentrant_first), Worker(_opposite_order, s, r, barrier)]
    _run(*workers, expect_errors=(DeadlockError,))
    errors = [w.error for w in workers if w.error is not None]
    assert len(errors) == 1 and sorted(errors[0].locks) == ["config", "pool"]


@pytest.mark.timeout(10)
def test_self_deadlock_on_a_plain_lock():
    lock = TracedLock("db")
    with (
        lock,
        pytest.raises(
            DeadlockError,
            match=r"^MainThread holds 'db' and waits for 'db' \(a TracedLock is not reentrant",
        ),
    ):
        lock.acquire()
    assert lock.acquire(False)


@pytest.mark.timeout(10)
def test_report_mode_records_once_and_never_raises():
    set_deadlock_action("report")
    rec = Recorder()
    cache, db = TracedLock("cache", tracer=rec), TracedLock("db", tracer=rec)
    barrier = threading.Barrier(2)

    def patient():  # holds cache, waits for db until the impatient one gives up
        with cache:
            barrier.wait()
            got = db.acquire(timeout=JOIN_TIMEOUT)
            if got:
                db.release()
            return got

    def impatient():  # holds db, waits for cache for 1 s, then gives up and lets go
        with db:
            barrier.wait()
            return cache.acquire(timeout=1.0)

    p, i = Worker(patient, name="Patient"), Worker(impatient, name="Impatient")
    _run(p, i)
    assert (p.result, i.result) == (True, False)
    detected = rec.of("deadlock.detected")
    assert len(detected) == 1
    assert {s["thread_name"] for s in detected[0]["detail"]["cycle"]} == {"Patient", "Impatient"}
    assert [e["thread"] for e in rec.of("lock.timeout")] == ["Impatient"]


@pytest.mark.timeout(60)
def test_no_false_positives_with_a_consistent_lock_order(monkeypatch):
    monkeypatch.setattr(sync._primitive, "WAIT_SLICE", 0.001)  # look for cycles as often as possible
    rec = Recorder()
    locks = [TracedLock("a", tracer=rec), TracedRLock("b", tracer=rec),
             TracedSemaphore("c", 2, tracer=rec)]  # fmt: skip
    counts = [0, 0, 0]
    start = threading.Barrier(8)

    def hammer(seed: int) -> None:
        start.wait()
        for i in range(2000):
            # a varying subset, always in the order a, b, c
            chosen = [k for k in range(3) if (i + seed) >> k & 1] or [0, 1, 2]
            for k in chosen:
                locks[k].acquire()
            for k in chosen:
                if k < 2:
                    value = counts[k]
                    time.sleep(0)  # let the others run into the held locks
                    counts[k] = value + 1
            for k in reversed(chosen):
                locks[k].release()

    _run(*(Worker(hammer, seed) for seed in range(8)))
    assert rec.of("deadlock.detected") == []
    expected = [
        sum(1 for s in range(8) for i in range(2000) if k in
            ([j for j in range(3) if (i + s) >> j & 1] or [0, 1, 2]))
        for k in range(2)
    ]  # fmt: skip
    assert counts[:2] == expected
    assert rec.of("lock.wait"), "the test should have produced contention"
    assert len(rec.of("lock.acquired")) == len(rec.of("lock.wait"))
    assert sync._primitive._graph.waiting() == {}
