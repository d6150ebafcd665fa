"""Bad input, table-driven: each case names the problem and leaves nothing behind.

Two kinds of bad input:
- refused up front (``post``, ``Runtime``, ``resize``, ``connect``): the call raises, and
  the runtime's jobs and workers are exactly what they were;
- discovered while the job runs (a policy returning the wrong shape, logic with an
  impossible signature): post returns normally, the job fails with a message that says
  what was expected, and nothing stays running or in flight.
"""

from __future__ import annotations

from typing import Any

import pytest
from util import JOIN_TIMEOUT, finish_all, make_routine, new_flow, running

from routilux import Runtime, all_slots_ready_policy


def _flow():
    flow = new_flow("bad")
    flow.add_routine(make_routine(lambda sd, pm, ws: None, slots=("in", "aux")), "entry")
    flow.add_routine(make_routine(lambda sd, pm, ws: None, events=()), "sink")
    flow.connect("entry", "out", "sink", "in")
    return flow


POST_CASES = [
    # (id, args after the runtime: flow, routine, slot, data, error, match)
    ("unknown flow", ("{missing}", "entry", "in", {}), ValueError,
     r"unknown flow 'no-such-flow-\w+'; known flows: "),
    ("unknown routine", ("{flow}", "nope", "in", {}), ValueError,
     r"has no routine 'nope'; routines are: entry, sink"),
    ("unknown slot", ("{flow}", "entry", "nope", {}), ValueError,
     r"routine 'entry' has no slot 'nope'; slots are: in, aux"),
    ("slot of another routine", ("{flow}", "sink", "aux", {}), ValueError,
     r"routine 'sink' has no slot 'aux'; slots are: in"),
    ("flow name not a str", (42, "entry", "in", {}), TypeError, r"flow_name must be a str"),
    ("data a list", ("{flow}", "entry", "in", [1, 2]), TypeError,
     r"post data must be a dict, got list"),
    ("data a str", ("{flow}", "entry", "in", "x=1"), TypeError,
     r"post data must be a dict, got str"),
    ("data an int", ("{flow}", "entry", "in", 7), TypeError, r"post data must be a dict, got int"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("args", "error", "match"), [c[1:] for c in POST_CASES],
                         ids=[c[0] for c in POST_CASES])
def test_post_refuses_bad_input_and_creates_nothing(args: tuple, error: type, match: str) -> None:
    flow = _flow()
    with running(thread_pool_size=2) as rt:
        rt.post(flow.flow_id, "entry", "in", {})  # a worker and one job already exist
        finish_all(rt)
        jobs, workers = rt.list_jobs(), rt.statistics().workers
        name = args[0]
        if name == "{flow}":
            name = flow.flow_id
        elif name == "{missing}":
            name = f"no-such-flow-{flow.flow_id[-6:]}"
        with pytest.raises(error, match=match):
            rt.post(name, *args[1:])
        assert rt.list_jobs() == jobs
        assert rt.statistics().workers == workers
        assert rt.statistics().posted == 1


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"worker_id": "nobody"}, ValueError, r"unknown worker_id 'nobody'"),
        ({"metadata": [("a", 1)]}, TypeError, r"metadata must be a dict"),
        ({"job_id": 12}, TypeError, r"job_id must be a str"),
    ],
    ids=["unknown worker", "metadata not a dict", "job_id not a str"],
)
def test_post_refuses_bad_keywords(kwargs: dict, error: type, match: str) -> None:
    flow = _flow()
    with running(thread_pool_size=2) as rt:
        rt.exec(flow.flow_id)
        with pytest.raises(error, match=match):
            rt.post(flow.flow_id, "entry", "in", {}, **kwargs)
        assert rt.list_jobs() == []
        assert rt.statistics().workers == 1


@pytest.mark.timeout(30)
def test_post_with_a_job_id_in_use_registers_nothing_new() -> None:
    flow = _flow()
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow.flow_id, "entry", "in", {}, job_id="fixed")
        finish_all(rt)
        with pytest.raises(ValueError, match="'fixed' is already in use"):
            rt.post(flow.flow_id, "entry", "in", {}, job_id="fixed")
        assert rt.list_jobs() == [job]
        assert rt.statistics().in_flight == 0


@pytest.mark.timeout(30)
def test_post_after_shutdown_and_to_a_stopped_worker() -> None:
    flow = _flow()
    rt = Runtime(thread_pool_size=1)
    ws = rt.exec(flow.flow_id)
    rt.shutdown()
    with pytest.raises(RuntimeError, match="Runtime is shut down"):
        rt.post(flow.flow_id, "entry", "in", {})
    with pytest.raises(RuntimeError, match="Runtime is shut down"):
        rt.post(flow.flow_id, "entry", "in", {}, worker_id=ws.worker_id)
    with pytest.raises(RuntimeError, match="Runtime is shut down"):
        rt.exec(flow.flow_id)
    assert rt.list_jobs() == []


POOL_SIZE_CASES = [
    (-1, ValueError, r"thread_pool_size must be >= 0, got -1"),
    (-100, ValueError, r"thread_pool_size must be >= 0, got -100"),
    (1.5, TypeError, r"thread_pool_size must be an int, got 1.5"),
    ("4", TypeError, r"thread_pool_size must be an int, got '4'"),
    (None, TypeError, r"thread_pool_size must be an int, got None"),
    (True, TypeError, r"thread_pool_size must be an int, got True"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("size", "error", "match"), POOL_SIZE_CASES)
def test_runtime_refuses_bad_pool_sizes(size: Any, error: type, match: str) -> None:
    import threading

    before = threading.active_count()
    with pytest.raises(error, match=match):
        Runtime(thread_pool_size=size)
    assert threading.active_count() == before


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("size", "error", "match"),
    [
        (0, ValueError, r"thread_pool_size must be >= 1, got 0"),
        (-3, ValueError, r"thread_pool_size must be >= 1, got -3"),
        (2.0, TypeError, r"thread_pool_size must be an int, got 2.0"),
        (False, TypeError, r"thread_pool_size must be an int, got False"),
    ],
)
def test_resize_refuses_bad_sizes_and_keeps_the_old_one(size: Any, error: type,
                                                         match: str) -> None:
    with running(thread_pool_size=3) as rt:
        with pytest.raises(error, match=match):
            rt.resize(size)
        assert rt.thread_pool_size == 3
        assert rt.statistics().pool_size == 3


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (0, ValueError, r"max_queue_size must be >= 1 or None, got 0"),
        (-1, ValueError, r"max_queue_size must be >= 1 or None, got -1"),
        (2.5, TypeError, r"max_queue_size must be an int or None, got 2.5"),
        (True, TypeError, r"max_queue_size must be an int or None, got True"),
    ],
)
def test_runtime_refuses_bad_queue_bounds(value: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Runtime(thread_pool_size=1, max_queue_size=value)


CONNECT_CASES = [
    (("ghost", "out", "sink", "in"), r"no source routine 'ghost'; routines are: entry, sink"),
    (("entry", "out", "ghost", "in"), r"no target routine 'ghost'; routines are: entry, sink"),
    (("entry", "nope", "sink", "in"), r"routine 'entry' has no event 'nope'; events are: out"),
    (("sink", "out", "entry", "in"), r"routine 'sink' has no event 'out'; events are: \(none\)"),
    (("entry", "out", "sink", "nope"), r"routine 'sink' has no slot 'nope'; slots are: in"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("args", "match"), CONNECT_CASES)
def test_connect_names_the_unknown_routine_event_or_slot(args: tuple, match: str) -> None:
    flow = _flow()
    before = list(flow.connections)
    with pytest.raises(ValueError, match=match):
        flow.connect(*args)
    assert flow.connections == before


def _two_tuple(slots, ws):
    return True, {}


def _bare_bool(slots, ws):
    return True


def _none(slots, ws):
    return None


def _list_slice(slots, ws):
    return True, [slots["in"].consume_all_new()], None


def _four(slots, ws):
    return True, {}, None, "extra"


RUN_TIME_CASES = [
    ("policy returns a 2-tuple", _two_tuple, None,
     (r"TypeError: the activation policy of routine 'r' returned \(True, \{\}\); "
      r"a policy must return \(should_activate: bool, data_slice: dict\[str, list\], "
      r"policy_message\)")),
    ("policy returns a bool", _bare_bool, None, r"returned True; a policy must return"),
    ("policy returns None", _none, None, r"returned None; a policy must return"),
    ("policy returns 4 items", _four, None, r"a policy must return \(should_activate"),
    ("policy data_slice is a list", _list_slice, None,
     r"returned data_slice \[\[\{\}\]\]; a policy must return"),
    ("logic takes no parameters", None, lambda: None, r"^TypeError: "),
    ("logic takes one parameter", None, lambda x: None, r"^TypeError: "),
    ("logic takes five parameters", None, lambda a, b, c, d, e: None, r"^TypeError: "),
    ("logic keyword-only slot data", None, lambda *, data: None, r"^TypeError: "),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("policy", "logic", "match"), [c[1:] for c in RUN_TIME_CASES],
                         ids=[c[0] for c in RUN_TIME_CASES])
def test_wrong_policy_or_logic_shapes_fail_the_job_and_leave_nothing_running(
    policy: Any, logic: Any, match: str
) -> None:
    r = make_routine(logic or (lambda sd, pm, ws: None), events=())
    if policy is not None:
        r.set_activation_policy(policy)
    flow = new_flow("bad-run")
    flow.add_routine(r, "r")
    with running(thread_pool_size=2) as rt:
        ws = rt.exec(flow.flow_id)
        _, job = rt.post(flow.flow_id, "r", "in", {})
        assert job.wait(JOIN_TIMEOUT)
        finish_all(rt)
        assert rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
        assert job.status == "failed"
        assert job.error is not None
        import re

        assert re.search(match, job.error), job.error
        assert rt.list_jobs() == [job]
        stats = rt.statistics()
        assert (stats.workers, stats.running, stats.in_flight, stats.queued) == (1, 0, 0, 0)
        assert ws.jobs_failed == 1
        # The worker keeps serving: the routine, fixed, now runs.
        r.set_activation_policy(all_slots_ready_policy())
        r.set_logic(lambda sd, pm, ws: None)
        _, again = rt.post(flow.flow_id, "r", "in", {})
        finish_all(rt)
        assert again.status == "completed"
