"""Helpers shared by the routilux_jupyter tests (imported as ``jupyter_helpers``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from routilux import Flow, Routine, Runtime
from routilux.activation_policies import immediate_policy
from util import SharedCounter  # noqa: F401  (re-exported for the jupyter tests)

JOIN_TIMEOUT = 30.0  # seconds; far beyond what any job here needs


def make_flow(logic: Callable[..., Any] | None = None, routine: str = "work") -> Flow:
    """A one-routine flow with a fresh id (the FlowRegistry is process-wide)."""

    def nothing(slot_data, policy_message, worker_state):
        return None

    r = Routine()
    r.add_slot("in")
    r.add_event("out")
    r.set_logic(logic or nothing)
    r.set_activation_policy(immediate_policy())
    flow = Flow(f"jupyter-{uuid.uuid4().hex[:12]}")
    flow.add_routine(r, routine)
    return flow


def post_many(rt: Runtime, flow: Flow, n: int, routine: str = "work") -> None:
    for i in range(n):
        rt.post(flow.flow_id, routine, "in", {"i": i})


def finish(rt: Runtime, timeout: float = JOIN_TIMEOUT) -> None:
    assert rt.wait_until_all_jobs_finished(timeout=timeout), rt.statistics()


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = JOIN_TIMEOUT) -> None:
    """Poll state that is only observable by polling (never to let time pass)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.005)
