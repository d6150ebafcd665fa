"""Automatic pool sizing (``Runtime(thread_pool_size="auto")``, issue #18).

Two parts, so the decisions can be tested without threads or clocks; this module is the
first (the controller), ``_autosizer.py`` the second (the driver):

- ``AutoSizeController.decide(window) -> Decision`` is pure: it takes what one window of
  measurement saw (completions, arrivals, mean busy threads, mean queue depth, the CPU
  share of the pool threads' time, the size) and returns a new size or a hold, with a
  reason that carries the numbers behind it.
- ``AutoSizer`` is the driver: a daemon thread that holds the runtime weakly, samples the
  pool ten times a window, hands each finished window to the controller and applies its
  decisions through the pool's live resize, recording each in the trace
  (``pool.autosize``, then ``pool.resize``). An ``Event`` stops it.

How the controller decides (the signal is throughput, not queue length):

- Little's law gives the size an open workload needs: threads busy = arrival rate x mean
  service time (service time itself is busy threads / throughput, Little's law again).
  The pool follows it with ``HEADROOM`` and a dead band, so steady work does not flap.
- When every thread is busy and work waits, growing is a *probe*: the size goes up (to
  the Little's-law size including the backlog, at least one step), and the next window
  keeps it only if throughput rose by more than the noise (``NOISE_FLOOR``, two
  standard errors of the two counts, or twice the spread of the last held windows'
  throughput, whichever is largest). A failed probe is undone, and the next probe from
  that size tries half the step after a cooldown that doubles with each failure.
- CPU share: the pool threads' CPU seconds per wall second (sampled from each thread's
  CPU clock, so the hot path is untouched). Pure-Python work holds the GIL, so at most
  about one core's worth of it runs at once whatever the thread count. When the pool
  uses ``GIL_SATURATED_RATE`` of a core, more threads cannot drain the queue faster and
  the controller does not grow; growth never goes past the size at which, scaling the
  CPU seen so far, the threads would hold the GIL ``GIL_FILL`` of the time. Work that is
  CPU-heavy (the pool uses ``CPU_HEAVY_RATE`` of a core and each busy thread spends
  ``CPU_HEAVY_SHARE`` of its time on CPU) never gets more than
  ``2 x cpu_count + 2`` threads, and grows by small verified steps only. (The runtime's
  own per-task cost is CPU too: fast I/O-bound tasks at thousands a second use a
  quarter of a core with a tiny share per thread, which is why both numbers count.)
  A pool above that bound whose threads saturate the GIL with a small share each is
  either GIL-bound work spread thin (after a phase change) or mixed work whose waits
  need the threads; a probe *down* (half the size, kept unless throughput falls beyond
  the noise) tells them apart. Probes down also start when the CPU per task rises
  ``WORK_CHANGE``-fold (the work changed; a loaded machine may hide a saturated GIL).

Rejected: queue-length targets (a deep queue of GIL-bound work would get threads that
cannot help) and .NET-style continuous hill climbing (it needs many windows to converge
and moves even in steady state; here a steady window holds).
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ._pool import check_pool_size

logger = logging.getLogger("routilux")

__all__ = [
    "AUTO",
    "AutoSizeController",
    "Decision",
    "Window",
    "parse_thread_pool_size",
]

AUTO = "auto"
DEFAULT_MAX_POOL_SIZE = 64  # threads: the default upper bound of automatic sizing
WINDOW_S = 0.5  # seconds of measurement per decision
SAMPLES_PER_WINDOW = 10  # pool samples (busy, queued, CPU clocks) per window
MIN_COMPLETIONS = 5  # completions a window needs before it is judged; fewer: merged
MAX_MERGED_WINDOWS = 8  # windows merged at most while completions are too few
HEADROOM = 1.1  # threads kept per thread Little's law asks for
NOISE_FLOOR = 0.10  # smallest relative throughput rise that keeps a probe
SHRINK_BELOW = 0.9  # shrink only when Little's law asks for less than this x size ...
SHRINK_PATIENCE = 2  # ... in this many windows in a row
DRAIN_S = 2.0  # seconds over which a probe's size plans to drain the backlog
CPU_HEAVY_RATE = 0.25  # CPU-s per s of the pool threads, and ...
CPU_HEAVY_SHARE = 0.05  # ... CPU-s per busy thread-s: CPU-heavy work, at most 2 x cpus + 2
GIL_SATURATED_RATE = 0.8  # CPU-s per s: the GIL is (nearly) always held; do not grow
GIL_FILL = 0.9  # growth stops at the size whose threads would hold the GIL this much
COOLDOWN_WINDOWS = 2  # windows after a failed probe before the next; doubles per failure
MAX_COOLDOWN_WINDOWS = 32  # the longest wait between probes from one size
WORK_CHANGE = 3.0  # CPU per task rising this many times over: the work changed
NOISE_WINDOWS = 6  # held windows whose throughput spread counts as noise
BUSY_FULL = 0.85  # mean busy threads / size at which the pool counts as fully busy


def parse_thread_pool_size(value: Any) -> tuple[int, bool]:
    """``(size, auto)`` for a ``thread_pool_size`` argument; size is 0 for the shared pool.

    ``"auto"`` is the only string accepted; every other bad value raises an error that
    names both forms. For ``"auto"`` the size is 0 here: the caller picks the start.
    """
    if isinstance(value, str):
        if value == AUTO:
            return 0, True
        raise TypeError(  # a TypeError, as for any other non-int (the string is no size)
            f"thread_pool_size must be an int, got {value!r}; the only string accepted is "
            f"'auto' (a size the runtime adjusts); an int >= 1 is a fixed size, 0 the "
            f"shared 100-thread pool"
        )
    try:
        return check_pool_size(value, allow_zero=True), False
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{exc}; or the string 'auto' for a size the runtime adjusts") from None


def check_max_pool_size(value: Any) -> int:
    """The upper bound of automatic sizing: an int >= 1, or None for the default."""
    if value is None:
        return DEFAULT_MAX_POOL_SIZE
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"max_pool_size must be an int >= 1 or None, got {value!r}")
    if value < 1:
        raise ValueError(f"max_pool_size must be an int >= 1 or None, got {value}")
    return value


def start_size(max_size: int, cpu_count: int | None = None) -> int:
    """Where automatic sizing starts: ``cpu_count + 4`` (as ThreadPoolExecutor), bounded."""
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return max(1, min(max_size, cpus + 4))


@dataclass(frozen=True)
class Window:
    """What the pool did during one measurement window.

    ``busy`` and ``queued`` are means over the window's samples; ``backlog`` is the run
    queue depth at its end; ``cpu_share`` is CPU seconds per busy thread-second of the
    pool's threads (None when the platform gives no per-thread CPU clock).
    """

    duration_s: float
    size: int
    completions: int
    arrivals: int
    busy: float
    queued: float
    backlog: int
    cpu_share: float | None = None

    @property
    def throughput(self) -> float:
        """Completions per second."""
        return self.completions / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def arrival_rate(self) -> float:
        """Activations that joined the pool per second."""
        return self.arrivals / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def service_s(self) -> float | None:
        """Mean seconds a task held a thread (Little's law: busy threads / throughput)."""
        return self.busy / self.throughput if self.completions else None

    @property
    def queue_wait_s(self) -> float | None:
        """Mean seconds a task waited in the run queue (Little's law on the queue)."""
        return self.queued / self.throughput if self.completions else None

    @property
    def cpu_rate(self) -> float | None:
        """CPU seconds the pool threads used per second: cores' worth of work running."""
        return None if self.cpu_share is None else self.cpu_share * self.busy

    def merged(self, later: Window) -> Window:
        """This window and the next one as a single window (for too few completions)."""
        d = self.duration_s + later.duration_s
        share = None
        if self.cpu_share is not None and later.cpu_share is not None:
            busy_s = self.busy * self.duration_s + later.busy * later.duration_s
            cpu = (self.cpu_share * self.busy * self.duration_s
                   + later.cpu_share * later.busy * later.duration_s)
            share = cpu / busy_s if busy_s > 0 else 0.0
        return Window(
            duration_s=d, size=later.size, completions=self.completions + later.completions,
            arrivals=self.arrivals + later.arrivals,
            busy=(self.busy * self.duration_s + later.busy * later.duration_s) / d,
            queued=(self.queued * self.duration_s + later.queued * later.duration_s) / d,
            backlog=later.backlog, cpu_share=share,
        )


@dataclass(frozen=True)
class Decision:
    """What the controller decided after a window, and why.

    ``action``: ``"grow"`` (Little's law), ``"probe"`` (grow, kept only if throughput
    rises), ``"keep"`` (a probe that paid off), ``"revert"`` (one that did not),
    ``"shrink"``, or ``"hold"`` (no change). ``numbers`` are the measurements behind it.
    """

    action: str
    old: int
    new: int
    reason: str
    numbers: dict[str, float | int | None] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.new != self.old

    def detail(self) -> dict[str, Any]:
        """The trace event's ``detail``: old/new size, reason and numbers (JSON-able)."""
        return {"old": self.old, "new": self.new, "reason": self.reason, **self.numbers}


def _ms(s: float | None) -> str:
    if s is None:
        return "?"
    return f"{s * 1000:.3g} ms" if s < 10 else f"{s:.3g} s"


def _rate(x: float) -> str:
    return f"{x:.0f}/s" if x >= 10 else f"{x:.2g}/s"


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


class AutoSizeController:
    """Decides the pool size from one window of measurements at a time; no threads, no clock.

    Guarantees: the size stays within ``1..max_size``; for CPU-heavy work (see the module
    docstring) it never goes above ``2 x cpu_count + 2``; it never grows while the pool
    threads hold the GIL ``GIL_SATURATED_RATE`` of the time; it grows only when every
    thread is busy and work waits (a probe, undone unless throughput rose beyond the
    noise) or when Little's law asks for more threads than it has; a window that
    changes nothing holds, so steady work sees no moves.

    Args:
        start: the size the pool has now.
        max_size: the upper bound (``max_pool_size``).
        cpu_count: cores for the GIL-bound bound (default ``os.cpu_count()``).
    """

    def __init__(self, start: int, max_size: int, cpu_count: int | None = None) -> None:
        self.max_size = max_size
        self.cpu_count = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
        self.cpu_cap = 2 * self.cpu_count + 2
        self.size = max(1, min(start, max_size))
        self._pending: Window | None = None  # too few completions so far: merged onward
        self._merged = 0
        self._probe: tuple[int, Window] | None = None  # (size before, its window)
        self._fails = 0  # failed probes in a row
        self._cooldown = 0  # windows until the next probe is allowed
        self._step: dict[int, int] = {}  # base size -> next probe step after failures
        self._settled: set[int] = set()  # sizes whose probes found no gain: small steps only
        self._shrink_streak = 0
        # Throughputs of recent windows that held at this size: how much the machine
        # itself makes throughput wander (another process's load, say), for the noise.
        self._recent: deque[float] = deque(maxlen=NOISE_WINDOWS)
        self._recent_size = self.size  # the size those windows ran at
        self._down_fails = 0  # failed probes down in a row
        self._descending = False  # the last probe down was kept: try the next one
        self._task_cpu: float | None = None  # CPU seconds per task, last judged window
        self._work_changed = False  # the last window saw the CPU per task jump
        self._down_cooldown = 0  # windows until the next probe down

    # -- the decision --------------------------------------------------------------------
    def decide(self, w: Window) -> Decision:
        """The decision for the window just measured (the pool had ``w.size`` threads)."""
        if w.size != self.size:  # resized behind our back (should not happen): adopt it
            self.size = max(1, min(w.size, self.max_size))
            self._probe = None
        if self._pending is not None:
            w = self._pending.merged(w)
            self._pending = None
        if w.completions < MIN_COMPLETIONS:
            return self._too_few(w)
        self._merged = 0
        if self._cooldown > 0:
            self._cooldown -= 1
        if self._down_cooldown > 0:
            self._down_cooldown -= 1
        nums = self._numbers(w)
        if self._probe is not None:
            d = self._judge_probe(w, nums)
        else:
            d = self._steer(w, nums, verdict="")
        if not (d.action == "keep" or (d.action == "probe" and d.new < d.old)):
            self._descending = False  # a chain of probes down ends at anything else
        if d.action == "hold":
            if self._recent_size != self.size:
                self._recent.clear()
                self._recent_size = self.size
            self._recent.append(w.throughput)
        return d

    def _too_few(self, w: Window) -> Decision:
        if w.completions == 0 and w.arrivals == 0 and w.backlog == 0 and w.busy < 0.5:
            self._merged = 0
            return self._hold(w, "idle: no work arrived or finished", self._numbers(w))
        self._merged += 1
        if self._merged < MAX_MERGED_WINDOWS:
            self._pending = w
            return self._hold(w, f"{w.completions} completions in {w.duration_s:.2g} s: "
                              f"too few to judge, measuring longer", self._numbers(w))
        self._merged = 0
        self._probe = None
        return self._hold(w, f"only {w.completions} completions in {w.duration_s:.2g} s: "
                          "tasks are long for the window; holding", self._numbers(w))

    def _numbers(self, w: Window) -> dict[str, float | int | None]:
        return {
            "throughput": _round(w.throughput), "arrival_rate": _round(w.arrival_rate),
            "service_s": _round(w.service_s), "queue_wait_s": _round(w.queue_wait_s),
            "busy": _round(w.busy, 3), "queued": _round(w.queued, 3), "backlog": w.backlog,
            "cpu_share": _round(w.cpu_share, 3), "cpu_rate": _round(w.cpu_rate, 3),
        }

    @staticmethod
    def noise(a: Window, b: Window) -> float:
        """Relative throughput change two windows can show by chance (2 standard errors
        of the two completion counts, taken as Poisson), at least ``NOISE_FLOOR``."""
        return max(NOISE_FLOOR, 2.0 * math.sqrt(1.0 / a.completions + 1.0 / b.completions))

    def wander(self, size: int) -> float:
        """Twice the relative spread of the throughput of recent windows held at ``size``
        (0 if fewer than 3): on a busy machine, throughput moves by itself."""
        xs = list(self._recent) if self._recent_size == size else []
        if len(xs) < 3:
            return 0.0
        mean = sum(xs) / len(xs)
        if mean <= 0:
            return 0.0
        var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
        return 2.0 * math.sqrt(var) / mean

    def _keep(self, w: Window, nums: dict[str, Any], tried: int, verdict: str) -> Decision:
        """A probe that paid off: steer on from it, or keep its size with the verdict."""
        d = self._steer(w, nums, verdict=verdict)
        if d.changed:
            return d
        rest = d.reason.split(f"{verdict}; ", 1)[-1]
        return self._decision("keep", w, tried, f"keep {tried}: {verdict}; {rest}", nums)

    def _judge_probe(self, w: Window, nums: dict[str, Any]) -> Decision:
        base, before = self._probe  # type: ignore[misc]
        self._probe = None
        tried = self.size
        gain = w.throughput / before.throughput - 1.0 if before.throughput > 0 else 0.0
        noise = max(self.noise(before, w), self.wander(base))
        nums = {**nums, "before_size": base, "before_throughput": _round(before.throughput),
                "gain": _round(gain, 3), "noise": _round(noise, 3)}
        if tried < base:  # a probe down, with the GIL saturated: kept unless throughput fell
            change = (f"throughput {_rate(w.throughput)} at {tried} vs "
                      f"{_rate(before.throughput)} at {base} ({gain * 100:+.0f} %")
            if gain >= -noise:
                self._down_fails = 0
                self._descending = True
                verdict = (f"{change}, within the {noise * 100:.0f} % noise): the threads "
                           f"above {tried} did not add throughput")
                return self._keep(w, nums, tried, verdict)
            self._down_fails += 1
            self._descending = False
            self._down_cooldown = min(MAX_COOLDOWN_WINDOWS,
                                      COOLDOWN_WINDOWS * 2 ** self._down_fails)
            return self._decision("revert", w, base, f"{tried} -> {base}: {change}, beyond "
                                  f"the {noise * 100:.0f} % noise): the threads were "
                                  f"helping; next probe down in {self._down_cooldown} windows",
                                  nums)
        if gain > noise:
            self._fails = 0
            self._step.pop(base, None)
            verdict = (f"throughput rose {gain * 100:.0f} % at {tried} "
                       f"({_rate(before.throughput)} -> {_rate(w.throughput)})")
            return self._keep(w, nums, tried, verdict)
        self._fails += 1
        self._cooldown = min(MAX_COOLDOWN_WINDOWS, COOLDOWN_WINDOWS * 2 ** (self._fails - 1))
        self._step[base] = (tried - base) // 2
        why = (f"throughput {_rate(w.throughput)} at {tried} vs {_rate(before.throughput)} "
               f"at {base} ({gain * 100:+.0f} %, no rise beyond the {noise * 100:.0f} % "
               f"noise)")
        return self._decision("revert", w, base, f"{tried} -> {base}: {why}; next probe in "
                              f"{self._cooldown} windows", nums)

    def _steer(self, w: Window, nums: dict[str, Any], verdict: str) -> Decision:
        size = self.size
        lam = w.arrival_rate
        service = w.service_s or 0.0
        cpu_rate = w.cpu_rate
        share = w.cpu_share or 0.0
        gil_full = cpu_rate is not None and cpu_rate >= GIL_SATURATED_RATE
        cpu_heavy = (cpu_rate is not None and cpu_rate >= CPU_HEAVY_RATE
                     and share >= CPU_HEAVY_SHARE)
        cap = min(self.max_size, self.cpu_cap) if cpu_heavy else self.max_size
        work_cpu = (cpu_rate / w.throughput) if cpu_rate and w.throughput > 0 else None
        was_cpu = self._task_cpu
        changed = (work_cpu is not None and was_cpu is not None
                   and work_cpu > WORK_CHANGE * was_cpu)
        if work_cpu is not None:
            self._task_cpu = work_cpu
        # Threads beyond the size at which the pool would hold the GIL GIL_FILL of the
        # time cannot add throughput (linear scaling of the CPU seen so far).
        gil_room = (math.floor(w.busy * GIL_FILL / cpu_rate) if cpu_rate else self.max_size)
        need = lam * service  # Little's law: threads busy at this arrival rate
        target = max(1, min(cap, math.ceil(need * HEADROOM - 1e-9)))
        nums["need"] = _round(need, 3)
        lead = f"{verdict}; " if verdict else ""
        little = f"arrivals {_rate(lam)} x {_ms(service)} service need {need:.3g} threads"
        cpu = (f"pool threads use {cpu_rate:.2f} CPU-s/s ({w.cpu_share:.2g} of each busy "
               f"thread)" if cpu_rate is not None else "")

        if w.busy > size + 0.5:  # after a shrink, surplus threads finish their tasks first
            return self._hold(w, f"{lead}{w.busy:.1f} threads busy, above the size {size}: "
                              "the surplus is finishing its tasks; measuring again", nums)
        if size > cap:  # CPU-heavy work on more threads than can help (a phase change)
            self._shrink_streak = 0
            return self._decision("shrink", w, cap, f"{lead}{size} -> {cap}: {cpu}: CPU-heavy "
                                  f"work, never above 2 x {self.cpu_count} cpus + 2 = "
                                  f"{self.cpu_cap}", nums)
        if changed:  # a new kind of work: what probes learnt about the old one is stale,
            self._settled.clear()  # and this window mixes the two; judge the next one
            self._step.clear()
            self._cooldown = self._down_cooldown = 0
            self._work_changed = True
            self._shrink_streak = 0
            return self._hold(w, f"{lead}the work changed: {_ms(work_cpu)} CPU per task, "
                              f"was {_ms(was_cpu)}; measuring it for a window", nums)
        if size <= self.cpu_cap:
            self._work_changed = False
        just_changed = self._work_changed  # until a probe down is tried
        full = w.busy >= BUSY_FULL * size
        waiting = w.queued >= max(1.0, 0.5 * size)
        behind = lam > w.throughput * (1.0 + NOISE_FLOOR) and w.backlog >= size
        backlog = f"{w.backlog} queued, {w.busy:.1f} of {size} threads busy"
        # Many busy threads and real CPU use: GIL-bound work spread thin (fewer threads do
        # as well) or mixed work whose waits need them. Only a probe down can tell. Tried
        # when the GIL is saturated, when the work just became CPU-hungrier (a loaded
        # machine may give it less than GIL_SATURATED_RATE), and after a kept probe down;
        # whatever the queue: GIL-bound threads also slow whoever posts, so the queue may
        # be short and Little's law (with service times the GIL stretched) content.
        why_down = ("the GIL is saturated" if gil_full else
                    f"the work changed, now {_ms(work_cpu)} CPU per task" if just_changed else
                    "fewer threads did as well" if self._descending else "")
        if (why_down and size > self.cpu_cap and self._down_cooldown == 0
                and (full or waiting)
                and (just_changed or (cpu_rate or 0.0) >= CPU_HEAVY_RATE)):
            self._shrink_streak = 0
            new = max(self.cpu_cap, size // 2)
            self._probe = (size, w)
            self._work_changed = False
            return self._decision(
                "probe", w, new, f"{lead}{size} -> {new}: {backlog}, {cpu}: {why_down}; "
                f"trying fewer threads, kept unless throughput falls beyond the noise", nums)
        if waiting or behind:
            self._shrink_streak = 0
            if gil_full:
                return self._hold(w, f"{lead}{backlog}, but {cpu}: GIL-bound, more threads "
                                  "cannot drain it faster", nums)
            if not full:
                return self._hold(w, f"{lead}{backlog}: threads are slow to take queued work "
                                  "(waiting for the GIL or a CPU), so more would not help"
                                  + (f"; {cpu}" if cpu else ""), nums)
            if size >= cap:
                bound = (f"2 x {self.cpu_count} cpus + 2 for CPU-heavy work; {cpu}"
                         if cap < self.max_size else "max_pool_size")
                return self._hold(w, f"{lead}{backlog}; at the upper bound {cap}: {bound}",
                                  nums)
            drain = w.backlog / DRAIN_S
            plan = (lam + drain) * service
            nums["plan"] = _round(plan, 3)
            if w.throughput > lam * (1.0 + NOISE_FLOOR) and plan * HEADROOM <= size:
                return self._hold(w, f"{lead}{backlog}, draining: throughput "
                                  f"{_rate(w.throughput)} > arrivals {_rate(lam)}; {little}, "
                                  f"{plan:.3g} with the backlog", nums)
            if self._cooldown > 0:
                return self._hold(w, f"{lead}{backlog}; last probe showed no gain, next in "
                                  f"{self._cooldown} windows", nums)
            settled = size in self._settled
            step = self._step.get(size)
            if step is None:  # small verified steps for CPU-heavy work; doubling otherwise
                step = max(1, math.ceil(size / (8 if settled else 4))) \
                    if cpu_heavy or settled else size
            if step < 1:  # the step search found no gain above this size: settle here
                self._settled.add(size)
                self._step.pop(size, None)
                self._cooldown = MAX_COOLDOWN_WINDOWS
                return self._hold(w, f"{lead}{backlog}; probes above {size} showed no gain; "
                                  f"settled, next probe in {self._cooldown} windows", nums)
            new = size + step
            if not (cpu_heavy or settled):
                new = max(new, math.ceil(plan * HEADROOM - 1e-9))
            new = min(new, cap, max(size + 1, gil_room))
            self._probe = (size, w)
            return self._decision(
                "probe", w, new,
                f"{lead}{size} -> {new}: {backlog}; {little}, plus {w.backlog} queued to "
                f"drain in {DRAIN_S:g} s: {plan:.3g}" + (f"; {cpu}" if cpu else "")
                + f"; kept if throughput rises beyond {NOISE_FLOOR * 100:.0f} %", nums)
        if target > size and full and not gil_full:
            self._shrink_streak = 0
            new = min(target, size + max(1, math.ceil(size / 4))) if cpu_heavy else target
            new = min(new, max(size + 1, gil_room))
            return self._decision("grow", w, new, f"{lead}{size} -> {new}: {little}"
                                  + (f"; {cpu}" if cpu else ""), nums)
        if target < size * SHRINK_BELOW and not waiting:
            self._shrink_streak += 1
            if self._shrink_streak >= SHRINK_PATIENCE:
                self._shrink_streak = 0
                return self._decision("shrink", w, target, f"{lead}{size} -> {target}: "
                                      f"{little} ({w.busy:.1f} of {size} busy, "
                                      f"{w.backlog} queued)", nums)
            return self._hold(w, f"{lead}{little}; {size} threads, shrinking if it lasts",
                              nums)
        self._shrink_streak = 0
        return self._hold(w, f"{lead}keeping up at {size}: {little}, "
                          f"{w.busy:.1f} busy, {w.backlog} queued", nums)

    def _hold(self, w: Window, reason: str, nums: dict[str, Any]) -> Decision:
        return Decision("hold", self.size, self.size, f"hold {self.size}: {reason}", nums)

    def _decision(self, action: str, w: Window, new: int, reason: str,
                  nums: dict[str, Any]) -> Decision:
        new = max(1, min(new, self.max_size))
        d = Decision(action, self.size, new, reason, nums)
        self.size = new
        return d
