"""Activation policies: ``policy(slots, worker_state) -> (fire, data_slice, message)``.

The runtime evaluates a routine's policy once per arrival, right after the enqueue, under
a per-(worker, routine) lock, so enqueue + decide + consume is atomic (api.md §6). The
``slots`` mapping is bound to the arriving worker's queues.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from ._context import current_activation
from .._validate import check_number

logger = logging.getLogger("routilux")

Policy = Callable[[dict[str, Any], Any], tuple[bool, dict[str, list[Any]], Any]]


def _tag(fn: Policy, kind: str, config: dict[str, Any], description: str) -> Policy:
    fn._policy_type = kind  # type: ignore[attr-defined]
    fn._policy_config = config  # type: ignore[attr-defined]
    fn._policy_description = description  # type: ignore[attr-defined]
    return fn


def immediate_policy() -> Policy:
    """Fire when any slot has a new item; consume all new items of every slot."""

    def policy(slots: dict[str, Any], worker_state: Any) -> tuple[bool, dict, Any]:
        data = {}
        fire = False
        for name, slot in slots.items():
            items = slot.consume_all_new()
            data[name] = items
            if items:
                fire = True
        if not fire:
            return False, {}, None
        return True, data, {"reason": "immediate"}

    return _tag(policy, "immediate", {}, "activate on every arrival")


def all_slots_ready_policy(match_job: bool = False) -> Policy:
    """Fire when every slot has a new item; consume the oldest new item of each (a barrier).

    Args:
        match_job: pair only items of the arriving item's job, so concurrent jobs sharing
            one worker never mix their data (ours; plain FIFO pairing is upstream's).
    """
    if not isinstance(match_job, bool):
        raise TypeError(f"match_job must be a bool, got {match_job!r}")

    def policy(slots: dict[str, Any], worker_state: Any) -> tuple[bool, dict, Any]:
        if match_job:
            act = current_activation()
            job = act.job if act is not None else None
            # One loop that stops at the first slot without the job (most arrivals at a
            # barrier): no list comprehension or generator frame per evaluation.
            queues = []
            for slot in slots.values():
                q = slot._q()
                if not q.has_job(job):
                    return False, {}, None
                queues.append(q)
            data = {}
            for name, q in zip(slots, queues):
                _found, item = q.consume_oldest_of_job(job)
                data[name] = [item]
            return True, data, {"reason": "all_slots_ready"}
        if not all(slot.get_unconsumed_count() > 0 for slot in slots.values()):
            return False, {}, None
        data = {name: [slot.consume_one_new()] for name, slot in slots.items()}
        return True, data, {"reason": "all_slots_ready"}

    desc = "barrier: one item from every slot" + (", same job" if match_job else "")
    return _tag(policy, "all_slots_ready", {"match_job": match_job}, desc)


def batch_size_policy(min_batch_size: int) -> Policy:
    """Fire when every slot holds ``min_batch_size`` new items; consume exactly that many."""
    if not isinstance(min_batch_size, int) or isinstance(min_batch_size, bool):
        raise TypeError(f"min_batch_size must be an int, got {min_batch_size!r}")
    if min_batch_size < 1:
        raise ValueError(f"min_batch_size must be >= 1, got {min_batch_size}")
    n = min_batch_size

    def policy(slots: dict[str, Any], worker_state: Any) -> tuple[bool, dict, Any]:
        if not all(slot.get_unconsumed_count() >= n for slot in slots.values()):
            return False, {}, None
        data = {name: [slot.consume_one_new() for _ in range(n)] for name, slot in slots.items()}
        return True, data, {"reason": "batch_ready", "batch_size": n}

    return _tag(policy, "batch_size", {"min_batch_size": n}, f"batches of {n}")


def time_interval_policy(min_interval_seconds: float) -> Policy:
    """Fire on the first arrival, then at most once per interval (per worker and routine).

    Items arriving while throttled are not stranded: the runtime re-evaluates once the
    interval has passed.
    """
    interval = float(check_number(  # type: ignore[arg-type]
        "min_interval_seconds", min_interval_seconds, minimum=0.0, unit=" seconds"))

    def policy(slots: dict[str, Any], worker_state: Any) -> tuple[bool, dict, Any]:
        act = current_activation()
        rid = act.routine_id if act is not None else None
        store = getattr(worker_state, "_policy_state", None)
        key = (rid, "time_interval")
        now = time.time()
        last = store.get(key) if store is not None else None
        if last is not None and now - last < interval:
            return False, {}, None
        data = {name: slot.consume_all_new() for name, slot in slots.items()}
        if not any(data.values()):
            return False, {}, None
        if store is not None:
            store[key] = now
        return True, data, {
            "reason": "time_interval_met", "interval": interval, "last_activation": now,
        }

    return _tag(policy, "time_interval", {"min_interval_seconds": interval},
                f"at most once per {interval:g} s")


def custom_policy(check_function: Callable[[dict[str, Any], Any], Any]) -> Policy:
    """Fire when ``check_function(slots, worker_state)`` is truthy; consume all new items.

    ``check_function`` may instead return a full ``(fire, data_slice, message)`` triple,
    which is used as-is.
    """
    if not callable(check_function):
        raise TypeError(f"check_function must be callable, got {type(check_function).__name__}")

    def policy(slots: dict[str, Any], worker_state: Any) -> tuple[bool, dict, Any]:
        result = check_function(slots, worker_state)
        if isinstance(result, tuple) and len(result) == 3:
            return result
        if not result:
            return False, {}, None
        data = {name: slot.consume_all_new() for name, slot in slots.items()}
        return True, data, {"reason": "custom_policy_met"}

    return _tag(policy, "custom", {}, getattr(check_function, "__doc__", None) or "custom")


def breakpoint_policy(routine_id: str) -> Policy:
    """Deprecated: never fires; moves new items into ``worker_state.debug_data[routine_id]``."""

    def policy(slots: dict[str, Any], worker_state: Any) -> tuple[bool, dict, Any]:
        captured = {name: slot.consume_all_new() for name, slot in slots.items()}
        if worker_state is not None:
            bucket = worker_state.debug_data.setdefault(routine_id, [])
            bucket.append(captured)
        return False, {}, None

    return _tag(policy, "breakpoint", {"routine_id": routine_id}, "never activates (debug)")
