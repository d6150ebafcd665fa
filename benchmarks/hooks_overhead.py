"""What execution hooks cost on the hot path, and what tracing through them would cost.

Run: ``python benchmarks/hooks_overhead.py [--jobs N] [--repeats R]``. Posts N jobs through
a three-routine flow (pool 4) in five setups, interleaved over R repeats, and prints the
median jobs/s and each setup's ratio to its baseline. Asserts nothing (times depend on the
machine; the ratios are the numbers to compare):

- ``plain``: no hooks, no trace (the hook call sites cost one ``is None`` test each);
- ``null hooks``: a hooks object whose methods do nothing: the price of the dispatch;
- ``traced``: ``Runtime(trace=True)``, the tracer's direct call sites;
- ``traced via hooks``: tracing off, and a hooks object that records the same task events
  into a Tracer: what making the tracer "one hooks implementation" would cost.

Also prints nanoseconds per call for the bare ``Tracer.record`` against one hooks dispatch
(``_hooks.call``) that does the same record.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from routilux import Flow, Routine, Runtime, _hooks, immediate_policy
from routilux.core.hooks import NullExecutionHooks, reset_execution_hooks, set_execution_hooks
from routilux.trace import Tracer

POOL = 4


class Dispatching(NullExecutionHooks):
    """No-op hooks the runtime does call (``NullExecutionHooks`` itself means "none")."""


class TracingHooks(NullExecutionHooks):
    """The tracer's task events, recorded from hooks (what a hooks-based tracer would do)."""

    def __init__(self) -> None:
        self.tracer = Tracer()
        self._starts: dict[int, int] = {}

    def on_routine_start(self, routine_id, worker_state, job_context=None):
        self.tracer.record("task.started", job_context.job_id if job_context else None,
                           routine_id, None, 0.0, None, worker_state.worker_id)
        return True

    def on_routine_end(self, routine_id, worker_state, job_context=None, status="completed",
                       error=None):
        self.tracer.record("task.finished", job_context.job_id if job_context else None,
                           routine_id, None, 0.0, None, worker_state.worker_id)

    def on_slot_before_enqueue(self, slot, routine_id, job_context, data, flow_id):
        self.tracer.record("slot.enqueue", job_context.job_id if job_context else None,
                           routine_id, slot.name, 0, None, None)
        return True, None

    def on_job_start(self, job_context, worker_state):
        self.tracer.record("job.posted", job_context.job_id, None, None, None, None,
                           worker_state.worker_id)

    def on_job_end(self, job_context, worker_state, status="completed", error=None):
        self.tracer.record(f"job.{status}", job_context.job_id, None, None, 0.0, None,
                           worker_state.worker_id)


def _flow() -> Flow:
    flow = Flow()
    for name, nxt in (("a", "b"), ("b", "c"), ("c", None)):
        r = Routine()
        r.add_slot("in")
        r.add_event("out")

        def logic(slot_data, policy_message, worker_state, _r=r, _nxt=nxt):
            if _nxt:
                _r.emit("out", **slot_data["in"][0])

        r.set_logic(logic)
        r.set_activation_policy(immediate_policy())
        flow.add_routine(r, name)
    flow.connect("a", "out", "b", "in")
    flow.connect("b", "out", "c", "in")
    return flow


def run(setup: str, jobs: int) -> float:
    """Jobs per second for one setup."""
    flow = _flow()
    hooks: Any = None
    if setup == "null hooks":
        hooks = Dispatching()
    elif setup == "traced via hooks":
        hooks = TracingHooks()
    if hooks is not None:
        set_execution_hooks(hooks)
    try:
        rt = Runtime(thread_pool_size=POOL, trace=setup == "traced")
        rt.exec(flow)
        start = time.perf_counter()
        for i in range(jobs):
            rt.post(flow, "a", "in", {"i": i})
        rt.wait_until_all_jobs_finished(timeout=600)
        elapsed = time.perf_counter() - start
        rt.shutdown(wait=True)
    finally:
        reset_execution_hooks()
    return jobs / elapsed


def ns_per(fn: Any, calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - start) / calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    setups = ("plain", "null hooks", "traced", "traced via hooks")
    rates: dict[str, list[float]] = {s: [] for s in setups}
    run("plain", min(args.jobs, 500))  # warm up
    for rep in range(args.repeats):
        order = setups[rep % len(setups):] + setups[:rep % len(setups)]
        for setup in order:
            rates[setup].append(run(setup, args.jobs))
    med = {s: statistics.median(v) for s, v in rates.items()}
    base = {"plain": "plain", "null hooks": "plain", "traced": "plain",
            "traced via hooks": "traced"}
    print(f"{args.jobs} jobs x 3 routines, pool {POOL}, median of {args.repeats} "
          f"(python {sys.version.split()[0]})")
    print(f"{'setup':<18} {'jobs/s':>10}  ratio")
    for s in setups:
        print(f"{s:<18} {med[s]:>10.0f}  {med[s] / med[base[s]]:.3f} of {base[s]}")
    tracer = Tracer()
    hooks = TracingHooks()
    hooks.tracer = tracer

    class WS:
        worker_id = "ws-1"

    ws = WS()
    direct = ns_per(lambda: tracer.record("task.started", "job-1", "a", None, 0.0, None,
                                          "ws-1"), 200_000)
    via = ns_per(lambda: _hooks.call(hooks, "on_routine_start", "a", ws, None), 200_000)
    check = ns_per(lambda: _hooks.active is not None, 200_000)
    print(f"per event: Tracer.record {direct:.0f} ns, through a hooks dispatch {via:.0f} ns, "
          f"the unset-hooks check {check:.0f} ns (each timed inside a lambda call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
