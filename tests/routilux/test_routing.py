"""Routing: emit forms, connections made while workers run, self-loops, duplicate
connections, re-created flows with the same id, and how logic signatures are called."""

from __future__ import annotations

import threading

import pytest
from util import JOIN_TIMEOUT, Recorder, finish_all, make_routine, new_flow, running

from routilux import (
    Routine,
    all_slots_ready_policy,
    get_current_job_id,
    immediate_policy,
)


def _sink(recorder: Recorder, slots=("in",)) -> Routine:
    return make_routine(lambda sd, pm, ws: recorder.add(dict(sd)), slots=slots, events=())


@pytest.mark.timeout(30)
def test_emit_forms_positional_mapping_and_job_state_alias() -> None:
    got = Recorder()

    def logic(slot_data, policy_message, worker_state):
        src.emit("out", {"a": 1}, b=2)
        src.emit("out", job_state=worker_state, c=3)
        src.emit("out")

    src = make_routine(logic)
    flow = new_flow("emit-forms")
    flow.add_routine(src, "src")
    flow.add_routine(_sink(got), "sink")
    flow.connect("src", "out", "sink", "in")
    with running(thread_pool_size=1) as rt:
        ws, job = rt.post(flow.flow_id, "src", "in", {})
        finish_all(rt)
        assert job.status == "completed"
        items = sorted((d["in"][0] for d in got.snapshot()), key=lambda d: sorted(d))
        assert items == [{}, {"a": 1, "b": 2}, {"c": 3}]
        emits = [h for h in ws.get_execution_history("src") if h.event_name == "event_emit"]
        assert len(emits) == 3


@pytest.mark.timeout(30)
def test_emit_from_a_thread_the_logic_started_needs_a_worker_state() -> None:
    got = Recorder()
    outcome = Recorder()

    def logic(slot_data, policy_message, worker_state):
        def side() -> None:
            try:
                src.emit("out", n=1)
            except RuntimeError as exc:
                outcome.add(str(exc))
            src.emit("out", worker_state=worker_state, n=2)  # explicit: allowed

        t = threading.Thread(target=side)
        t.start()
        t.join(JOIN_TIMEOUT)

    src = make_routine(logic)
    flow = new_flow("emit-thread")
    flow.add_routine(src, "src")
    flow.add_routine(_sink(got), "sink")
    flow.connect("src", "out", "sink", "in")
    with running(thread_pool_size=2) as rt:
        rt.post(flow.flow_id, "src", "in", {})
        got.wait_for(1)
        finish_all(rt)
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        (message,) = outcome.snapshot()
        assert "has no worker" in message
        assert [d["in"] for d in got.snapshot()] == [[{"n": 2}]]


@pytest.mark.timeout(30)
def test_connections_and_routines_added_while_workers_run_apply_to_later_deliveries() -> None:
    first, second = Recorder(), Recorder()

    def logic(slot_data, policy_message, worker_state):
        src.emit("out", n=slot_data["in"][0]["n"])

    src = make_routine(logic)
    flow = new_flow("live-edit")
    flow.add_routine(src, "src")
    flow.add_routine(_sink(first), "first")
    flow.connect("src", "out", "first", "in")
    with running(thread_pool_size=2) as rt:
        ws = rt.exec(flow.flow_id)
        rt.post(flow.flow_id, "src", "in", {"n": 1})
        finish_all(rt)
        flow.add_routine(_sink(second), "second")
        flow.connect("src", "out", "second", "in")
        rt.post(flow.flow_id, "src", "in", {"n": 2}, worker_id=ws.worker_id)
        finish_all(rt)
        assert [d["in"][0]["n"] for d in first.snapshot()] == [1, 2]
        assert [d["in"][0]["n"] for d in second.snapshot()] == [2]
        # A slot added to a running routine can be posted to at once.
        src.add_slot("extra")
        rt.post(flow.flow_id, "src", "extra", {"n": 3})
        finish_all(rt)
        assert src.get_slot("extra").for_worker(ws).get_unconsumed_count() == 0


@pytest.mark.timeout(30)
def test_disconnect_stops_delivery_and_duplicate_connect_delivers_once() -> None:
    got = Recorder()
    src = make_routine(lambda sd, pm, ws: src.emit("out", k=1))
    flow = new_flow("dup")
    flow.add_routine(src, "src")
    flow.add_routine(_sink(got), "sink")
    conn = flow.connect("src", "out", "sink", "in")
    assert flow.connect("src", "out", "sink", "in") is conn
    assert repr(conn).startswith("Connection[")
    with running(thread_pool_size=1) as rt:
        rt.post(flow.flow_id, "src", "in", {})
        finish_all(rt)
        assert len(got) == 1
        conn.disconnect()
        assert flow.connections == []
        rt.post(flow.flow_id, "src", "in", {})
        finish_all(rt)
        assert len(got) == 1


@pytest.mark.timeout(30)
def test_self_loop_runs_until_it_stops_and_the_job_completes_after() -> None:
    seen = Recorder()

    def countdown(slot_data, policy_message, worker_state):
        n = slot_data["in"][0]["n"]
        seen.add((n, get_current_job_id()))
        if n > 0:
            loop.emit("again", n=n - 1)

    loop = make_routine(countdown, events=("again",))
    flow = new_flow("loop")
    flow.add_routine(loop, "loop")
    flow.connect("loop", "again", "loop", "in")
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "loop", "in", {"n": 20})
        assert job.wait(JOIN_TIMEOUT)
        assert job.status == "completed"
        rows = seen.snapshot()
        assert sorted(n for n, _ in rows) == list(range(21))  # all ran before completion
        assert {j for _, j in rows} == {job.job_id}


@pytest.mark.timeout(30)
def test_a_recreated_flow_with_the_same_id_does_not_hijack_old_workers() -> None:
    old_got, new_got = Recorder(), Recorder()
    flow_id = new_flow("recreated").flow_id

    def build(recorder: Recorder):
        flow = type(new_flow())(flow_id)
        src = make_routine(lambda sd, pm, ws: src.emit("out", v=1))
        flow.add_routine(src, "src")
        flow.add_routine(_sink(recorder), "sink")
        flow.connect("src", "out", "sink", "in")
        return flow

    old = build(old_got)
    with running(thread_pool_size=2) as rt:
        old_ws = rt.exec(flow_id)
        new = build(new_got)  # a notebook cell re-run: same id, new objects
        rt.post(flow_id, "src", "in", {}, worker_id=old_ws.worker_id)  # not new's worker
        finish_all(rt)
        assert (len(old_got), len(new_got)) == (1, 0)
        new_ws, _ = rt.post(flow_id, "src", "in", {})  # the name now resolves to `new`
        finish_all(rt)
        assert new_ws.worker_id != old_ws.worker_id
        assert (len(old_got), len(new_got)) == (1, 1)
        new.add_routine(_sink(new_got), "only-in-new")
        with pytest.raises(ValueError, match="runs an older flow .* without only-in-new.in"):
            rt.post(flow_id, "only-in-new", "in", {}, worker_id=old_ws.worker_id)
        other = new_flow("other")
        other.add_routine(_sink(new_got), "src")
        with pytest.raises(ValueError, match=f"runs flow '{flow_id}', not '{other.flow_id}'"):
            rt.post(other.flow_id, "src", "in", {}, worker_id=old_ws.worker_id)
        assert len(rt.list_jobs()) == 2
    del old, new


@pytest.mark.timeout(30)
def test_per_slot_styles_and_kwargs_delivery() -> None:
    got = Recorder()

    def varargs(*args):
        got.add(("varargs", args[0], args[1], args[2]["reason"]))

    def exact_with_kwargs(a, b, **kwargs):
        got.add(("kwargs", a, b, sorted(kwargs)))

    def mapping_two_slots(slot_data, policy_message, worker_state):
        got.add(("mapping", slot_data["a"], slot_data["b"], sorted(slot_data.keys())))

    def named_msg_last(a, b, policy_message):
        got.add(("named", a, b, policy_message["reason"]))

    flow = new_flow("styles")
    for rid, fn in (("varargs", varargs), ("kwargs", exact_with_kwargs),
                    ("mapping", mapping_two_slots), ("named", named_msg_last)):
        flow.add_routine(make_routine(fn, slots=("a", "b"), events=(),
                                      policy=all_slots_ready_policy()), rid)
    with running(thread_pool_size=2) as rt:
        for rid in ("varargs", "kwargs", "mapping", "named"):
            rt.post(flow.flow_id, rid, "a", {"s": "a"})
            rt.post(flow.flow_id, rid, "b", {"s": "b"})
        finish_all(rt)
        rows = {row[0]: row[1:] for row in got.snapshot()}
        a, b = [{"s": "a"}], [{"s": "b"}]
        assert rows["varargs"] == (a, b, "all_slots_ready")
        assert rows["kwargs"] == (a, b, ["policy_message", "worker_state"])
        assert rows["mapping"] == (a, b, ["a", "b"])
        assert rows["named"] == (a, b, "all_slots_ready")
        assert {j.status for j in rt.list_jobs()} == {"completed"}


@pytest.mark.timeout(30)
def test_single_slot_data_acts_as_the_item_list() -> None:
    got = Recorder()

    def logic(items, policy_message, worker_state):
        got.add((len(items), items[0], items[-1:], [d for d in items], items == [{"i": 0}],
                 items.get("in"), "in" in items, bool(items)))

    flow = new_flow("single")
    flow.add_routine(make_routine(logic, events=()), "r")
    with running(thread_pool_size=1) as rt:
        rt.post(flow.flow_id, "r", "in", {"i": 0})
        finish_all(rt)
    item = {"i": 0}
    assert got.snapshot() == [(1, item, [item], [item], True, [item], True, True)]


@pytest.mark.timeout(30)
def test_execution_context_inside_logic() -> None:
    got = Recorder()

    class Inspector(Routine):
        def __init__(self) -> None:
            super().__init__()
            self.add_slot("in")
            self.set_activation_policy(immediate_policy())

        def logic(self, slot_data, policy_message, worker_state):
            got.add(self.get_execution_context())

    r = Inspector()
    flow = new_flow("ctx")
    flow.add_routine(r, "inspector")
    with running(thread_pool_size=1) as rt:
        ws, job = rt.post(flow.flow_id, "inspector", "in", {})
        finish_all(rt)
    (ctx,) = got.snapshot()
    assert ctx.flow is flow and ctx.worker_state is ws
    assert ctx.routine_id == "inspector" and ctx.job_context is job
    assert r.get_execution_context() is None


@pytest.mark.timeout(30)
def test_the_builtin_immediate_policy_consumes_in_the_same_step() -> None:
    # docs/trace_events.md: no slot.enqueue for immediate_policy() (put and take are one
    # step); a routine whose policy only behaves the same takes the two-step path. Guards
    # the fast path's recognition of the built-in policy (issue 15 moved its module).
    def custom(slots, worker_state):
        return True, {name: view.consume_all_new() for name, view in slots.items()}, None

    flow = new_flow("fast")
    flow.add_routine(make_routine(lambda *a: None, events=()), "fast")
    flow.add_routine(make_routine(lambda *a: None, events=(), policy=custom), "slow")
    with running(thread_pool_size=2, trace=True) as rt:
        for rid in ("fast", "slow"):
            rt.post(flow.flow_id, rid, "in", {"x": 1})
        finish_all(rt)
        events = rt.tracer.read()
    enqueued = {e.routine for e in events if e.kind == "slot.enqueue"}
    queued = {e.routine for e in events if e.kind == "task.queued"}
    assert enqueued == {"slow"} and queued == {"fast", "slow"}
