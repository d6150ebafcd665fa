"""How much one ``Tracer.record`` call costs, next to an empty call with the same arguments.

Run: ``python benchmarks/trace_record.py [--calls N] [--repeats R]``. Prints a small table;
asserts nothing, because absolute times depend on the machine. The ratio to an empty call is
the number to compare across machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from routilux.trace import Tracer


def empty_record(
    kind: str,
    job_id: str | None = None,
    routine: str | None = None,
    name: str | None = None,
    value: float | None = None,
    detail: Any = None,
    worker_id: str | None = None,
) -> None:
    """Same signature as ``Tracer.record``, does nothing: the cost of the call itself."""


def ns_per_call(func: Callable[..., None], calls: int) -> float:
    """Nanoseconds per call of ``func`` with a typical task.started argument list."""
    loop = range(calls)
    start = time.perf_counter_ns()
    for _ in loop:
        func("task.started", "job-1", "worker_routine", "input", 0.000125, None, "ws-1")
    return (time.perf_counter_ns() - start) / calls


def median_ns(func: Callable[..., None], calls: int, repeats: int) -> float:
    """Median of ``repeats`` timed runs of ``calls`` calls each (after one warm-up run)."""
    ns_per_call(func, min(calls, 10_000))
    return statistics.median(ns_per_call(func, calls) for _ in range(repeats))


def contended_ns(threads: int, calls: int) -> float:
    """Wall-clock ns per record with ``threads`` threads recording at once."""
    tracer = Tracer(capacity=100_000)  # small enough to wrap: the steady state of a long run
    start = threading.Barrier(threads + 1)

    def work() -> None:
        start.wait()
        ns_per_call(tracer.record, calls)

    workers = [threading.Thread(target=work, name=f"bench-{k}") for k in range(threads)]
    for worker in workers:
        worker.start()
    begin = time.perf_counter_ns()
    start.wait()
    for worker in workers:
        worker.join()
    return (time.perf_counter_ns() - begin) / (threads * calls)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500_000, help="calls per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median is shown)")
    args = parser.parse_args(argv)

    tracer = Tracer(capacity=100_000)
    baseline = median_ns(empty_record, args.calls, args.repeats)
    traced = median_ns(tracer.record, args.calls, args.repeats)
    threaded = contended_ns(8, args.calls // 8)

    print(f"Python {sys.version.split()[0]}, {args.calls} calls x {args.repeats} runs (median)")
    print(f"{'call':<36}{'ns/call':>10}{'ratio':>8}")
    print(f"{'empty function, same arguments':<36}{baseline:>10.1f}{1:>8.1f}")
    print(f"{'Tracer.record, one thread':<36}{traced:>10.1f}{traced / baseline:>8.1f}")
    print(f"{'Tracer.record, 8 threads (wall)':<36}{threaded:>10.1f}{threaded / baseline:>8.1f}")
    print(f"events dropped by the one-thread tracer: {tracer.dropped} (capacity {tracer.capacity})")


if __name__ == "__main__":
    main()
