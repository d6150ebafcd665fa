"""One timed run of one variant on one workload, in this process; prints one result line.

Run by the orchestrator (``python -m benchmarks``) as a child process per run, so peak RSS
(``VmHWM``) is the run's own:

    python -m benchmarks._local_runs VARIANT WORKLOAD POOL JOBS [--timeout S]

Variants (all run the same stage logic from ``_workloads``):

- ``routilux``, ``routilux-trace``: ``Runtime(thread_pool_size=POOL, trace=False|True)``.
- ``routilux-dash``: tracing on, plus a dashboard reading the tracer and ``statistics()``
  at 10 Hz: routilux_jupyter's real ``Dashboard`` pump, headless (its widget comm only
  JSON-encodes each message, as a kernel would before sending), or, if ipywidgets or
  anywidget is missing, a thread doing the same reads. The result says which.
- ``tpe-chain``: ``concurrent.futures.ThreadPoolExecutor(POOL)``; each stage's function
  submits the next stage to the same executor (what most people write by hand); the
  fan-in counts branches per job with ``itertools.count`` and the last one submits it.
- ``floor``: the bare dispatch floor: POOL threads taking callables from one
  ``queue.SimpleQueue``, each stage putting the next one; nothing else.
- ``dask``: ``dask.delayed`` graph of the same calls, ``dask.compute(...,
  scheduler="threads", num_workers=POOL)``; all jobs are one graph, "posted" at once.

Latency is post -> job terminal: routilux from the job's own ``created_at`` /
``completed_at``, read in a done-callback (no run keeps its jobs alive: retained jobs
would make the garbage collector's full passes longer for routilux alone); the others
from ``perf_counter`` before submit and at the end of the last stage.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import queue
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks._harness import current_rss_mb, emit_result, peak_rss_mb, summarize_latencies
from benchmarks._workloads import FAN_BRANCHES, LINEAR_STAGES, WORKLOADS, Workload, stage_work

VARIANTS = ("routilux", "routilux-trace", "routilux-dash", "tpe-chain", "floor", "dask")
WARMUP_JOBS = 200  # jobs run before timing: threads spawned, code paths warm
DASH_INTERVAL_S = 0.1  # the dashboard's 10 Hz


class Completion:
    """Per-job terminal times (perf_counter) and an Event set when all ``jobs`` are done."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.done_at = [0.0] * jobs
        self._count = itertools.count(1)  # next() is atomic in CPython
        self.all_done = threading.Event()

    def finish(self, i: int) -> None:
        self.done_at[i] = time.perf_counter()
        if next(self._count) == self.jobs:
            self.all_done.set()

    @property
    def finished(self) -> int:
        return sum(1 for t in self.done_at if t)


# -- routilux ---------------------------------------------------------------------------
def _routilux_flow(w: Workload) -> Any:
    from routilux import Flow, Routine, all_slots_ready_policy, immediate_policy

    sleep_s = w.sleep_s
    flow = Flow(f"bench-{w.name}-{uuid.uuid4().hex[:8]}")

    def routine(slots: tuple[str, ...], emits: bool, policy: Any) -> Routine:
        r = Routine()
        for name in slots:
            r.add_slot(name)
        if emits:
            r.add_event("out")

            def logic(slot_data, policy_message, worker_state):
                for item in slot_data[slots[0]]:
                    stage_work(sleep_s)
                    r.emit("out", i=item["i"])
        else:

            def logic(slot_data, policy_message, worker_state):
                stage_work(sleep_s)

        r.set_logic(logic)
        r.set_activation_policy(policy)
        return r

    if w.shape == "linear":
        for k, name in enumerate(LINEAR_STAGES):
            flow.add_routine(routine(("in",), k < len(LINEAR_STAGES) - 1, immediate_policy()),
                             name)
        for a, b in itertools.pairwise(LINEAR_STAGES):
            flow.connect(a, "out", b, "in")
        return flow, LINEAR_STAGES[0]
    flow.add_routine(routine(("in",), True, immediate_policy()), "a")
    for b in FAN_BRANCHES:
        flow.add_routine(routine(("in",), True, immediate_policy()), b)
        flow.connect("a", "out", b, "in")
    join_slots = tuple(f"from_{b}" for b in FAN_BRANCHES)
    flow.add_routine(routine(join_slots, False, all_slots_ready_policy(match_job=True)), "j")
    for b, slot in zip(FAN_BRANCHES, join_slots, strict=True):
        flow.connect(b, "out", "j", slot)
    return flow, "a"


class _Reader:
    """The fallback dashboard: a thread doing the pump's reads at 10 Hz."""

    def __init__(self, rt: Any) -> None:
        self._rt = rt
        self._stop = threading.Event()
        self.ticks = 0
        self._thread = threading.Thread(target=self._loop, name="bench-reader", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        since = 0
        while not self._stop.wait(DASH_INTERVAL_S):
            events = self._rt.tracer.read(since)
            if events:
                since = events[-1].seq
            self._rt.statistics()
            self.ticks += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)


def _start_dashboard(rt: Any) -> tuple[Any, str]:
    """The real Dashboard pump, headless; else the fallback reader. Returns (it, kind)."""
    try:
        from benchmarks.dashboard_overhead import encode_only
        from routilux_jupyter import Dashboard

        dash = Dashboard(rt, interval_s=DASH_INTERVAL_S)
        encode_only(dash)
        return dash, "routilux_jupyter.Dashboard pump (headless, messages JSON-encoded)"
    except ImportError as exc:
        return _Reader(rt), f"reader thread: tracer.read(since) + statistics() ({exc})"


def run_routilux(w: Workload, pool: int, jobs: int, variant: str, timeout: float) -> dict:
    from routilux import Runtime

    flow, entry = _routilux_flow(w)
    trace = variant != "routilux"
    rt = Runtime(thread_pool_size=pool, trace=trace)
    extra: dict[str, Any] = {}
    dash = None
    try:
        rt.exec(flow.flow_id)
        for i in range(min(WARMUP_JOBS, jobs)):
            rt.post(flow.flow_id, entry, "in", {"i": i})
        rt.wait_until_all_jobs_finished(timeout=timeout)
        if variant == "routilux-dash":
            dash, extra["reader"] = _start_dashboard(rt)
        dash_cpu = getattr(dash, "cpu_s", 0.0)  # the pump thread's CPU so far (thread_time)
        gc.collect()
        rss_before = current_rss_mb()
        # The run keeps no JobContext alive (a TPE chain keeps no Future either): one shared
        # done-callback keeps each job's latency and status.
        lat: list[float] = []
        statuses: dict[str, int] = {}
        count_lock = threading.Lock()  # callbacks run on pool threads: count exactly
        all_counted = threading.Event()
        counted = itertools.count(1)

        def on_done(job: Any) -> None:
            status = job.status
            with count_lock:
                statuses[status] = statuses.get(status, 0) + 1
                if next(counted) == jobs:
                    all_counted.set()
            if status == "completed":
                lat.append((job.completed_at - job.created_at).total_seconds())

        post = rt.post
        fid = flow.flow_id
        start = time.perf_counter()
        for i in range(jobs):
            post(fid, entry, "in", {"i": i})[1].add_done_callback(on_done)
        finished = rt.wait_until_all_jobs_finished(timeout=timeout)
        # A job's done-callbacks run just after its gate opens, so the last ones may still
        # be running when the wait returns: the run ends when every job is counted.
        finished = finished and all_counted.wait(timeout)
        elapsed = time.perf_counter() - start
        if dash is not None:
            extra["dashboard_updates"] = getattr(dash, "updates_sent", getattr(dash, "ticks", 0))
            extra["dashboard_cpu_share"] = (getattr(dash, "cpu_s", 0.0) - dash_cpu) / elapsed
        stats = rt.statistics()
        extra["trace_dropped"] = stats.trace_dropped
    finally:
        if dash is not None:
            dash.close()
        rt.shutdown(wait=False)
    done = statuses.get("completed", 0)
    out = {"jobs": jobs, "done": done, "elapsed_s": elapsed, "rate": done / elapsed,
           "rss_before_mb": rss_before, **summarize_latencies(lat), **extra}
    if not finished or done != jobs:
        out["error"] = f"{done} of {jobs} jobs completed ({statuses})"
    return out


# -- plain thread pools -----------------------------------------------------------------
def _chain(w: Workload, submit: Any, done: Completion) -> Any:
    """Stage functions for ``submit(fn, *args)``-style dispatch; returns the entry stage."""
    sleep_s = w.sleep_s
    finish = done.finish
    if w.shape == "linear":
        def s3(i: int) -> None:
            stage_work(sleep_s)
            finish(i)

        def s2(i: int) -> None:
            stage_work(sleep_s)
            submit(s3, i)

        def s1(i: int) -> None:
            stage_work(sleep_s)
            submit(s2, i)

        return s1

    counters: dict[int, Any] = {}

    def join(i: int) -> None:
        stage_work(sleep_s)
        del counters[i]
        finish(i)

    def branch(i: int) -> None:
        stage_work(sleep_s)
        if next(counters[i]) == len(FAN_BRANCHES) - 1:  # the last branch of this job
            submit(join, i)

    def a(i: int) -> None:
        stage_work(sleep_s)
        counters[i] = itertools.count()
        for _ in FAN_BRANCHES:
            submit(branch, i)

    return a


def _timed_dispatch(w: Workload, jobs: int, timeout: float, submit: Any) -> dict:
    """Warm up, then post ``jobs`` jobs through ``submit`` and wait for all of them."""
    warm = Completion(min(WARMUP_JOBS, jobs))
    entry = _chain(w, submit, warm)
    for i in range(warm.jobs):
        submit(entry, i)
    warm.all_done.wait(timeout)
    gc.collect()
    rss_before = current_rss_mb()
    done = Completion(jobs)
    entry = _chain(w, submit, done)
    posted_at = [0.0] * jobs
    clock = time.perf_counter
    start = clock()
    for i in range(jobs):
        posted_at[i] = clock()
        submit(entry, i)
    finished = done.all_done.wait(timeout)
    elapsed = clock() - start
    lat = [d - p for d, p in zip(done.done_at, posted_at, strict=True) if d]
    n = len(lat)
    out = {"jobs": jobs, "done": n, "elapsed_s": elapsed, "rate": n / elapsed,
           "rss_before_mb": rss_before, **summarize_latencies(lat)}
    if not finished:
        out["error"] = f"{n} of {jobs} jobs completed within {timeout:.0f} s"
    return out


def run_tpe(w: Workload, pool: int, jobs: int, timeout: float) -> dict:
    with ThreadPoolExecutor(max_workers=pool) as ex:
        return _timed_dispatch(w, jobs, timeout, ex.submit)


def run_floor(w: Workload, pool: int, jobs: int, timeout: float) -> dict:
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def work() -> None:
        get = q.get
        while (fn := get()) is not None:
            fn()

    threads = [threading.Thread(target=work, daemon=True) for _ in range(pool)]
    for t in threads:
        t.start()
    put = q.put
    partial = functools.partial
    try:
        return _timed_dispatch(w, jobs, timeout, lambda fn, i: put(partial(fn, i)))
    finally:
        for _ in threads:
            put(None)
        for t in threads:
            t.join(5.0)


# -- dask -------------------------------------------------------------------------------
def run_dask(w: Workload, pool: int, jobs: int, timeout: float) -> dict:
    import dask
    from dask import delayed

    sleep_s = w.sleep_s

    def build(n: int, done: Completion, tag: str) -> list[Any]:
        def stage(i: int, *_upstream: Any) -> int:
            stage_work(sleep_s)
            return i

        def last(i: int, *_upstream: Any) -> int:
            stage_work(sleep_s)
            done.finish(i)
            return i

        d_stage, d_last = delayed(stage), delayed(last)
        sinks = []
        for i in range(n):
            if w.shape == "linear":
                x = d_stage(i, dask_key_name=f"{tag}s1-{i}")
                x = d_stage(i, x, dask_key_name=f"{tag}s2-{i}")
                sinks.append(d_last(i, x, dask_key_name=f"{tag}s3-{i}"))
            else:
                a = d_stage(i, dask_key_name=f"{tag}a-{i}")
                bs = [d_stage(i, a, dask_key_name=f"{tag}{b}-{i}") for b in FAN_BRANCHES]
                sinks.append(d_last(i, *bs, dask_key_name=f"{tag}j-{i}"))
        return sinks

    warm = Completion(min(WARMUP_JOBS, jobs))
    dask.compute(*build(warm.jobs, warm, "w"), scheduler="threads", num_workers=pool)
    gc.collect()
    rss_before = current_rss_mb()
    done = Completion(jobs)
    start = time.perf_counter()
    dask.compute(*build(jobs, done, ""), scheduler="threads", num_workers=pool)
    elapsed = time.perf_counter() - start
    lat = [d - start for d in done.done_at if d]
    n = len(lat)
    out = {"jobs": jobs, "done": n, "elapsed_s": elapsed, "rate": n / elapsed,
           "rss_before_mb": rss_before, **summarize_latencies(lat),
           "note": "one graph of all jobs; latency from the compute() call"}
    if n != jobs:
        out["error"] = f"{n} of {jobs} jobs completed"
    return out


def run(variant: str, workload: str, pool: int, jobs: int, timeout: float) -> dict:
    w = WORKLOADS[workload]
    if variant.startswith("routilux"):
        return run_routilux(w, pool, jobs, variant, timeout)
    if variant == "tpe-chain":
        return run_tpe(w, pool, jobs, timeout)
    if variant == "floor":
        return run_floor(w, pool, jobs, timeout)
    if variant == "dask":
        return run_dask(w, pool, jobs, timeout)
    raise ValueError(f"unknown variant {variant!r}; variants are: {', '.join(VARIANTS)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("pool", type=int)
    parser.add_argument("jobs", type=int)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds to wait for the jobs before reporting how many finished")
    args = parser.parse_args(argv)
    result = run(args.variant, args.workload, args.pool, args.jobs, args.timeout)
    result["peak_rss_mb"] = peak_rss_mb()
    emit_result(result)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
