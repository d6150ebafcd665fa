"""Finding deadlocks among traced locks: a pure cycle finder and the process-wide wait-for graph.

Design:
- The graph has two kinds of edge: a waiting thread points at the one lock it waits for,
  and a lock points at the threads that own it (one for a lock, every permit holder for a
  semaphore). Only waits are stored here; owners live on the locks themselves and are read
  when a check runs, so an uncontended acquire never touches this module.
- ``find_cycle`` is pure (no threads, no globals) and uses the OR model: a thread is stuck
  only if *every* owner of the lock it waits for is stuck too. For locks that is the plain
  cycle test; for a semaphore it means a free permit holder, who may still release, keeps
  its waiters out of any reported deadlock.
- There is no watchdog thread. A waiting thread calls ``WaitForGraph.check`` each time its
  wait slice expires; checks are serialised by the graph's lock, so "the thread that found
  the cycle first" is well defined. When that thread claims the cycle it leaves the graph
  in the same critical section, so no other member can find (and raise for) the same cycle.
- Why the snapshot cannot invent a cycle: a lock's owner is set after its inner lock is
  taken and cleared before it is released, and a waiter leaves the graph before it sets
  itself as owner. Every thread in a found cycle is blocked inside ``acquire`` while the
  graph lock is held, so none of them can release what the snapshot says it holds.

Rejected: a daemon watchdog polling the graph (one more thread per process to start, stop
and hold weakly, for no faster detection); the AND model for semaphores (false alarms
whenever one permit holder is blocked while another is still running).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection, Hashable, Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T", bound=Hashable)
L = TypeVar("L", bound=Hashable)

JOB_ID_CHARS = 8  # characters of a job id shown in messages; the attributes keep it whole


def find_cycle(
    waits_for: Mapping[T, L],
    owners: Mapping[L, Collection[T]],
    start: T | None = None,
) -> list[tuple[T, L]] | None:
    """Find threads that wait for each other in a cycle.

    Args:
        waits_for: each waiting thread and the lock it waits for.
        owners: each lock and the threads that hold it (several for a semaphore). A lock
            missing here, or with no owners, is about to be free: its waiters are not stuck.
        start: if given, only a cycle through this thread counts.

    Returns:
        The cycle as ``[(thread, lock it waits for), ...]``, where each lock is owned by
        the next thread and the last lock by the first thread (a thread waiting for a lock
        it holds itself is a cycle of one). With ``start``, the shortest cycle through it,
        beginning with it. ``None`` when no thread is stuck (or ``start`` is in no cycle).
    """
    # The stuck threads: the greatest set in which every waiter's lock has owners and all
    # of them are in the set. Start from every waiter and drop those that can still be woken.
    stuck = {t for t, lock in waits_for.items() if owners.get(lock)}
    while True:
        free = [t for t in stuck if any(o not in stuck for o in owners[waits_for[t]])]
        if not free:
            break
        stuck.difference_update(free)
    if not stuck:
        return None

    def successors(thread: T) -> list[T]:
        return _ordered(owners[waits_for[thread]])

    if start is not None:
        if start not in stuck:
            return None
        parent: dict[T, T] = {}
        queue: deque[T] = deque([start])
        while queue:
            thread = queue.popleft()
            for nxt in successors(thread):
                if nxt == start:
                    path = [thread]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    path.reverse()
                    return [(t, waits_for[t]) for t in path]
                if nxt not in parent:
                    parent[nxt] = thread
                    queue.append(nxt)
        return None  # start waits behind a cycle it is not part of

    # Every successor of a stuck thread is stuck, so walking always closes a loop.
    thread = next(t for t in waits_for if t in stuck)
    seen: dict[T, int] = {}
    walk: list[T] = []
    while thread not in seen:
        seen[thread] = len(walk)
        walk.append(thread)
        thread = successors(thread)[0]
    return [(t, waits_for[t]) for t in walk[seen[thread] :]]


def _ordered(items: Iterable[T]) -> list[T]:
    """Items in a stable order where they can be sorted (thread idents can), else as given."""
    items = list(items)
    try:
        return sorted(items)  # type: ignore[type-var]
    except TypeError:
        return items


def describe_cycle(cycle: list[dict[str, Any]]) -> str:
    """The cycle in plain words, one clause per thread, as used by ``DeadlockError``.

    Example: "worker-2 (routine 'a', job 1f3e) holds 'cache' and waits for 'db';
    worker-5 (routine 'b') holds 'db' and waits for 'cache'".
    """
    clauses = []
    for step in cycle:
        where = []
        if step.get("routine") is not None:
            where.append(f"routine {step['routine']!r}")
        if step.get("job_id") is not None:
            where.append(f"job {str(step['job_id'])[:JOB_ID_CHARS]}")
        who = str(step["thread_name"])
        if where:
            who += f" ({', '.join(where)})"
        clauses.append(f"{who} holds {step['holds']!r} and waits for {step['waits_for']!r}")
    return "; ".join(clauses)


class Waiter(NamedTuple):
    """What the graph knows about one waiting thread, captured when it starts to wait."""

    lock: Any  # a traced primitive: has ``name`` and ``_owner_idents()``
    thread_name: str
    routine: str | None
    job_id: str | None


class Deadlock(NamedTuple):
    """A cycle found by ``WaitForGraph.check``."""

    cycle: list[dict[str, Any]]
    locks: list[str]
    message: str
    claimed: bool  # True: the checking thread left the graph and must raise


class WaitForGraph:
    """The waiting threads of the process, and the cycle check they run on each other.

    Thread-safe. Holds its waiters' locks strongly only while they wait.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: dict[int, Waiter] = {}
        # Cycles already reported without raising; forgotten when one of their threads
        # stops waiting, so the same cycle forming again is reported again.
        self._reported: set[frozenset[tuple[int, int]]] = set()

    def add(self, thread: int, waiter: Waiter) -> None:
        with self._mutex:
            self._waiters[thread] = waiter

    def discard(self, thread: int) -> None:
        with self._mutex:
            self._waiters.pop(thread, None)
            if self._reported:
                self._reported = {key for key in self._reported if all(t != thread for t, _ in key)}

    def waiting(self) -> dict[int, Waiter]:
        """A snapshot of the waiting threads (for diagnostics)."""
        with self._mutex:
            return dict(self._waiters)

    def check(self, thread: int, claim: bool) -> Deadlock | None:
        """Look for a cycle through ``thread``.

        Args:
            thread: the ident of a waiting thread.
            claim: take the cycle: ``thread`` leaves the graph (it is going to raise), which
                breaks the cycle for everybody else. Otherwise a cycle is returned only the
                first time it is seen.

        Returns:
            The cycle, or ``None`` if there is none, or it was already reported.
        """
        with self._mutex:
            if thread not in self._waiters:
                return None
            waits_for = {t: w.lock for t, w in self._waiters.items()}
            owners = {lock: set(lock._owner_idents()) for lock in waits_for.values()}
            steps = find_cycle(waits_for, owners, start=thread)
            if steps is None:
                return None
            if claim:
                waiters = dict(self._waiters)
                del self._waiters[thread]
            else:
                key = frozenset((t, id(lock)) for t, lock in steps)
                if key in self._reported:
                    return None
                self._reported.add(key)
                waiters = self._waiters
            cycle = [
                {
                    "thread": t,
                    "thread_name": waiters[t].thread_name,
                    "routine": waiters[t].routine,
                    "job_id": waiters[t].job_id,
                    "holds": steps[i - 1][1].name,
                    "waits_for": lock.name,
                }
                for i, (t, lock) in enumerate(steps)
            ]
        message = describe_cycle(cycle)
        hint = getattr(steps[0][1], "_SELF_WAIT_HINT", None)
        if len(steps) == 1 and hint:
            message += f" ({hint})"
        return Deadlock(cycle, [step["waits_for"] for step in cycle], message, claim)
