"""Helpers shared by the routilux runtime tests.

- ``running(...)``: a Runtime that is always shut down (and the shared pool reset when it
  was built with ``thread_pool_size=0``), for ``with running(...) as rt:``.
- ``make_routine(...)``: a Routine from a logic function, its slots, events and policy.
- ``new_flow(...)``: a Flow with a unique id (the FlowRegistry is process-wide).
- ``Recorder``: a thread-safe list that tests append to from logic and can wait on.
- ``Concurrency``: counts logic calls running at once and remembers the maximum.
- ``wait_until(...)``: wait on a condition with a deadline, for state the runtime exposes
  only by polling (never used to wait for "enough time to pass").
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import routilux
from routilux import Flow, Routine, Runtime, immediate_policy

JOIN_TIMEOUT = 30.0  # seconds; far beyond what any thread or job here needs
SHUTDOWN_TIMEOUT = 10.0  # seconds a fixture's shutdown may drain


@contextlib.contextmanager
def running(*args: Any, **kwargs: Any) -> Iterator[Runtime]:
    """A Runtime shut down on exit, whatever the test did; resets the shared pool if used."""
    rt = Runtime(*args, **kwargs)
    shared = rt.thread_pool is None
    try:
        yield rt
    finally:
        rt.shutdown(wait=True, timeout=SHUTDOWN_TIMEOUT)
        if shared:
            routilux.reset_worker_manager()


def new_flow(prefix: str = "test", **kwargs: Any) -> Flow:
    """A Flow with a fresh id, so tests never resolve each other's flows by name."""
    return Flow(f"{prefix}-{uuid.uuid4().hex[:12]}", **kwargs)


_DEFAULT = object()


def make_routine(
    logic: Callable[..., Any] | None = None,
    slots: Iterable[str] = ("in",),
    events: Iterable[str] = ("out",),
    policy: Any = _DEFAULT,
    **slot_kwargs: Any,
) -> Routine:
    """A plain Routine with ``logic``; ``policy`` defaults to ``immediate_policy()``."""
    r = Routine()
    for name in slots:
        r.add_slot(name, **slot_kwargs)
    for name in events:
        r.add_event(name)
    if logic is not None:
        r.set_logic(logic)
    if policy is _DEFAULT:
        policy = immediate_policy()
    if policy is not None:
        r.set_activation_policy(policy)
    return r


class SharedCounter(Routine):
    """The docs' wrong counter: logic increments an instance attribute (shared state)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.set_activation_policy(immediate_policy())
        self.counter = 0

    def logic(self, slot_data, policy_message, worker_state):
        self.counter += 1


class Recorder:
    """A list that logic running on pool threads appends to; tests wait for a length."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self.items)

    def snapshot(self) -> list[Any]:
        with self._cond:
            return list(self.items)

    def wait_for(self, count: int, timeout: float = JOIN_TIMEOUT) -> list[Any]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.items) >= count, timeout)
            items = list(self.items)
        assert ok, f"expected {count} records within {timeout} s, got {len(items)}: {items!r}"
        return items


class Concurrency:
    """``with conc:`` around a logic body; ``conc.max`` is the most that overlapped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0
        self.max = 0

    def __enter__(self) -> Concurrency:  # noqa: PYI034 - final in spirit
        with self._lock:
            self.now += 1
            self.max = max(self.max, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.now -= 1


def wait_until(
    predicate: Callable[[], bool], timeout: float = JOIN_TIMEOUT, what: str = "condition"
) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.002)


def finish_all(rt: Runtime, timeout: float = JOIN_TIMEOUT) -> None:
    """Wait until every job of ``rt`` is terminal; fail (with counts) if that takes too long."""
    if not rt.wait_until_all_jobs_finished(timeout=timeout):
        raise AssertionError(f"jobs still running after {timeout} s: {rt.statistics()}")


def statuses(jobs: Iterable[Any]) -> dict[str, int]:
    """status -> count over ``jobs``."""
    out: dict[str, int] = {}
    for job in jobs:
        out[str(job.status)] = out.get(str(job.status), 0) + 1
    return out


def new_threads(baseline: set[threading.Thread]) -> list[threading.Thread]:
    """Live threads that were not in ``baseline``."""
    return [t for t in threading.enumerate() if t not in baseline and t.is_alive()]
