"""The lock table as of the window's end, and the waiting charged to holders (issues 12, 17).

Each run is forced with Events and Barriers: a holder takes the lock without contention,
a waiter is made to wait for it, and the holder lets go only once the wait is in the trace.
The table is read back from the model, from ``snapshot()``'s drawn table and from
``report()``.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from jupyter_helpers import JOIN_TIMEOUT, wait_until

from routilux import Flow, Routine, Runtime, immediate_policy
from routilux.sync import DeadlockError, TracedLock
from routilux.trace import TraceEvent
from routilux_jupyter._model import DashboardModel

pytest.importorskip("matplotlib")

from routilux_jupyter import report, snapshot  # after the skip: they draw with matplotlib

T0 = 1_000_000_000


def _routine(logic: Any) -> Routine:
    r = Routine()
    r.add_slot("in")
    r.set_logic(logic)
    r.set_activation_policy(immediate_policy())
    return r


def _table(fig: Any) -> dict[str, dict[str, str]]:
    """The drawn lock table: lock name -> column label -> cell text."""
    tables = [t for ax in fig.axes for t in ax.tables]
    assert len(tables) == 1, "expected one lock table in the figure"
    cells = tables[0].get_celld()
    n_rows = 1 + max(r for r, _ in cells)
    n_cols = 1 + max(c for _, c in cells)
    labels = [cells[(0, c)].get_text().get_text() for c in range(n_cols)]
    out = {}
    for r in range(1, n_rows):
        row = {labels[c]: cells[(r, c)].get_text().get_text() for c in range(n_cols)}
        out[row["lock"]] = row
    return out


@pytest.fixture
def held_then_waited() -> Any:
    """'hold' takes ledger uncontended and keeps it until 'wait' is waiting for it."""
    ledger = TracedLock("ledger")
    held, release = threading.Event(), threading.Event()

    def hold(slot_data, policy_message, worker_state):
        with ledger:  # HOLD_SITE
            held.set()
            assert release.wait(JOIN_TIMEOUT)

    def wait(slot_data, policy_message, worker_state):
        with ledger:
            pass

    flow = Flow("lock-table-held-then-waited")
    flow.add_routine(_routine(hold), "hold")
    flow.add_routine(_routine(wait), "wait")
    rt = Runtime(thread_pool_size=2, trace=True)
    try:
        rt.post(flow.flow_id, "hold", "in", {})
        assert held.wait(JOIN_TIMEOUT)
        rt.post(flow.flow_id, "wait", "in", {})
        wait_until(lambda: any(e.kind == "lock.wait" for e in rt.tracer.read()), "the wait")
        release.set()
        assert rt.wait_until_all_jobs_finished(JOIN_TIMEOUT)
        yield rt, hold.__code__
    finally:
        release.set()
        rt.shutdown()


@pytest.mark.timeout(60)
def test_a_released_lock_shows_no_holder_and_its_waiting_is_charged_to_the_holder(
    held_then_waited: Any,
) -> None:
    rt, hold_code = held_then_waited
    events = rt.tracer.read()
    model = DashboardModel.from_events(events)
    (row,) = model.view().locks
    assert row.name == "ledger" and row.waits == 1
    assert row.holder is None and row.waiters == []  # as of the end: released, nobody waits
    (caused,) = row.caused
    released = next(e for e in events if e.kind == "lock.released" and e.routine == "hold")
    assert caused.routine == "hold" and caused.holds == 1
    assert caused.site == released.detail["site"]
    assert caused.site.endswith(f":{hold_code.co_firstlineno + 1}")  # the `with ledger:` line
    waited = next(e.value for e in events if e.kind == "lock.acquired")
    assert 0 < caused.total_s == caused.max_s <= waited

    drawn = _table(snapshot(rt))["ledger"]
    assert drawn["holder"] == "–" and drawn["waiters"] == "–"
    assert drawn["waiting caused by (holder: total / max)"].startswith("hold @ ")

    rep = report(rt)
    assert _table(rep.figure)["ledger"]["holder"] == "–"


@pytest.mark.timeout(60)
def test_after_a_detected_deadlock_no_lock_shows_a_holder() -> None:
    """Notebook 03's deadlock: one thread raises, the other finishes; at the end nothing is
    held, although one of the holds (taken without a wait) was named by a waiter."""
    accounts, ledger = TracedLock("accounts"), TracedLock("ledger")
    meet = threading.Barrier(2, timeout=JOIN_TIMEOUT)

    def transfer(first: TracedLock, second: TracedLock) -> Any:
        def logic(slot_data, policy_message, worker_state):
            with first:
                meet.wait()
                try:
                    with second:
                        pass
                except DeadlockError:
                    pass  # the job goes on without the second lock

        return logic

    flow = Flow("lock-table-deadlock")
    flow.add_routine(_routine(transfer(accounts, ledger)), "debit")
    flow.add_routine(_routine(transfer(ledger, accounts)), "audit")
    rt = Runtime(thread_pool_size=2, trace=True)
    try:
        rt.post(flow.flow_id, "debit", "in", {})
        rt.post(flow.flow_id, "audit", "in", {})
        assert rt.wait_until_all_jobs_finished(JOIN_TIMEOUT)
        rows = {r.name: r for r in DashboardModel.from_events(rt.tracer.read()).view().locks}
        assert set(rows) == {"accounts", "ledger"}
        for row in rows.values():
            assert row.deadlocked and row.holder is None and row.waiters == []
        # Each lock's waiting is charged to the routine that held it.
        assert {r.caused[0].routine for r in rows.values()} == {"debit", "audit"}
        drawn = _table(snapshot(rt))
        assert {drawn[n]["holder"] for n in drawn} == {"–"}
    finally:
        rt.shutdown()


def _ev(seq: int, t: float, kind: str, thread: int, **fields: Any) -> TraceEvent:
    return TraceEvent(seq, T0 + int(t * 1e9), kind, thread, f"RoutiluxWorker-{thread}",
                      **fields)  # fmt: skip


@pytest.mark.timeout(10)
def test_a_lock_still_held_at_the_end_shows_its_holder_and_its_waiters() -> None:
    events = [
        _ev(1, 0.0, "lock.wait", 2, name="db",
            detail={"holder": 1, "holder_name": "RoutiluxWorker-1"}),
        _ev(2, 0.1, "lock.wait", 3, name="db",
            detail={"holder": 1, "holder_name": "RoutiluxWorker-1"}),
        _ev(3, 0.5, "lock.released", 1, name="db", routine="a",
            detail={"caused_s": 0.9, "waiters": 2, "site": "/src/app.py:12"}),
        _ev(4, 0.5, "lock.acquired", 2, name="db", value=0.5),
        # worker-2 holds it now; worker-3 still waits at the end of the window
    ]  # fmt: skip
    (row,) = DashboardModel.from_events(events).view().locks
    assert row.holder == "RoutiluxWorker-2" and row.waiters == ["RoutiluxWorker-3"]
    assert [c.as_list() for c in row.caused] == [["a", "/src/app.py:12", 0.9, 0.9, 1]]


@pytest.mark.timeout(10)
def test_waiting_caused_adds_up_per_holder_routine_and_site() -> None:
    def released(seq: int, routine: str, site: str, caused: float) -> TraceEvent:
        return _ev(seq, seq * 0.1, "lock.released", 1, name="db", routine=routine,
                   detail={"caused_s": caused, "waiters": 1, "site": site})  # fmt: skip

    model = DashboardModel.from_events([
        released(1, "a", "app.py:3", 0.2), released(2, "b", "app.py:9", 0.5),
        released(3, "a", "app.py:3", 0.4), released(4, "a", "app.py:5", 0.1),
    ])  # fmt: skip
    (row,) = model.view().locks
    assert [c.as_list() for c in row.caused] == [
        ["a", "app.py:3", 0.6, 0.4, 2], ["b", "app.py:9", 0.5, 0.5, 1], ["a", "app.py:5", 0.1, 0.1, 1],
    ]  # fmt: skip
    assert model.full()["locks"][0][7][0] == ["a", "app.py:3", 0.6, 0.4, 2]


@pytest.mark.timeout(10)
def test_a_lock_order_finding_shows_its_edges_in_words() -> None:
    from routilux.diagnostics import diagnose
    from routilux.trace import Tracer
    from routilux_jupyter._findings import finding_dicts, findings_text

    tracer = Tracer()
    a, b = TracedLock("a", tracer=tracer), TracedLock("b", tracer=tracer)
    with a, b:
        pass
    with b, a:
        pass
    (f,) = finding_dicts(diagnose(tracer))
    assert f["kind"] == "lock_order" and f["notebook"] == "03_deadlocks.ipynb"
    assert f["evidence"].startswith("edge 'a' -> 'b' (MainThread, at ")
    assert "; edge 'b' -> 'a' (MainThread, at " in f["evidence"]
    assert f["evidence"].endswith("; order to adopt: 'a' then 'b'")
    assert "explained in: 03_deadlocks.ipynb" in findings_text([f])


@pytest.mark.timeout(60)
def test_report_carries_the_lock_table_as_data(held_then_waited: Any) -> None:
    rt, _hold_code = held_then_waited
    (row,) = report(rt, diagnose=False).locks
    assert (row["name"], row["waits"], row["holder"], row["waiters"]) == ("ledger", 1, None, [])
    assert row["caused"][0]["routine"] == "hold" and row["caused"][0]["holds"] == 1
