"""Activation policies as pure functions over bare slots (api.md §6), plus their factories.

A Routine in no flow keeps standalone slot queues, so each policy can be driven by hand:
enqueue, call ``policy(slots, worker_state)``, look at the triple and what is left.
Anything that binds a current job runs in a copied context, so it never leaks into the
test thread.
"""

from __future__ import annotations

import contextvars
from typing import Any

import pytest

from routilux import (
    JobContext,
    Routine,
    WorkerState,
    all_slots_ready_policy,
    batch_size_policy,
    breakpoint_policy,
    custom_policy,
    immediate_policy,
    set_current_job,
    time_interval_policy,
)


def _routine(*slots: str) -> Routine:
    r = Routine()
    for name in slots:
        r.add_slot(name)
    return r


def _fill(r: Routine, **items: list[Any]) -> None:
    for name, values in items.items():
        for v in values:
            r.get_slot(name).enqueue(v)


def _unconsumed(r: Routine) -> dict[str, int]:
    return {name: s.get_unconsumed_count() for name, s in r.slots.items()}


def test_immediate_fires_on_any_new_item_and_takes_everything() -> None:
    r = _routine("a", "b")
    policy = immediate_policy()
    assert policy(r.slots, None)[0] is False
    _fill(r, a=[1, 2])
    fire, data, msg = policy(r.slots, None)
    assert (fire, data, msg) == (True, {"a": [1, 2], "b": []}, {"reason": "immediate"})
    assert _unconsumed(r) == {"a": 0, "b": 0}
    assert policy(r.slots, None)[0] is False


def test_all_slots_ready_takes_the_oldest_of_each_slot() -> None:
    r = _routine("a", "b")
    policy = all_slots_ready_policy()
    _fill(r, a=["a1", "a2", "a3"])
    assert policy(r.slots, None)[0] is False
    _fill(r, b=["b1"])
    assert policy(r.slots, None) == (True, {"a": ["a1"], "b": ["b1"]},
                                     {"reason": "all_slots_ready"})
    assert _unconsumed(r) == {"a": 2, "b": 0}
    assert policy(r.slots, None)[0] is False


def test_all_slots_ready_match_job_pairs_only_the_arriving_job() -> None:
    r = _routine("a", "b")
    policy = all_slots_ready_policy(match_job=True)
    j1, j2 = JobContext(job_id="j1"), JobContext(job_id="j2")

    def as_job(job: JobContext, fn, *args, **kwargs):
        ctx = contextvars.copy_context()

        def body():
            set_current_job(job)
            return fn(*args, **kwargs)

        return ctx.run(body)

    as_job(j1, _fill, r, a=["a-j1"])
    as_job(j2, _fill, r, a=["a-j2"], b=["b-j2"])
    # Plain FIFO pairing would join a-j1 with b-j2; match_job pairs j2 with j2.
    assert as_job(j2, policy, r.slots, None) == (
        True, {"a": ["a-j2"], "b": ["b-j2"]}, {"reason": "all_slots_ready"})
    assert as_job(j1, policy, r.slots, None)[0] is False
    assert r.get_slot("a").peek_all_new() == ["a-j1"]
    with pytest.raises(TypeError, match="match_job must be a bool"):
        all_slots_ready_policy(match_job="yes")


def test_batch_size_takes_exactly_n_oldest_per_slot_and_never_flushes_partially() -> None:
    r = _routine("a", "b")
    policy = batch_size_policy(2)
    _fill(r, a=[1, 2, 3], b=[10])
    assert policy(r.slots, None)[0] is False  # b has only one
    _fill(r, b=[20, 30])
    assert policy(r.slots, None) == (True, {"a": [1, 2], "b": [10, 20]},
                                     {"reason": "batch_ready", "batch_size": 2})
    assert _unconsumed(r) == {"a": 1, "b": 1}
    assert policy(r.slots, None)[0] is False


@pytest.mark.parametrize(
    ("arg", "error", "match"),
    [
        (0, ValueError, "min_batch_size must be >= 1, got 0"),
        (-2, ValueError, "min_batch_size must be >= 1, got -2"),
        (2.0, TypeError, "min_batch_size must be an int, got 2.0"),
        ("5", TypeError, "min_batch_size must be an int, got '5'"),
        (True, TypeError, "min_batch_size must be an int, got True"),
        (lambda slots: 3, TypeError, "min_batch_size must be an int"),
    ],
)
def test_batch_size_factory_rejects_bad_sizes(arg: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        batch_size_policy(arg)


def test_time_interval_fires_first_then_throttles() -> None:
    r = _routine("in")
    ws = WorkerState("f")
    policy = time_interval_policy(3600)
    _fill(r, **{"in": [1]})
    fire, data, msg = policy(r.slots, ws)
    assert (fire, data) == (True, {"in": [1]})
    assert msg["reason"] == "time_interval_met" and msg["interval"] == 3600.0
    _fill(r, **{"in": [2, 3]})
    assert policy(r.slots, ws)[0] is False
    assert _unconsumed(r) == {"in": 2}
    # Another worker's throttle is its own.
    assert policy(r.slots, WorkerState("f")) [:2] == (True, {"in": [2, 3]})


def test_time_interval_zero_always_fires_when_there_is_data() -> None:
    r = _routine("in")
    ws = WorkerState("f")
    policy = time_interval_policy(0)
    for i in range(3):
        _fill(r, **{"in": [i]})
        assert policy(r.slots, ws)[:2] == (True, {"in": [i]})
    assert policy(r.slots, ws)[0] is False


@pytest.mark.parametrize(
    ("arg", "error", "match"),
    [(-1, ValueError, "must be a number >= 0"), ("1", TypeError, "must be a number"),
     (None, TypeError, "must be a number"), (False, TypeError, "must be a number")],
)
def test_time_interval_factory_rejects_bad_intervals(arg: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        time_interval_policy(arg)


def test_custom_policy_bool_and_triple() -> None:
    r = _routine("a", "b")
    gate = {"open": False}
    policy = custom_policy(lambda slots, ws: gate["open"])
    _fill(r, a=[1], b=[2])
    assert policy(r.slots, None)[0] is False
    assert _unconsumed(r) == {"a": 1, "b": 1}  # a declining check consumes nothing
    gate["open"] = True
    assert policy(r.slots, None) == (True, {"a": [1], "b": [2]},
                                     {"reason": "custom_policy_met"})

    def full(slots, ws):
        return True, {"a": [slots["a"].consume_one_new()]}, {"mine": 1}

    _fill(r, a=[5, 6])
    assert custom_policy(full)(r.slots, None) == (True, {"a": [5]}, {"mine": 1})
    assert _unconsumed(r) == {"a": 1, "b": 0}  # used as-is: no second consumption
    with pytest.raises(TypeError, match="check_function must be callable"):
        custom_policy(42)


def test_breakpoint_policy_never_fires_and_captures() -> None:
    r = _routine("in")
    ws = WorkerState("f")
    policy = breakpoint_policy("r1")
    _fill(r, **{"in": [1, 2]})
    assert policy(r.slots, ws)[0] is False
    assert ws.debug_data["r1"] == [{"in": [1, 2]}]
    assert _unconsumed(r) == {"in": 0}


@pytest.mark.parametrize(
    ("policy", "kind", "config"),
    [
        (immediate_policy(), "immediate", {}),
        (all_slots_ready_policy(), "all_slots_ready", {"match_job": False}),
        (batch_size_policy(3), "batch_size", {"min_batch_size": 3}),
        (time_interval_policy(1.5), "time_interval", {"min_interval_seconds": 1.5}),
        (custom_policy(lambda s, w: True), "custom", {}),
        (breakpoint_policy("x"), "breakpoint", {"routine_id": "x"}),
    ],
)
def test_policies_carry_their_description(policy: Any, kind: str, config: dict) -> None:
    assert policy._policy_type == kind
    assert policy._policy_config == config
    assert isinstance(policy._policy_description, str) and policy._policy_description
    r = _routine("in")
    r.set_activation_policy(policy)
    info = r.get_activation_policy_info()
    assert info["type"] == kind and info["config"] == config


def test_routine_without_policy_reports_immediate_and_rejects_non_callables() -> None:
    r = _routine("in")
    assert r.get_activation_policy_info()["type"] == "immediate"
    with pytest.raises(TypeError, match="an activation policy must be callable"):
        r.set_activation_policy("immediate")
