"""RSS after 10k and after 100k completed jobs (issue #2), in a child process.

Posts the trivial 3-routine line in batches into one runtime (pool 4) and waits for each
batch; after ``--first`` and after ``--total`` completed jobs it collects garbage and reads
the current RSS. Prints one result line. Target: the difference is within 50 MB.

    python -m benchmarks._memory [--trace] [--first 10000] [--total 100000]
"""

from __future__ import annotations

import argparse
import gc

from benchmarks._harness import current_rss_mb, emit_result, peak_rss_mb
from benchmarks._local_runs import _routilux_flow
from benchmarks._workloads import WORKLOADS

BATCH = 1000  # jobs posted before waiting for them


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", action="store_true")
    parser.add_argument("--first", type=int, default=10_000)
    parser.add_argument("--total", type=int, default=100_000)
    parser.add_argument("--pool", type=int, default=4)
    args = parser.parse_args(argv)

    from routilux import Runtime

    flow, entry = _routilux_flow(WORKLOADS["trivial"])
    rt = Runtime(thread_pool_size=args.pool, trace=args.trace)
    rt.exec(flow.flow_id)
    rss: dict[int, float] = {}
    start = current_rss_mb()
    done = 0
    failed = 0
    try:
        for mark in (args.first, args.total):
            while done < mark:
                n = min(BATCH, mark - done)
                for i in range(n):
                    rt.post(flow.flow_id, entry, "in", {"i": done + i})
                if not rt.wait_until_all_jobs_finished(timeout=120):
                    raise RuntimeError(f"jobs did not finish: {rt.statistics()}")
                done += n
            gc.collect()
            rss[mark] = current_rss_mb()
        stats = rt.statistics()
        failed = stats.failed + stats.cancelled
    finally:
        rt.shutdown(wait=False)
    emit_result({
        "trace": args.trace, "first": args.first, "total": args.total,
        "rss_start_mb": start, "rss_first_mb": rss[args.first], "rss_total_mb": rss[args.total],
        "growth_mb": rss[args.total] - rss[args.first], "failed": failed,
        "trace_dropped": stats.trace_dropped, "peak_rss_mb": peak_rss_mb(),
    })


if __name__ == "__main__":
    main()
