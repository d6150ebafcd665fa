"""Issue 13: a job's status says what happened to it, under hostile input and faults.

Table-driven where the cases share a shape: NaN and other non-finite numbers wherever a
duration or factor is taken; broken exception objects; policy failures during post's
synchronous delivery; shutdown budgets with stuck logic; small argument checks.
(Interrupts: test_interrupts.py; the loader: test_trace.py; the DSL: test_dsl.py.)
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest
from util import JOIN_TIMEOUT, Recorder, finish_all, make_routine, new_flow, running

from routilux import ErrorHandler, Flow, Runtime, custom_policy, time_interval_policy
from routilux._validate import check_number
from routilux.sync import TracedLock

NAN = float("nan")
INF = float("inf")


# -- one finite-number check ----------------------------------------------------------------
NUMBER_CASES = [
    # (id, make, error, match)
    ("retry_delay nan", lambda: ErrorHandler("retry", retry_delay=NAN), ValueError,
     r"retry_delay must be a finite number >= 0.0 \(seconds\), got nan"),
    ("retry_delay inf", lambda: ErrorHandler("retry", retry_delay=INF), ValueError,
     r"retry_delay must be a finite number"),
    ("retry_backoff nan", lambda: ErrorHandler("retry", retry_backoff=NAN), ValueError,
     r"retry_backoff must be a finite number >= 1.0, got nan"),
    ("retry_backoff inf", lambda: ErrorHandler("retry", retry_backoff=INF), ValueError,
     r"retry_backoff must be a finite number"),
    ("retry_delay str", lambda: ErrorHandler("retry", retry_delay="1"), ValueError,
     r"retry_delay must be a number"),
    ("execution_timeout nan", lambda: Flow(execution_timeout=NAN), ValueError,
     r"execution_timeout must be a finite number > 0.0 \(seconds\), got nan"),
    ("execution_timeout inf", lambda: Flow(execution_timeout=INF), ValueError,
     r"execution_timeout must be a finite number"),
    ("execution_timeout 0", lambda: Flow(execution_timeout=0), ValueError,
     r"execution_timeout must be a number > 0.0 \(seconds\), got 0"),
    ("execution_timeout str", lambda: Flow(execution_timeout="5"), TypeError,
     r"execution_timeout must be a number \(seconds\), got '5'"),
    ("time_interval nan", lambda: time_interval_policy(NAN), ValueError,
     r"min_interval_seconds must be a finite number >= 0.0 \(seconds\), got nan"),
    ("time_interval inf", lambda: time_interval_policy(INF), ValueError,
     r"min_interval_seconds must be a finite number"),
    ("acquire nan", lambda: TracedLock("nan-lock").acquire(timeout=NAN), ValueError,
     r"timeout must be a finite number"),
    ("acquire str", lambda: TracedLock("str-lock").acquire(timeout="1"), TypeError,
     r"timeout must be a number"),
]


@pytest.mark.parametrize(("make", "error", "match"), [c[1:] for c in NUMBER_CASES],
                         ids=[c[0] for c in NUMBER_CASES])
def test_non_finite_numbers_are_refused(make: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_flow_timeout_setter_refuses_nan() -> None:
    flow = new_flow("nan")
    with pytest.raises(ValueError, match="execution_timeout must be a finite number"):
        flow.execution_timeout = NAN
    assert flow.execution_timeout == 300.0


def test_threading_lock_agrees_on_nan() -> None:
    """TracedLock follows threading.Lock: NaN is a ValueError there too."""
    with pytest.raises(ValueError):
        threading.Lock().acquire(timeout=NAN)


@pytest.mark.parametrize(
    ("kwargs", "value", "expected"),
    [({}, 0, 0.0), ({"minimum": 0.0}, 2, 2.0), ({"allow_none": True}, None, None),
     ({"allow_inf": True}, INF, INF), ({"above": 0.0}, 1e-9, 1e-9)],
)
def test_check_number_accepts(kwargs: dict, value: Any, expected: Any) -> None:
    assert check_number("x", value, **kwargs) == expected


def test_wait_refuses_a_non_number_timeout_by_name() -> None:
    with running(thread_pool_size=1) as rt:
        with pytest.raises(TypeError, match=r"timeout must be a number or None \(seconds\), "
                                            r"got 'soon'"):
            rt.wait_until_all_jobs_finished("soon")
        with pytest.raises(ValueError, match=r"timeout must be a finite number \(seconds\), got nan"):
            rt.wait_until_all_workers_idle(NAN)
        assert rt.wait_until_all_jobs_finished(INF)  # inf = no limit, like None


@pytest.mark.parametrize("trace", ["no", "yes", 1, [], object()])
def test_runtime_trace_takes_true_false_or_a_tracer(trace: Any) -> None:
    with pytest.raises(TypeError, match=r"trace must be True, False or a Tracer"):
        Runtime(thread_pool_size=1, trace=trace)


def test_retry_backoff_overflow_is_capped() -> None:
    handler = ErrorHandler("retry", retry_delay=1.0, retry_backoff=1e10, max_retries=100)
    assert math.isfinite(handler.delay_for(90))


@pytest.mark.timeout(60)
def test_a_nan_delay_set_afterwards_does_not_stop_other_timers() -> None:
    """A NaN in the monitor's timer heap froze every timer of the runtime (issue 13).

    The constructor refuses NaN; a delay assigned afterwards (plain attributes) is still
    kept out of the heap, so a healthy retry elsewhere still fires.
    """
    flow = new_flow("timers")
    runs = Recorder()

    def flaky(name: str):
        def logic(sd, pm, ws):
            runs.add(name)
            if runs.snapshot().count(name) == 1:
                raise ConnectionError(f"{name}: first run fails")
        return logic

    poisoned = ErrorHandler("retry", retry_delay=0.01, max_retries=2)
    poisoned.retry_delay = NAN
    for name, handler in (("poisoned", poisoned),
                          ("healthy", ErrorHandler("retry", retry_delay=0.05, max_retries=2))):
        r = make_routine(flaky(name), events=())
        r.set_error_handler(handler)
        flow.add_routine(r, name)
    with running(thread_pool_size=2) as rt:
        _, bad = rt.post(flow.flow_id, "poisoned", "in", {})
        _, good = rt.post(flow.flow_id, "healthy", "in", {})
        assert bad.wait(JOIN_TIMEOUT) and good.wait(JOIN_TIMEOUT)
        assert (bad.status, good.status) == ("completed", "completed")
        assert sorted(runs.snapshot()) == ["healthy", "healthy", "poisoned", "poisoned"]


# -- broken exception objects ---------------------------------------------------------------
class StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class StrNotStr(Exception):
    def __str__(self) -> Any:
        return 42  # noqa: PLE0307 - the broken object under test


class StrRecurses(Exception):
    def __str__(self) -> str:
        return str(self)


BROKEN = [
    ("__str__ raises", StrRaises, r"StrRaises: <exception str\(\) failed: RuntimeError>"),
    ("__str__ non-str", StrNotStr, r"StrNotStr: <exception str\(\) failed: TypeError>"),
    ("__str__ recurses", StrRecurses, r"StrRecurses: <exception str\(\) failed: RecursionError>"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("exc_type", "match"), [c[1:] for c in BROKEN],
                         ids=[c[0] for c in BROKEN])
@pytest.mark.parametrize("where", ["logic", "policy"])
def test_a_broken_exception_still_fails_its_job(exc_type: type, match: str, where: str) -> None:
    flow = new_flow("broken")

    def logic(sd, pm, ws):
        raise exc_type()

    def check(slots, ws):
        raise exc_type()

    if where == "logic":
        r = make_routine(logic, events=())
    else:
        r = make_routine(lambda sd, pm, ws: None, events=(), policy=custom_policy(check))
    flow.add_routine(r, "r")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "r", "in", {})
        assert job.wait(JOIN_TIMEOUT)
        finish_all(rt)
        assert job.status == "failed"
        assert job.error is not None
        assert __import__("re").search(match, job.error), job.error
        assert rt.statistics().in_flight == 0


# -- policy failures during post's synchronous delivery (api.md §9, §12) --------------------
@pytest.mark.timeout(60)
def test_policy_emitting_into_its_own_routine_fails_the_job() -> None:
    flow = new_flow("selfemit")

    def check(slots, ws):
        route.emit("out", x=1)  # delivered to this routine again: unbounded recursion
        return True

    route = make_routine(lambda sd, pm, ws: None, policy=custom_policy(check))
    flow.add_routine(route, "r")
    flow.connect("r", "out", "r", "in")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "r", "in", {})
        assert job.wait(JOIN_TIMEOUT)
        finish_all(rt)
        assert job.status == "failed"
        assert "RecursionError" in job.error
        assert rt.statistics().in_flight == 0


@pytest.mark.timeout(60)
def test_downstream_policy_failure_fails_the_job_and_stops_the_upstream_logic() -> None:
    """P's policy emits to Q; Q's policy raises: the job fails and P's logic never runs."""
    flow = new_flow("pq")
    p_runs = Recorder()

    def p_check(slots, ws):
        p.emit("out", x=1)
        return True

    def q_check(slots, ws):
        raise ValueError("Q refuses")

    p = make_routine(lambda sd, pm, ws: p_runs.add(1), policy=custom_policy(p_check))
    q = make_routine(lambda sd, pm, ws: None, events=(), policy=custom_policy(q_check))
    flow.add_routine(p, "p")
    flow.add_routine(q, "q")
    flow.connect("p", "out", "q", "in")
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "p", "in", {})
        assert job.status == "running"  # terminal only after post returns
        assert job.wait(JOIN_TIMEOUT)
        finish_all(rt)
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        assert job.status == "failed"
        assert job.error == "ValueError: Q refuses"
        assert ws.get_routine_state("q")["status"] == "failed"
        assert len(p_runs) == 0
        assert rt.statistics().in_flight == 0
        # The worker keeps serving other jobs.
        q.set_activation_policy(custom_policy(lambda slots, ws: True))
        _, ok = rt.post(flow.flow_id, "p", "in", {})
        assert ok.wait(JOIN_TIMEOUT)
        assert ok.status == "completed"


# -- shutdown: the timeout is the whole budget ------------------------------------------------
def _stuck_runtime(n: int) -> tuple[Runtime, threading.Event, threading.Barrier]:
    release = threading.Event()
    started = threading.Barrier(n + 1)

    def stuck(sd, pm, ws):
        started.wait(JOIN_TIMEOUT)
        release.wait(JOIN_TIMEOUT)

    flow = new_flow("stuck")
    flow.add_routine(make_routine(stuck, events=()), "r")
    rt = Runtime(thread_pool_size=n)
    for _ in range(n):
        rt.post(flow.flow_id, "r", "in", {})
    for _ in range(3):
        rt.post(flow.flow_id, "r", "in", {})  # queued behind the stuck ones
    started.wait(JOIN_TIMEOUT)
    return rt, release, started


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("n", "wait", "timeout", "budget"),
                         [(4, False, 30.0, 1.0), (16, False, 30.0, 1.0),
                          (4, True, 0.5, 2.0), (8, True, 1.0, 3.0)],
                         ids=["wait=False x4", "wait=False x16", "0.5 s x4", "1 s x8"])
def test_shutdown_with_stuck_logic_stays_within_its_budget(
        n: int, wait: bool, timeout: float, budget: float) -> None:
    rt, release, _ = _stuck_runtime(n)
    threads = [t for t in threading.enumerate() if t.name.startswith("RoutiluxThread")]
    try:
        t0 = time.monotonic()
        rt.shutdown(wait=wait, timeout=timeout)
        took = time.monotonic() - t0
        # Before: each stuck thread was joined for up to 5 s in turn (16 -> 80 s).
        assert took < budget, f"shutdown took {took:.2f} s"
        assert rt.statistics().running == 0
        assert {j.status for j in rt.list_jobs()} == {"cancelled"}
    finally:
        release.set()
        for t in threads:
            t.join(JOIN_TIMEOUT)


def test_shutdown_refuses_a_nan_timeout() -> None:
    rt = Runtime(thread_pool_size=1)
    with pytest.raises(ValueError, match="timeout must be a finite number"):
        rt.shutdown(timeout=NAN)
    rt.shutdown()


@pytest.mark.timeout(60)
def test_a_retry_pending_for_a_job_that_ended_does_not_spin() -> None:
    """Found by test_fault_injection: the skipped re-run kept its retry delay, so its
    done_locked re-armed the timer forever (in_flight stuck at 1, a core busy)."""
    flow = new_flow("retry-spin")
    raised = threading.Event()

    def failing(sd, pm, ws):
        raised.set()
        raise ConnectionError("down")

    r = make_routine(failing, events=())
    r.set_error_handler(ErrorHandler("retry", max_retries=5, retry_delay=0.2))
    flow.add_routine(r, "r")
    with running(thread_pool_size=1) as rt:
        _, job = rt.post(flow.flow_id, "r", "in", {})
        assert raised.wait(JOIN_TIMEOUT)
        assert job.complete("cancelled", "given up")  # while its re-run waits
        # Before the fix the re-run re-armed itself every 0.2 s: never idle.
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT), rt.statistics()
        assert job.status == "cancelled" and rt.statistics().in_flight == 0
