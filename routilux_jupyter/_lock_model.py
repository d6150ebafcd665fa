"""The lock table's data: contention per traced lock, folded event by event.

One ``LockRow`` per lock name, updated in place by ``LockTable`` as ``lock.wait``,
``lock.acquired``, ``lock.timeout``, ``lock.released`` and ``deadlock.detected`` events
arrive: O(1) per event (the holders' list is a handful of (routine, site) pairs), and
bounded by the number of locks, whatever the trace size. The model keeps the bars (a
wait is a bar on its thread's lane); this module keeps only the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["MAX_CAUSED_ROWS", "MAX_LOCK_ROWS", "CausedBy", "LockRow", "LockTable"]

MAX_LOCK_ROWS = 12  # rows of the lock table sent to the browser (by total wait)
MAX_CAUSED_ROWS = 3  # holders (routine, site) sent per lock, most waiting caused first
_DIGITS = 5
_NUMBER = (int, float)


def _r(x: float) -> float:
    return round(x, _DIGITS)


@dataclass
class CausedBy:
    """Waiting one holder caused: all of it charged to its routine and site (Go's mutex
    profile charges contention to whoever held the lock, which is where the fix goes)."""

    routine: str | None
    site: str | None  # "file:line" where the holder took (or released) the lock
    total_s: float = 0.0
    max_s: float = 0.0  # the most waiting one hold caused
    holds: int = 0  # holds that others waited for

    def as_list(self) -> list[Any]:
        return [self.routine, self.site, _r(self.total_s), _r(self.max_s), self.holds]


@dataclass
class LockRow:
    """What the trace says about one traced lock, as of the last event fed.

    ``waits`` are contended acquisitions and their total/max wait is charged to the
    waiters; ``caused`` charges the same waiting to the holders (routine and site), biggest
    first. ``holder`` is the thread known to hold it now: the one a waiter saw, or the one
    that took it after a wait, until its ``lock.released``; ``waiters`` are the threads
    still waiting.
    """

    name: str
    waits: int = 0
    total_wait_s: float = 0.0
    max_wait_s: float = 0.0
    timeouts: int = 0
    holder: str | None = None
    waiters: list[str] = field(default_factory=list)
    deadlocked: bool = False
    caused: list[CausedBy] = field(default_factory=list)

    def charge(self, routine: str | None, site: str | None, seconds: float) -> None:
        for row in self.caused:
            if row.routine == routine and row.site == site:
                break
        else:
            row = CausedBy(routine, site)
            self.caused.append(row)
        row.total_s += seconds
        row.max_s = max(row.max_s, seconds)
        row.holds += 1
        self.caused.sort(key=lambda c: (-c.total_s, str(c.routine), str(c.site)))

    def as_list(self) -> list[Any]:
        return [
            self.name,
            self.waits,
            _r(self.total_wait_s),
            _r(self.max_wait_s),
            self.holder,
            list(self.waiters),
            self.deadlocked,
            [c.as_list() for c in self.caused[:MAX_CAUSED_ROWS]],
        ]

    def copy(self) -> LockRow:
        """A deep copy for a snapshot (the live row keeps changing)."""
        return replace(self, waiters=list(self.waiters), caused=[replace(c) for c in self.caused])


class LockTable:
    """Every traced lock seen, and whether the table changed since the last message."""

    def __init__(self) -> None:
        self._rows: dict[str, LockRow] = {}
        self.changed = False

    def row(self, name: Any) -> LockRow:
        key = str(name)
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = LockRow(key)
        self.changed = True
        return row

    def wait(self, name: Any, thread_name: str, detail: Any) -> None:
        """``lock.wait``: one more contended acquisition; the holder the waiter saw."""
        lock = self.row(name)
        lock.waits += 1
        if thread_name not in lock.waiters:
            lock.waiters.append(thread_name)
        if isinstance(detail, dict) and detail.get("holder_name"):
            lock.holder = str(detail["holder_name"])

    def done(self, name: Any, thread_name: str, waited: Any, acquired: bool) -> None:
        """``lock.acquired`` (after a wait) or ``lock.timeout``: the wait ends."""
        lock = self.row(name)
        if thread_name in lock.waiters:
            lock.waiters.remove(thread_name)
        if isinstance(waited, _NUMBER):
            lock.total_wait_s += waited
            lock.max_wait_s = max(lock.max_wait_s, waited)
        if acquired:
            lock.holder = thread_name
        else:
            lock.timeouts += 1

    def released(self, name: Any, thread_name: str, routine: Any, detail: Any) -> None:
        """``lock.released``: the holder lets go; the waiting it caused is charged to it."""
        lock = self.row(name)
        if lock.holder == thread_name:
            lock.holder = None
        caused = detail.get("caused_s") if isinstance(detail, dict) else None
        if isinstance(caused, _NUMBER) and not isinstance(caused, bool):
            site = detail.get("site")
            lock.charge(routine, None if site is None else str(site), float(caused))

    def deadlock(self, name: Any, detail: Any, t: float) -> dict[str, Any]:
        """``deadlock.detected``: mark every lock of the cycle; the finding to list."""
        message = detail.get("message") if isinstance(detail, dict) else None
        cycle = detail.get("cycle") if isinstance(detail, dict) else None
        locks = {n.strip() for n in str(name or "").split(",") if n.strip()}
        for step in cycle if isinstance(cycle, list) else ():
            if isinstance(step, dict):
                locks.update(str(step[k]) for k in ("holds", "waits_for") if k in step)
        for lock in locks:
            self.row(lock).deadlocked = True
        return {
            "kind": "deadlock",
            "severity": "high",
            "title": f"Deadlock: {message or 'threads wait for each other: ' + str(name)}",
            "key": "deadlock:" + ",".join(sorted(locks)),
            "t": t,
        }

    def rows(self) -> list[LockRow]:
        """Every row, most waiting first."""
        return sorted(self._rows.values(), key=lambda r: (-r.total_wait_s, -r.waits, r.name))

    def message(self, consume: bool = True) -> list[list[Any]]:
        """The rows the browser shows (at most ``MAX_LOCK_ROWS``); ``consume`` clears
        ``changed`` (a delta does; the reconnect frame does not)."""
        if consume:
            self.changed = False
        return [row.as_list() for row in self.rows()[:MAX_LOCK_ROWS]]
