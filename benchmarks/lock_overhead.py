"""Cost of an uncontended acquire + release: routilux.sync against threading.

Prints nanoseconds per acquire/release pair (median of repeated runs) and the ratio to the
matching threading primitive. The target for TracedLock is <= 3x threading.Lock. Then the
same pair taken while another lock of the same kind is held (the path that keeps the lock
order: the edge is known after the first time), without a tracer and with one. Never
asserts: timings depend on the machine.

On a machine shared with other work, ``--cpu`` times each run in this thread's CPU time
and keeps the fastest run: time the thread spent descheduled is then not counted, which
makes the ratios repeatable on a loaded machine (the default, wall-clock medians, is what
the results table has always used).

    python benchmarks/lock_overhead.py [--pairs 200000] [--repeats 15] [--cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routilux.sync import TracedLock, TracedRLock, TracedSemaphore
from routilux.trace import Tracer

TARGET_RATIO = 3.0  # TracedLock vs threading.Lock, uncontended
_clock = time.perf_counter_ns  # --cpu: time.thread_time_ns
_pick: Callable[[list[float]], float] = statistics.median  # --cpu: min


def _explicit(lock: object, pairs: int) -> float:
    acquire, release = lock.acquire, lock.release  # type: ignore[attr-defined]
    loop = range(pairs)
    start = _clock()
    for _ in loop:
        acquire()
        release()
    return (_clock() - start) / pairs


def _with(lock: object, pairs: int) -> float:
    loop = range(pairs)
    start = _clock()
    for _ in loop:
        with lock:  # type: ignore[attr-defined]
            pass
    return (_clock() - start) / pairs


def _empty(_lock: object, pairs: int) -> float:
    loop = range(pairs)
    start = _clock()
    for _ in loop:
        pass
    return (_clock() - start) / pairs


def _median_ns(
    run: Callable[[object, int], float], lock: object, pairs: int, repeats: int
) -> float:
    run(lock, pairs // 10)  # warm up
    return _pick([run(lock, pairs) for _ in range(repeats)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000, help="pairs per run")
    parser.add_argument("--repeats", type=int, default=15, help="runs; the median is shown")
    parser.add_argument("--cpu", action="store_true",
                        help="thread CPU time, fastest run (for a loaded machine)")
    args = parser.parse_args(argv)
    global _clock, _pick
    if args.cpu:
        _clock, _pick = time.thread_time_ns, min
    else:
        _clock, _pick = time.perf_counter_ns, statistics.median

    loop_ns = _median_ns(_empty, None, args.pairs, args.repeats)
    cases = [
        ("Lock", threading.Lock(), TracedLock("bench")),
        ("RLock", threading.RLock(), TracedRLock("bench")),
        ("Semaphore", threading.Semaphore(1), TracedSemaphore("bench")),
    ]
    how = "fastest CPU time" if args.cpu else "median"
    print(f"uncontended acquire+release, {how} of {args.repeats} x {args.pairs} pairs")
    print(f"(python {sys.version.split()[0]}; empty loop {loop_ns:.1f} ns/iteration, included)")
    print()
    print(f"{'primitive':<10} {'style':<16} {'threading ns':>13} {'traced ns':>10} {'ratio':>6}")
    lock_ratio = None
    for label, reference, traced in cases:
        for style, run in (("acquire/release", _explicit), ("with", _with)):
            ref_ns = _median_ns(run, reference, args.pairs, args.repeats)
            traced_ns = _median_ns(run, traced, args.pairs, args.repeats)
            ratio = traced_ns / ref_ns
            if label == "Lock" and style == "acquire/release":
                lock_ratio = ratio
            print(f"{label:<10} {style:<16} {ref_ns:>13.1f} {traced_ns:>10.1f} {ratio:>6.2f}")
    print()
    verdict = "within" if lock_ratio is not None and lock_ratio <= TARGET_RATIO else "OVER"
    print(
        f"TracedLock / threading.Lock = {lock_ratio:.2f} ({verdict} the {TARGET_RATIO:g}x target)"
    )
    print()
    print("nested: the pair taken while holding another lock (lock-order path, edge known)")
    ref_outer, ref_inner = threading.Lock(), threading.Lock()
    with ref_outer:
        ref_ns = _median_ns(_explicit, ref_inner, args.pairs, args.repeats)
    tracer = Tracer(capacity=16)
    for label, outer, inner in (
        ("no tracer", TracedLock("outer"), TracedLock("inner")),
        ("tracer", TracedLock("outer", tracer=tracer), TracedLock("inner", tracer=tracer)),
    ):
        with outer:
            traced_ns = _median_ns(_explicit, inner, args.pairs, args.repeats)
        print(f"{'Lock':<10} {label:<16} {ref_ns:>13.1f} {traced_ns:>10.1f} "
              f"{traced_ns / ref_ns:>6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
