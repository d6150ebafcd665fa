"""Slot: validation, the FIFO with a consumed cursor, capacity, watermark purging, status
reports, and per-worker queues (api.md §4)."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from util import finish_all, make_routine, new_flow, running

from routilux import Routine, Slot, SlotQueueFullError


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_queue_length": 0}, ValueError, "max_queue_length must be > 0, got 0"),
        ({"max_queue_length": -5}, ValueError, "max_queue_length must be > 0, got -5"),
        ({"max_queue_length": 2.5}, TypeError, "max_queue_length must be an int, got 2.5"),
        ({"watermark": 1.5}, ValueError, r"watermark must be a number in \[0, 1\], got 1.5"),
        ({"watermark": -0.1}, ValueError, r"watermark must be a number in \[0, 1\]"),
        ({"watermark": "high"}, ValueError, r"watermark must be a number in \[0, 1\]"),
    ],
)
def test_bad_queue_arguments(kwargs: dict[str, Any], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Slot("s", **kwargs)
    with pytest.raises(error, match=match):
        Routine().add_slot("s", **kwargs)


def test_add_slot_errors_and_aliases() -> None:
    r = Routine()
    slot = r.add_slot("in", max_queue_length=5, watermark=0.6)
    assert r.get_slot("in") is slot and r.slots == {"in": slot} and r.get_slot("x") is None
    assert (slot.max_queue_length, slot.watermark, slot.watermark_threshold) == (5, 0.6, 3)
    with pytest.raises(ValueError, match="already has a slot 'in'"):
        r.add_slot("in")
    with pytest.raises(TypeError, match=r"add_slot\(handler=...\) is the v1 API"):
        r.add_slot("other", handler=print)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r.define_slot("legacy", handler=print)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert list(r.slots) == ["in", "legacy"]
    event = r.add_event("out", output_params=["x"])
    assert r.define_event("other") is r.get_event("other")
    with pytest.raises(ValueError, match="already has an event 'out'"):
        r.add_event("out")
    assert event.output_params == ["x"] and list(r.events) == ["out", "other"]


def test_full_means_max_queue_length_unconsumed() -> None:
    slot = Slot("s", max_queue_length=3)
    for i in range(3):
        slot.enqueue({"i": i})
    with pytest.raises(SlotQueueFullError, match="is full"):
        slot.enqueue({"i": 3})
    assert slot.get_unconsumed_count() == 3
    assert slot.consume_one_new() == {"i": 0}
    slot.enqueue({"i": 3})  # room again after one consumption
    assert slot.peek_all_new() == [{"i": 1}, {"i": 2}, {"i": 3}]


def test_watermark_purges_consumed_items_before_appending() -> None:
    slot = Slot("s", max_queue_length=10, watermark=0.5)  # threshold 5
    for i in range(5):
        slot.enqueue(i)
    assert slot.consume_all_new() == [0, 1, 2, 3, 4]
    assert (slot.get_total_count(), slot.get_consumed_count()) == (5, 5)
    slot.enqueue(5)  # retained total reached the threshold: consumed ones are purged
    assert (slot.get_total_count(), slot.get_consumed_count(), slot.get_unconsumed_count()) == (
        1, 0, 1)


def test_consume_and_peek_variants() -> None:
    slot = Slot("s")
    assert slot.consume_one_new() is None and slot.peek_one_new() is None
    assert slot.peek_latest() is None and slot.consume_all_new() == []
    for i in range(4):
        slot.enqueue(i)
    assert slot.peek_one_new() == 0 and slot.peek_latest() == 3
    assert slot.consume_one_new() == 0
    assert slot.consume_all() == [0, 1, 2, 3]  # everything retained, consumed or not
    assert slot.get_unconsumed_count() == 0
    slot.enqueue(4)
    slot.enqueue(5)
    assert slot.consume_latest_and_mark_all_consumed() == 5
    assert slot.get_unconsumed_count() == 0
    assert slot.consume_latest_and_mark_all_consumed() is None


def test_queue_state_and_status_reports() -> None:
    slot = Slot("s", max_queue_length=10, watermark=0.8)
    state = slot.get_queue_state()
    assert state == {"total_count": 0, "unconsumed_count": 0, "consumed_count": 0,
                     "max_length": 10, "watermark_threshold": 8, "oldest_unconsumed": None}
    levels = []
    for i in range(10):
        slot.enqueue(i)
        status = slot.get_queue_status()
        levels.append(status["pressure_level"])
    assert levels == ["low"] * 5 + ["medium", "medium", "high", "high", "critical"]
    assert status == {
        "unconsumed_count": 10, "total_count": 10, "max_length": 10,
        "watermark_threshold": 8, "usage_percentage": 1.0, "pressure_level": "critical",
        "is_full": True, "is_near_full": True,
    }
    assert isinstance(slot.get_queue_state()["oldest_unconsumed"], str)


@pytest.mark.timeout(30)
def test_each_worker_has_its_own_queue() -> None:
    parked = make_routine(None, events=(), policy=None)
    flow = new_flow("slot-workers")
    flow.add_routine(parked, "p")
    with running(thread_pool_size=2) as rt:
        first = rt.exec(flow.flow_id)
        second = rt.exec(flow.flow_id)  # now the flow's default worker
        for i in range(3):
            rt.post(flow.flow_id, "p", "in", {"i": i}, worker_id=first.worker_id)
        rt.post(flow.flow_id, "p", "in", {"i": 99})
        finish_all(rt)
        slot = parked.get_slot("in")
        assert slot.for_worker(first).peek_all_new() == [{"i": 0}, {"i": 1}, {"i": 2}]
        assert slot.for_worker(second).peek_all_new() == [{"i": 99}]
        # Outside any execution the slot addresses the most recently started worker.
        assert slot.get_unconsumed_count() == 1
        with pytest.raises(ValueError, match="not a live worker"):
            from routilux import WorkerState

            slot.for_worker(WorkerState(flow.flow_id))


@pytest.mark.timeout(30)
def test_slots_are_per_runtime_too() -> None:
    parked = make_routine(None, events=(), policy=None)
    flow = new_flow("slot-runtimes")
    flow.add_routine(parked, "p")
    with running(thread_pool_size=1) as a, running(thread_pool_size=1) as b:
        wa, _ = a.post(flow.flow_id, "p", "in", {"from": "a"})
        wb, _ = b.post(flow.flow_id, "p", "in", {"from": "b"})
        slot = parked.get_slot("in")
        assert slot.for_worker(wa).peek_all_new() == [{"from": "a"}]
        assert slot.for_worker(wb).peek_all_new() == [{"from": "b"}]
