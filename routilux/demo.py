"""Headless demo: one flow posted many times, with progress, a summary and a diagnosis.

Run it with ``python -m routilux.demo`` (``make demo``). It builds a three-stage flow
(parse -> enrich, which sleeps like an I/O call -> store, which counts exactly with
``modify_routine_state``), posts ``--jobs`` jobs to a traced runtime, prints progress
while they run, then prints throughput, latency percentiles, the pool statistics and
what the pitfall detectors found. ``--trace PATH`` also writes a Chrome/Perfetto trace.
"""

from __future__ import annotations

import argparse
import sys
import time

from routilux import Flow, Routine, Runtime, get_current_job, immediate_policy
from routilux.diagnostics import diagnose


class Parse(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("out")

    def logic(self, slot_data, policy_message, worker_state):
        item = slot_data["in"][0]
        get_current_job().set_data("n", item["n"])
        self.emit("out", n=item["n"])


class Enrich(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("out")

    def logic(self, slot_data, policy_message, worker_state):
        time.sleep(self.get_config("io_s", 0.001))  # stands in for a network call
        n = slot_data["in"][0]["n"]
        self.emit("out", n=n, square=n * n)


class Store(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")

    def logic(self, slot_data, policy_message, worker_state):
        item = slot_data["in"][0]
        worker_state.modify_routine_state(
            "store", lambda s: {"count": s.get("count", 0) + 1,
                                "sum": s.get("sum", 0) + item["square"]})


def build_flow(io_s: float) -> Flow:
    flow = Flow("demo")
    for rid, routine in (("parse", Parse()), ("enrich", Enrich()), ("store", Store())):
        routine.set_activation_policy(immediate_policy())
        flow.add_routine(routine, rid)
    flow.routines["enrich"].set_config(io_s=io_s)
    flow.connect("parse", "out", "enrich", "in")
    flow.connect("enrich", "out", "store", "in")
    return flow


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m routilux.demo", description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs to post (default 5000)")
    parser.add_argument("--pool", type=int, default=8, help="thread_pool_size (default 8)")
    parser.add_argument("--io-ms", type=float, default=1.0,
                        help="simulated I/O per job in the middle stage, ms (default 1)")
    parser.add_argument("--trace", metavar="PATH", help="write a Chrome/Perfetto trace here")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    if args.pool < 1:
        parser.error(f"--pool must be >= 1, got {args.pool}")

    flow = build_flow(args.io_ms / 1000.0)
    print(f"routilux demo: {args.jobs} jobs through parse -> enrich ({args.io_ms:g} ms I/O) "
          f"-> store on a pool of {args.pool}")
    with Runtime(thread_pool_size=args.pool, trace=True) as runtime:
        worker = runtime.exec(flow)  # the Flow object: flows are registered weakly by id
        start = time.perf_counter()
        step = max(1, args.jobs // 10)
        for i in range(args.jobs):
            runtime.post("demo", "parse", "in", {"n": i})
            if (i + 1) % step == 0:
                s = runtime.statistics()
                print(f"  posted {i + 1:>7}  completed {s.completed:>7}  queued {s.queued:>5}  "
                      f"busy {s.busy}/{s.pool_size}", flush=True)
        while not runtime.wait_until_all_jobs_finished(timeout=0.5):
            s = runtime.statistics()
            print(f"  draining: completed {s.completed}/{s.posted}", flush=True)
        elapsed = time.perf_counter() - start
        stats = runtime.statistics()
        latencies = [e.value for e in runtime.tracer.read() if e.kind == "job.completed"]
        counted = worker.get_routine_state("store", {}).get("count", 0)
        findings = diagnose(runtime)
        if args.trace:
            runtime.tracer.to_chrome_trace(args.trace)

    print()
    print(f"completed {stats.completed}, failed {stats.failed}, cancelled {stats.cancelled} "
          f"in {elapsed:.2f} s: {stats.completed / elapsed:,.0f} jobs/s")
    print(f"job latency p50 {_percentile(latencies, 0.5) * 1e3:.2f} ms, "
          f"p95 {_percentile(latencies, 0.95) * 1e3:.2f} ms "
          f"(from {len(latencies)} traced jobs; {stats.trace_dropped} events dropped)")
    print(f"store counted {counted} items (exact: modify_routine_state)")
    # Say what the detectors found, and nothing more: a slow run is not called healthy.
    if findings:
        print(f"diagnose found {len(findings)} problem{'s' * (len(findings) != 1)}:")
        for f in findings:
            print(f"  [{f.severity}] {f.title}\n    fix: {f.fix}")
    else:
        print("diagnose: no findings (no pitfall detected in this run's trace)")
    if args.trace:
        print(f"trace written to {args.trace} (open it in https://ui.perfetto.dev)")
    ok = stats.completed == args.jobs and counted == args.jobs
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
