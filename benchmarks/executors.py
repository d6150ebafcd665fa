"""Executors (#8): what async logic and a process pool buy over the thread pool.

Two measurements, printed as a table; never asserts (timings depend on the machine):

1. Coroutine logic: N concurrent jobs that each await ``asyncio.sleep(AWAIT_S)`` on a
   runtime with a pool of 4, against the time the same waits would take blocking on 4
   threads (N * AWAIT_S / 4).
2. CPU-bound logic (a pure-Python loop): the same jobs on "threads" (pool sized to the CPU
   count) and on "processes" (a process pool sized to the CPU count). Threads share the
   GIL, so their throughput stays at about one core; processes scale with cores. The
   ratio processes / threads is printed (on 2 cores, about 2 at best).

    python benchmarks/executors.py [--jobs 16] [--work 3000000] [--awaits 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routilux import Flow, Routine, Runtime, immediate_policy  # noqa: E402

AWAIT_S = 0.2  # seconds each coroutine awaits


def burn(slot_data, policy_message, worker_state):
    """CPU-bound: a pure-Python loop that holds the GIL the whole time."""
    n = slot_data["in"][0]["n"]
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


async def wait_io(slot_data, policy_message, worker_state):
    await asyncio.sleep(AWAIT_S)


def _flow(name: str, logic, executor: str | None) -> Flow:
    r = Routine()
    r.add_slot("in")
    r.set_activation_policy(immediate_policy())
    r.set_logic(logic)
    if executor is not None:
        r.set_executor(executor)
    flow = Flow(f"{name}-{os.getpid()}-{time.monotonic_ns()}")
    flow.add_routine(r, "r")
    return flow


def _run(flow: Flow, pool: int, jobs: int, data: dict) -> float:
    """Seconds from the first post to the last job finished (pool warmed up first)."""
    with Runtime(thread_pool_size=pool) as rt:
        _, warm = rt.post(flow.flow_id, "r", "in", {**data, "n": 1} if "n" in data else data)
        warm.wait(60)
        t0 = time.perf_counter()
        posted = [rt.post(flow.flow_id, "r", "in", data)[1] for _ in range(jobs)]
        if not rt.wait_until_all_jobs_finished(600):
            raise RuntimeError("benchmark jobs did not finish within 600 s")
        elapsed = time.perf_counter() - t0
        bad = [j for j in posted if j.status != "completed"]
        if bad:
            raise RuntimeError(f"{len(bad)} jobs ended {bad[0].status}: {bad[0].error}")
    return elapsed


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16, help="CPU-bound jobs per executor")
    parser.add_argument("--work", type=int, default=3_000_000, help="loop steps per CPU job")
    parser.add_argument("--awaits", type=int, default=2000, help="concurrent coroutine jobs")
    args = parser.parse_args(argv)
    cpus = os.cpu_count() or 1

    print(f"python {sys.version.split()[0]}, {cpus} CPUs")
    print()
    async_s = _run(_flow("bench-async", wait_io, None), 4, args.awaits, {})
    blocking_s = args.awaits * AWAIT_S / 4
    print(f"coroutine logic: {args.awaits} jobs each awaiting {AWAIT_S:g} s, pool of 4 threads")
    print(f"  elapsed {async_s:.2f} s (one await = {AWAIT_S:g} s; "
          f"blocking on 4 threads would take {blocking_s:.0f} s, {blocking_s / async_s:.0f}x)")
    print()

    data = {"n": args.work}
    threads_s = _run(_flow("bench-threads", burn, "threads"), cpus, args.jobs, data)
    procs_s = _run(_flow("bench-procs", burn, "processes"), cpus, args.jobs, data)
    print(f"CPU-bound logic: {args.jobs} jobs x {args.work:,} loop steps, {cpus} workers each")
    print(f"{'executor':<10} {'seconds':>8} {'jobs/s':>8}")
    print(f"{'threads':<10} {threads_s:>8.2f} {args.jobs / threads_s:>8.2f}")
    print(f"{'processes':<10} {procs_s:>8.2f} {args.jobs / procs_s:>8.2f}")
    ratio = threads_s / procs_s
    print(f"processes / threads throughput ratio: {ratio:.2f} (ideal: {cpus})")
    return {"async_s": async_s, "threads_s": threads_s, "processes_s": procs_s, "ratio": ratio}


if __name__ == "__main__":
    main()
