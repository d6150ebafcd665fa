"""AutoSizer: the driver of automatic pool sizing (``Runtime(thread_pool_size="auto")``).

A daemon thread that holds the runtime weakly, samples the pool ten times a window
(busy threads, queue depth, completions, the threads' CPU clocks), hands each finished
window to the pure ``AutoSizeController`` (``_autosize.py``, where the decision rules are
described) and applies its decisions through the pool's live resize, recording each in
the trace (``pool.autosize``, then ``pool.resize``). An ``Event`` stops it.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

from ._autosize import SAMPLES_PER_WINDOW, WINDOW_S, AutoSizeController, Decision, Window

# The runtime (``_runtime.Runtime``) is typed ``Any`` here: it imports this module, and the
# layer test (tests/routilux/test_layers.py) counts type-only imports as arrows too.
Runtime = Any

logger = logging.getLogger("routilux")

__all__ = ["AutoSizer"]


class _CpuClocks:
    """CPU seconds used by a pool's threads, from each thread's own CPU clock.

    ``time.pthread_getcpuclockid`` is called while the pool lock is held, when every
    thread in the pool's map is alive; the clock id names the kernel thread, so reading it
    later is safe (a thread that ended raises OSError and is dropped). Without per-thread
    clocks (not Linux/BSD), ``read`` returns None and the controller relies on probes.
    """

    def __init__(self) -> None:
        self.available = hasattr(time, "pthread_getcpuclockid")
        self._clocks: dict[int, int] = {}
        self._last: dict[int, float] = {}

    def refresh_locked(self, idents: Any) -> None:
        if not self.available:
            return
        for ident in idents:
            if ident not in self._clocks:
                try:
                    self._clocks[ident] = time.pthread_getcpuclockid(ident)
                except OSError:
                    pass

    def read(self, alive: set[int]) -> float | None:
        """CPU seconds the threads used since the last read (threads seen both times)."""
        if not self.available:
            return None
        total = 0.0
        now: dict[int, float] = {}
        for ident, clk in list(self._clocks.items()):
            if ident not in alive:
                del self._clocks[ident]
                continue
            try:
                t = time.clock_gettime(clk)
            except OSError:
                del self._clocks[ident]
                continue
            now[ident] = t
            # A thread first read now counts its whole CPU time: it started recently.
            total += t - self._last.get(ident, 0.0)
        self._last = now
        return total


class AutoSizer:
    """Runs an ``AutoSizeController`` against a live runtime from a daemon thread.

    Holds the runtime weakly (a dropped runtime ends the thread). ``stop()`` is
    synchronous: once it returns no further resize is applied, which is what lets a
    user's ``resize(n)`` win.
    """

    def __init__(self, runtime: Runtime, max_size: int, start: int,
                 window_s: float = WINDOW_S) -> None:
        self._rt = weakref.ref(runtime)
        self.controller = AutoSizeController(start, max_size)
        self.max_size = max_size
        self.window_s = window_s
        self.last: Decision | None = None
        self._lock = threading.Lock()  # held while a decision is applied, and by stop()
        self._stopped = False
        self._stop = threading.Event()
        self._clocks = _CpuClocks()
        self._thread = threading.Thread(
            target=self._loop, name=f"RoutiluxAutoSize-{id(runtime):x}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop deciding: no decision is applied after this returns.

        The thread itself is joined for at most ``timeout`` seconds (shutdown passes what
        is left of its budget); it is a daemon and ends at its next wake-up anyway.
        """
        self._stop.set()
        with self._lock:
            self._stopped = True
        t = self._thread
        if timeout > 0 and t.is_alive() and t is not threading.current_thread():
            t.join(timeout)

    @property
    def running(self) -> bool:
        return not self._stopped

    def _sample(self, rt: Runtime) -> tuple[int, int, int, set[int]]:
        pool = rt._pool
        with pool.lock:
            ps = pool.statistics_locked()
            idents = set(pool._threads)
            self._clocks.refresh_locked(idents)
        return ps.busy, ps.queued, ps.completed, idents

    def _loop(self) -> None:
        rt = self._rt()
        if rt is None:
            return
        tick = self.window_s / SAMPLES_PER_WINDOW
        busy, queued, completed, alive = self._sample(rt)
        self._clocks.read(alive)
        start_t = time.monotonic()
        start_completed, start_in_system = completed, busy + queued
        busy_sum = queued_sum = 0.0
        n = 0
        del rt
        while not self._stop.wait(tick):
            rt = self._rt()
            if rt is None or rt._shut_down:
                return
            busy, queued, completed, alive = self._sample(rt)
            busy_sum += busy
            queued_sum += queued
            n += 1
            now = time.monotonic()
            # By the clock, not the sample count: with many GIL-bound threads this thread
            # waits its turn for the GIL at every wake-up (up to threads x the switch
            # interval), and a window of ten samples would stretch over seconds.
            if now - start_t >= self.window_s:
                cpu = self._clocks.read(alive)
                mean_busy = busy_sum / n
                done = completed - start_completed
                w = Window(
                    duration_s=now - start_t, size=self.controller.size, completions=done,
                    arrivals=max(0, done + busy + queued - start_in_system),
                    busy=mean_busy, queued=queued_sum / n, backlog=queued,
                    cpu_share=(cpu / (mean_busy * (now - start_t))
                               if cpu is not None and mean_busy > 0 else
                               (None if cpu is None else 0.0)),
                )
                try:
                    self._apply(rt, self.controller.decide(w))
                except Exception:  # our machinery: log, keep the pool as it is
                    logger.exception("routilux: automatic pool sizing failed; this is a bug "
                                     "in routilux")
                start_t = time.monotonic()
                busy, queued, completed, alive = self._sample(rt)
                self._clocks.read(alive)
                start_completed, start_in_system = completed, busy + queued
                busy_sum = queued_sum = 0.0
                n = 0
            del rt

    def _apply(self, rt: Runtime, d: Decision) -> None:
        with self._lock:
            if self._stopped:
                return
            self.last = d
            if d.action == "hold":
                return
            tr = rt._tracer
            if tr is not None:
                tr.record("pool.autosize", None, None, d.action, d.new, d.detail(), None)
            if d.changed:
                old = rt._pool.resize(d.new)
                rt.thread_pool_size = d.new
                if tr is not None:
                    tr.record("pool.resize", None, None, None, d.new, old, None)

    def record(self, rt: Runtime, action: str, old: int, new: int, reason: str) -> None:
        """Trace a switch (``"on"``/``"off"``) that is not a controller decision.

        ``old`` is the size before the switch, ``new`` the size it leaves (for ``"off"``,
        the size the user's ``resize(n)`` asked for).
        """
        d = Decision(action, old, new, reason)
        self.last = d
        tr = rt._tracer
        if tr is not None:
            tr.record("pool.autosize", None, None, action, new, d.detail(), None)
