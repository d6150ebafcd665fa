"""One timed run of upstream Routilux (from PyPI) on one workload; prints one result line.

Runs ONLY under the interpreter of benchmarks/.upstream-venv (``_upstream.py`` creates it),
where ``import routilux`` is the PyPI package, never ours. It imports nothing of this
repository except the two standard-library-only helpers beside it.

    .upstream-venv/bin/python benchmarks/_upstream_driver.py WORKLOAD POOL JOBS [--timeout S]

How upstream 1.1.0 is driven (read from its source, ``routilux/core``; its README still
shows the older ``define_slot(handler=...)`` API):

- ``Flow(flow_id)`` registers itself; routines are ``Routine()`` with ``add_slot``,
  ``add_event``, ``set_logic(fn)`` and ``set_activation_policy(fn)``. 1.1.0 ships no
  policy module, so the two policies are written here the way its docs describe them:
  ``policy(slots, worker_state) -> (fire, {slot: [items]}, message)``: "immediate"
  (consume all new items) and "all slots ready" (one item from each slot, FIFO pairing:
  1.1.0 has no per-job matching). Logic is called as
  ``logic(*slot_lists, policy_message=..., worker_state=...)``.
- ``Runtime(thread_pool_size=POOL)``; ``ws = runtime.exec(flow_id)`` once, then
  ``runtime.post(flow_id, entry, "in", data, worker_id=ws.worker_id, job_id=...)`` per
  job (without ``worker_id`` every post starts a new worker with its own thread).
- Upstream jobs never finish by themselves; the last stage calls
  ``runtime.complete_job(job_id)``, the documented way, and that is the job's terminal
  moment for latency. Items carry their job id, because under concurrency upstream's
  entry policy may hand one activation several jobs' items.
- Upstream runs entry-routine logic on the process-wide ``WorkerManager`` pool (100
  threads), not on the runtime's pool, and every downstream routine inline on the
  worker's single event-loop thread. For a like-for-like pool size we install a
  ``WorkerManager(max_workers=POOL)`` as that global pool before starting (the
  ``manager._global_worker_manager`` module attribute).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import logging
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the helpers beside us

from _harness import current_rss_mb, emit_result, peak_rss_mb, summarize_latencies
from _workloads import FAN_BRANCHES, LINEAR_STAGES, WORKLOADS, stage_work

WARMUP_JOBS = 200


def immediate(slots, worker_state):
    data = {name: slot.consume_all_new() for name, slot in slots.items()}
    if not any(data.values()):
        return False, {}, None
    return True, data, {"reason": "immediate"}


def all_slots_ready(slots, worker_state):
    if not all(slot.get_unconsumed_count() > 0 for slot in slots.values()):
        return False, {}, None
    return True, {name: [slot.consume_one_new()] for name, slot in slots.items()}, {
        "reason": "all_slots_ready"}


class Completion:
    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.done_at = [0.0] * jobs
        self._count = itertools.count(1)
        self.all_done = threading.Event()

    def finish(self, i: int) -> None:
        self.done_at[i] = time.perf_counter()
        if next(self._count) == self.jobs:
            self.all_done.set()


def build_flow(workload, runtime_box, completion_box):
    from routilux.core import Flow, Routine

    sleep_s = workload.sleep_s
    flow = Flow(flow_id=f"bench-{workload.name}-{uuid.uuid4().hex[:8]}")

    def finish(item):
        runtime_box[0].complete_job(item["jid"])
        completion_box[0].finish(item["i"])

    def routine(slots, emits, policy):
        r = Routine()
        for name in slots:
            r.add_slot(name)
        if emits:
            r.add_event("out")

            def logic(*slot_lists, policy_message=None, worker_state=None):
                for item in slot_lists[0]:
                    stage_work(sleep_s)
                    r.emit("out", worker_state=worker_state, i=item["i"], jid=item["jid"])
        else:

            def logic(*slot_lists, policy_message=None, worker_state=None):
                for item in slot_lists[0]:
                    stage_work(sleep_s)
                    finish(item)

        r.set_logic(logic)
        r.set_activation_policy(policy)
        return r

    if workload.shape == "linear":
        for k, name in enumerate(LINEAR_STAGES):
            flow.add_routine(routine(("in",), k < len(LINEAR_STAGES) - 1, immediate), name)
        for a, b in itertools.pairwise(LINEAR_STAGES):
            flow.connect(a, "out", b, "in")
        return flow, LINEAR_STAGES[0]
    flow.add_routine(routine(("in",), True, immediate), "a")
    for b in FAN_BRANCHES:
        flow.add_routine(routine(("in",), True, immediate), b)
        flow.connect("a", "out", b, "in")
    join_slots = tuple(f"from_{b}" for b in FAN_BRANCHES)
    flow.add_routine(routine(join_slots, False, all_slots_ready), "j")
    for b, slot in zip(FAN_BRANCHES, join_slots, strict=True):
        flow.connect(b, "out", "j", slot)
    return flow, "a"


def post_all(runtime, flow, entry, ws, jobs, tag):
    posted_at = [0.0] * jobs
    clock = time.perf_counter
    post = runtime.post
    fid = flow.flow_id
    wid = ws.worker_id
    for i in range(jobs):
        jid = f"{tag}{i}"
        posted_at[i] = clock()
        post(fid, entry, "in", {"i": i, "jid": jid}, worker_id=wid, job_id=jid)
    return posted_at


def run(workload_name: str, pool: int, jobs: int, timeout: float) -> dict:
    import routilux
    from routilux.core import Runtime, WorkerManager
    from routilux.core import manager as manager_module

    logging.basicConfig(level=logging.ERROR)  # upstream logs every dropped item at WARNING
    manager_module._global_worker_manager = WorkerManager(max_workers=pool)
    workload = WORKLOADS[workload_name]
    runtime = Runtime(thread_pool_size=pool)
    runtime_box = [runtime]
    warm = Completion(min(WARMUP_JOBS, jobs))
    completion_box = [warm]
    flow, entry = build_flow(workload, runtime_box, completion_box)
    ws = runtime.exec(flow.flow_id)
    post_all(runtime, flow, entry, ws, warm.jobs, "w")
    if not warm.all_done.wait(min(timeout, 60.0)):
        n = sum(1 for t in warm.done_at if t)
        return {"jobs": jobs, "done": 0,
                "error": f"warm-up: {n} of {warm.jobs} jobs completed within "
                         f"{min(timeout, 60.0):.0f} s",
                "version": routilux.__version__ if hasattr(routilux, "__version__") else "?"}
    gc.collect()
    rss_before = current_rss_mb()
    done = Completion(jobs)
    completion_box[0] = done
    start = time.perf_counter()
    posted_at = post_all(runtime, flow, entry, ws, jobs, "j")
    finished = done.all_done.wait(timeout)
    elapsed = time.perf_counter() - start
    lat = [d - p for d, p in zip(done.done_at, posted_at, strict=True) if d]
    n = len(lat)
    out = {"jobs": jobs, "done": n, "elapsed_s": elapsed, "rate": n / elapsed,
           "rss_before_mb": rss_before, **summarize_latencies(lat)}
    if not finished:
        out["error"] = f"{n} of {jobs} jobs completed within {timeout:.0f} s"
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("pool", type=int)
    parser.add_argument("jobs", type=int)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    from importlib.metadata import version

    result = run(args.workload, args.pool, args.jobs, args.timeout)
    result["version"] = version("routilux")
    result["peak_rss_mb"] = peak_rss_mb()
    emit_result(result)
    # Upstream's worker threads and atexit hooks may hang on exit; we have our result.
    os._exit(0)


if __name__ == "__main__":
    main()
