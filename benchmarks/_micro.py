"""Micro costs, in a child process: uncontended TracedLock vs threading.Lock, and one
``Tracer.record`` vs an empty call with the same arguments. Prints one result line.

The measuring code is lock_overhead.py's and trace_record.py's (run those for their full
tables); this only picks the numbers the summary reports.

    python -m benchmarks._micro [--pairs N] [--calls N] [--repeats R]
"""

from __future__ import annotations

import argparse
import threading

from benchmarks import lock_overhead, trace_record
from benchmarks._harness import emit_result
from routilux.sync import TracedLock
from routilux.trace import Tracer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--calls", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    lock_ns = lock_overhead._median_ns(lock_overhead._explicit, threading.Lock(),
                                       args.pairs, args.repeats)
    traced_ns = lock_overhead._median_ns(lock_overhead._explicit, TracedLock("bench"),
                                         args.pairs, args.repeats)
    with_lock_ns = lock_overhead._median_ns(lock_overhead._with, threading.Lock(),
                                            args.pairs, args.repeats)
    with_traced_ns = lock_overhead._median_ns(lock_overhead._with, TracedLock("bench"),
                                              args.pairs, args.repeats)
    empty_ns = trace_record.median_ns(trace_record.empty_record, args.calls, args.repeats)
    record_ns = trace_record.median_ns(Tracer(capacity=100_000).record, args.calls,
                                       args.repeats)
    contended_ns = trace_record.contended_ns(8, args.calls // 8)
    emit_result({
        "lock_ns": lock_ns, "traced_lock_ns": traced_ns,
        "lock_with_ns": with_lock_ns, "traced_lock_with_ns": with_traced_ns,
        "empty_call_ns": empty_ns, "record_ns": record_ns, "record_8threads_ns": contended_ns,
    })


if __name__ == "__main__":
    main()
