"""Where an untraced routilux job's time goes, per job, beside the ThreadPoolExecutor chain.

Runs the benchmark's own workloads (``benchmarks/_workloads.py``, built by the same
functions ``python -m benchmarks`` uses) and prints a per-job µs breakdown:

    python scripts/profile_hot_path.py --workload trivial
    python scripts/profile_hot_path.py --workload fanout --repeats 5 --seconds 10
    python scripts/profile_hot_path.py --workload sleep1ms --no-pyspy     # timings only
    python scripts/profile_hot_path.py --workload trivial --no-pyspy --instructions

Method (so an "after" is measured the same way as the "before"):

1. **Timings**, one child process per run, variants interleaved, medians of ``--repeats``:
   wall time and process CPU time (``time.process_time``) over ``--jobs`` jobs posted at
   once after a warm-up, exactly as the benchmark's child does; garbage collection timed
   by a ``gc.callbacks`` hook (start -> stop of every collection, per generation); and the
   same run again with ``gc.disable()`` (the A/B: what the collector costs in throughput).
   The hook times the collecting thread's CPU (``time.thread_time``), not wall time.
2. **Samples**: ``py-spy record --gil --threads --nonblocking -r RATE --format raw`` on a
   child that runs the workload batch after batch for ``--seconds``. ``--gil`` keeps only
   the thread holding the GIL, so the samples split the interpreter's time (with trivial
   logic the GIL is the bottleneck: throughput is about 1 / GIL time per job). Every
   sample is charged to the innermost frame that belongs to one of the categories in
   ``CATEGORIES`` (a frame of ours or of the stdlib parts the chain uses); the rest of its
   stack is that category's callees (``datetime.now`` under ``_finish`` is job finish).
3. **Per job**: a category's µs = the sampled child's own CPU µs per job x its share of
   the samples. py-spy shows a collection under the frame of the ``gc.callbacks`` hook
   (the last Python frame the collecting thread ran), so those samples are the "GC
   (sampled)" row; the hook's own CPU timing is printed beside it as a cross-check.
4. **Instructions** (``--instructions``): valgrind's instruction count for N1 and N2
   jobs, per variant; (Ir(N2) - Ir(N1)) / (N2 - N1) is the interpreter work per job,
   independent of the machine's load (the times above are not, on a shared machine).
5. **Retained jobs**: after MAX_FINISHED_JOBS jobs, how many GC-tracked objects the
   finished ``JobContext``s the runtime keeps add (``len(gc.get_objects())`` with them and
   after dropping them) and what one full collection costs with and without them.

Needs py-spy (in the dev extra) and permission to ptrace its own child (the default in a
container running as root; elsewhere ``--no-pyspy`` still gives the timings and GC rows).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._local_runs import WARMUP_JOBS, Completion, _chain, _routilux_flow  # noqa: E402
from benchmarks._workloads import WORKLOADS  # noqa: E402

DEFAULT_POOL = {"trivial": 4, "sleep1ms": 32, "fanout": 4}
DEFAULT_JOBS = {"trivial": 3000, "sleep1ms": 1500, "fanout": 1500}  # the --quick plan's

# (category, file suffix, function names). The innermost frame of a sample that matches
# one of these decides the sample's category. ``*`` matches every function of the file.
CATEGORIES: list[tuple[str, str, tuple[str, ...]]] = [
    # routilux (module paths of the layered engine: routilux/_engine, routilux/_model)
    ("post path", "routilux/_engine/_runtime.py",
     ("Runtime.post", "Runtime._resolve_flow", "Runtime._check_open")),
    ("post path", "routilux/_engine/_posting.py", ("*",)),
    ("post path", "routilux/_model/_flow.py", ("FlowRegistry.lookup",)),
    ("post path", "routilux/_singleton.py", ("*",)),
    ("post path", "routilux/_engine/_jobs.py", ("JobTable.register", "JobTable.settle_post")),
    ("post path", "routilux/_engine/_monitor.py", ("_Monitor.add_deadline",)),
    ("post path", "routilux/_model/_job.py",
     ("JobContext.__init__", "JobContext.__post_init__", "JobContext._attach", "<lambda>",
      "JobContext.add_done_callback")),
    ("post path", "<string>", ("__init__",)),  # the dataclass-generated JobContext.__init__
    ("job finish", "routilux/_engine/_jobs.py",
     ("JobTable.auto_complete", "JobTable.finish", "JobTable.release_final_locked",
      "JobTable.wake_waiters_locked", "JobTable.finish_on_pool_locked",
      "JobTable.transition_locked", "JobTable.after_finish")),
    ("job finish", "routilux/_engine/_worker.py", ("_Worker.release_final_locked",)),
    ("job finish", "routilux/_model/_job.py",
     ("release_gate", "call_done_callback", "JobContext.complete")),
    ("job finish", "benchmarks/_local_runs.py", ("on_done",)),
    ("policy", "routilux/_engine/_worker.py",
     ("_Worker._evaluate", "_Worker._check_policy_result")),
    ("policy", "routilux/_model/_policies.py", ("*",)),
    ("slot delivery", "routilux/_engine/_worker.py",
     ("_Worker.deliver", "_Worker.deliver_posted", "_Worker.plan")),
    ("slot delivery", "routilux/_model/_slot.py", ("*",)),
    ("queueing/handoff", "routilux/_engine/_worker.py", ("_Worker.schedule", "_Worker._enqueue")),
    # register_and_queue is post's registration and its first activation's queueing in
    # one locked step (the post fast path): counted as queueing, as hold_and_queue is.
    ("queueing/handoff", "routilux/_engine/_jobs.py",
     ("JobTable.hold_and_queue", "JobTable.register_and_queue")),
    ("queueing/handoff", "routilux/_engine/_pool.py",
     ("ThreadPool.wake_locked", "ThreadPool.wake_one_for_next", "ThreadPool.submit_locked",
      "ThreadPool._spawn_locked", "ThreadPool.offer_next", "ThreadPool.depth")),
    ("queueing/handoff", "routilux/_engine/_tasks.py", ("_Task.__init__", "_Callback.__init__")),
    ("pool-thread loop", "routilux/_engine/_pool.py", ("_thread_loop",)),
    ("pool-thread loop", "routilux/_engine/_tasks.py",
     ("_Task.done_locked", "_Task.hold_locked", "_Task.handoff_locked", "_Callback.run",
      "_Callback.done_locked")),
    ("pool-thread loop", "routilux/_engine/_worker.py",
     ("_Worker.hold_locked", "_Worker.release_locked")),
    ("pool-thread loop", "routilux/_engine/_jobs.py",
     ("JobTable.hold_locked", "JobTable.release_locked", "JobTable.release_on_pool_locked")),
    ("emit/routing", "routilux/_engine/_worker.py", ("_Worker.emit", "_Worker.emit_from")),
    ("emit/routing", "routilux/_model/_routine.py", ("*",)),
    ("emit/routing", "routilux/_model/_context.py", ("*",)),
    ("logic call", "routilux/_engine/_tasks.py", ("_Task.run", "_Task.ended")),
    ("logic call", "routilux/_engine/_calling.py", ("*",)),
    ("logic call", "benchmarks/_local_runs.py", ("logic",)),
    ("logic call", "benchmarks/_workloads.py", ("stage_work",)),
    ("waiting (main thread)", "routilux/_engine/_runtime.py",
     ("Runtime.wait_until_all_jobs_finished", "<lambda>")),
    ("waiting (main thread)", "routilux/_engine/_jobs.py", ("JobTable.wait",)),
    # the ThreadPoolExecutor chain
    ("submit (chain)", "concurrent/futures/thread.py",
     ("ThreadPoolExecutor.submit", "ThreadPoolExecutor._adjust_thread_count")),
    ("submit (chain)", "concurrent/futures/_base.py", ("Future.__init__",)),
    ("submit (chain)", "threading.py", ("Condition.__init__",)),
    ("future result (chain)", "concurrent/futures/_base.py",
     ("Future.set_result", "Future._invoke_callbacks")),
    ("future result (chain)", "threading.py",
     ("Condition.notify_all", "Condition.notify", "Condition.__enter__",
      "Condition.__exit__", "Condition._is_owned")),
    ("pool-thread loop (chain)", "concurrent/futures/thread.py", ("_worker",)),
    ("logic call (chain)", "concurrent/futures/thread.py", ("_WorkItem.run",)),
    ("logic call (chain)", "benchmarks/_local_runs.py",
     ("s1", "s2", "s3", "a", "branch", "join", "Completion.finish")),
    ("waiting (main thread)", "threading.py", ("Event.wait", "Condition.wait")),
    ("post path", "benchmarks/_local_runs.py", ("_timed_dispatch", "run_loop", "_post_all")),
    ("post path", "scripts/profile_hot_path.py", ("_post_all",)),
]
ORDER = ("post path", "slot delivery", "policy", "queueing/handoff", "pool-thread loop",
         "logic call", "emit/routing", "job finish", "submit (chain)",
         "pool-thread loop (chain)", "logic call (chain)", "future result (chain)",
         "GC (sampled)", "waiting (main thread)", "logic sleeping (GIL released)", "other")
IDLE = ("waiting (main thread)", "logic sleeping (GIL released)")  # not CPU: not in the µs


def _classify(frames: list[str]) -> str:
    """The category of one sample: its innermost frame that matches ``CATEGORIES``."""
    for frame in reversed(frames):
        name, _, where = frame.rpartition(" (")
        where = where.rstrip(")")
        filename = where.split(":")[0]
        for cat, suffix, funcs in CATEGORIES:
            if filename.endswith(suffix) and ("*" in funcs or name in funcs):
                return cat
    return "other"


# -- child: one measured run ---------------------------------------------------------------
class GcTimer:
    """Times every collection through ``gc.callbacks``: seconds and count per generation.

    CPU time of the collecting thread (``time.thread_time``), not wall time: the GIL can
    change hands when the "start" callback (Python code) returns, and wall time would then
    charge the other threads' work to the collector.
    """

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self.collected = 0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._t0 = time.thread_time()
        else:
            gen = info["generation"]
            self.seconds[gen] += time.thread_time() - self._t0
            self.count[gen] += 1
            self.collected += info.get("collected", 0)

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self)


class _RoutiluxRun:
    def __init__(self, workload: str, pool: int) -> None:
        from routilux import Runtime

        self.w = WORKLOADS[workload]
        self.flow, self.entry = _routilux_flow(self.w)
        self.rt = Runtime(thread_pool_size=pool, trace=False)
        self.rt.exec(self.flow.flow_id)

    def batch(self, jobs: int, timeout: float = 120.0) -> int:
        """Post ``jobs`` jobs at once (as the benchmark does) and wait; jobs completed."""
        done = [0]
        lock = threading.Lock()

        def on_done(job: Any) -> None:
            if job.status == "completed":
                with lock:
                    done[0] += 1

        post, fid, entry = self.rt.post, self.flow.flow_id, self.entry
        for i in range(jobs):
            post(fid, entry, "in", {"i": i})[1].add_done_callback(on_done)
        self.rt.wait_until_all_jobs_finished(timeout=timeout)
        return done[0]

    def close(self) -> None:
        self.rt.shutdown(wait=False)


class _ChainRun:
    def __init__(self, workload: str, pool: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.w = WORKLOADS[workload]
        self.ex = ThreadPoolExecutor(max_workers=pool)

    def batch(self, jobs: int, timeout: float = 120.0) -> int:
        done = Completion(jobs)
        entry = _chain(self.w, self.ex.submit, done)
        _post_all(self.ex.submit, entry, jobs)
        done.all_done.wait(timeout)
        return done.finished

    def close(self) -> None:
        self.ex.shutdown(wait=False)


def _post_all(submit: Any, entry: Any, jobs: int) -> None:
    for i in range(jobs):
        submit(entry, i)


def _make(variant: str, workload: str, pool: int) -> Any:
    return _RoutiluxRun(workload, pool) if variant == "routilux" else _ChainRun(workload, pool)


def child_measure(variant: str, workload: str, pool: int, jobs: int, gc_off: bool) -> dict:
    run = _make(variant, workload, pool)
    try:
        run.batch(min(WARMUP_JOBS, jobs))
        gc.collect()
        if gc_off:
            gc.disable()
        with GcTimer() as timer:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            done = run.batch(jobs)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        gc.enable()
    finally:
        run.close()
    return {"variant": variant, "jobs": jobs, "done": done, "wall_s": wall, "cpu_s": cpu,
            "gc_s": timer.seconds, "gc_n": timer.count, "gc_collected": timer.collected,
            "gc_off": gc_off}


def child_loop(variant: str, workload: str, pool: int, jobs: int, seconds: float,
               out: str) -> None:
    """Batches of ``jobs`` for ``seconds`` (what py-spy samples); totals to ``out``."""
    run = _make(variant, workload, pool)
    total = 0
    try:
        run.batch(min(WARMUP_JOBS, jobs))
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with GcTimer() as timer:
            while time.perf_counter() - wall0 < seconds:
                total += run.batch(jobs)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        run.close()
    Path(out).write_text(json.dumps({"jobs": total, "wall_s": wall, "cpu_s": cpu,
                                     "gc_s": timer.seconds, "gc_n": timer.count}))


def child_retained(workload: str, pool: int) -> dict:
    """GC-tracked objects the retained finished jobs add, and a full pass with/without."""
    from routilux._engine._jobs import MAX_FINISHED_JOBS

    run = _RoutiluxRun(workload, pool)
    try:
        run.batch(MAX_FINISHED_JOBS)
        run.rt.wait_until_all_workers_idle(30)
        gc.collect()
        table = run.rt._table
        kept = len(table.jobs)

        def full_pass_ms() -> float:
            samples = []
            for _ in range(5):
                t0 = time.perf_counter()
                gc.collect()
                samples.append((time.perf_counter() - t0) * 1e3)
            return statistics.median(samples)

        with_jobs_objects = len(gc.get_objects())
        with_jobs_ms = full_pass_ms()
        some = next(iter(table.jobs.values()))
        per_job = _tracked_closure(some)
        with table.lock:
            table.jobs.clear()
            table.finished_order.clear()
        # The slot queues keep their last consumed points (and through them the jobs)
        # until the next purge: drop them too, or the jobs stay reachable.
        worker = next(iter(run.rt._workers.values()))
        for q in worker._queues.values():
            with q._lock:
                q._items.clear()
                q._cursor = 0
        for dq in run.rt._monitor._deadlines.values():
            dq.clear()
        gc.collect()
        without_objects = len(gc.get_objects())
        without_ms = full_pass_ms()
    finally:
        run.close()
    return {"kept": kept, "objects_with": with_jobs_objects, "objects_without": without_objects,
            "full_pass_ms_with": with_jobs_ms, "full_pass_ms_without": without_ms,
            "tracked_per_job": per_job}


def _tracked_closure(job: Any) -> dict[str, int]:
    """The GC-tracked objects one finished job owns (by type), not shared ones."""
    seen: dict[int, str] = {}
    shared_types = ("function", "method-wrapper", "module", "type", "Runtime", "ThreadPool",
                    "JobTable")

    def visit(obj: Any, depth: int) -> None:
        if id(obj) in seen or not gc.is_tracked(obj) or depth > 3:
            return
        kind = type(obj).__name__
        if kind in shared_types:
            return
        seen[id(obj)] = kind
        if kind == "method":  # the bound method's self is the runtime: shared
            return
        for ref in gc.get_referents(obj):
            visit(ref, depth + 1)

    visit(job, 0)
    counts: dict[str, int] = defaultdict(int)
    for kind in seen.values():
        counts[kind] += 1
    return dict(counts)


# -- parent ---------------------------------------------------------------------------------
def _run_child(args: list[str]) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:])
    raise RuntimeError(f"child {' '.join(args)} failed: {proc.stderr[-2000:]}")


def _pyspy(variant: str, workload: str, pool: int, jobs: int, seconds: float,
           rate: int) -> tuple[dict[str, int], dict]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw, totals = os.path.join(tmp, "raw.txt"), os.path.join(tmp, "totals.json")
        cmd = [spy, "record", "--gil", "--threads", "--nonblocking", "--nolineno",
               "-r", str(rate), "--format", "raw", "-o", raw, "--",
               sys.executable, str(Path(__file__).resolve()), "--child", "loop", variant,
               workload, str(pool), str(jobs), str(seconds), totals]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 300,
                              cwd=ROOT, check=False)
        if not os.path.exists(raw) or not os.path.exists(totals):
            raise RuntimeError(f"py-spy failed ({proc.returncode}): {proc.stderr[-2000:]}")
        sleeping = WORKLOADS[workload].sleep_s > 0
        counts: dict[str, int] = defaultdict(int)
        leaves: dict[str, int] = defaultdict(int)
        main = 0
        with open(raw, encoding="utf-8") as f:
            for line in f:
                stack, _, n = line.rstrip("\n").rpartition(" ")
                frames = stack.split(";")[1:]  # [0] is "thread (tid)"
                if not any(("_pool.py" in fr and fr.startswith("_thread_loop "))
                           or "concurrent/futures/thread.py" in fr or "_post_all" in fr
                           or "RoutiluxRun.batch" in fr or "child_loop" in fr
                           for fr in frames):
                    continue  # start-up, the warm-up: not the measured loop
                if any(fr.startswith("_find_and_load ") for fr in frames):
                    continue  # importing routilux inside child_loop: start-up too
                if any(fr.startswith("GcTimer.__call__ ") for fr in frames):
                    # py-spy shows a collection under the gc.callbacks hook's frame (the
                    # last Python frame the collecting thread ran): that is the collector.
                    counts["GC (sampled)"] += int(n)
                    leaves["(garbage collection)"] += int(n)
                    continue
                if sleeping and frames[-1].startswith("stage_work "):
                    # py-spy --gil charges the last GIL holder while every thread sleeps
                    # (time.sleep released the GIL): that is idle time, not CPU.
                    counts["logic sleeping (GIL released)"] += int(n)
                    continue
                counts[_classify(frames)] += int(n)
                leaves[_short(frames[-1])] += int(n)
                if not any(fr.startswith(("_thread_loop ", "_worker ")) for fr in frames):
                    main += int(n)
        info = json.loads(Path(totals).read_text())
        info["leaves"] = dict(leaves)
        info["main_thread_samples"] = main
        return dict(counts), info


def _short(frame: str) -> str:
    name, _, where = frame.rpartition(" (")
    return f"{name} ({where.rstrip(')').split('/')[-1]})"


def _instructions(variant: str, workload: str, pool: int, jobs: int) -> int:
    """Instructions the measure child executes (valgrind cachegrind, no cache simulation).

    Load-independent, unlike times on a shared machine: PYTHONHASHSEED=0 and valgrind's
    fair scheduling keep the run-to-run spread near 1 %.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind on PATH")
    env = dict(os.environ, PYTHONHASHSEED="0")
    proc = subprocess.run(
        [valgrind, "--tool=cachegrind", "--cache-sim=no", "--fair-sched=yes",
         "--cachegrind-out-file=/dev/null", sys.executable, str(Path(__file__).resolve()),
         "--child", "measure", variant, workload, str(pool), str(jobs), "0"],
        capture_output=True, text=True, timeout=1800, cwd=ROOT, env=env, check=False)
    for line in proc.stderr.splitlines():
        if "I   refs:" in line or "I refs:" in line:
            return int(line.split(":")[1].strip().replace(",", ""))
    raise RuntimeError(f"valgrind gave no instruction count: {proc.stderr[-1500:]}")


def instructions_per_job(workload: str, pool: int, repeats: int) -> dict[str, list[float]]:
    """(Ir(N2 jobs) - Ir(N1 jobs)) / (N2 - N1) per variant: start-up and warm-up cancel."""
    n1, n2 = 300, 2300
    out: dict[str, list[float]] = {"routilux": [], "chain": []}
    for _ in range(repeats):
        for variant in out:
            big = _instructions(variant, workload, pool, n2)
            small = _instructions(variant, workload, pool, n1)
            out[variant].append((big - small) / (n2 - n1))
    return out


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, rest = argv[1], argv[2:]
        if kind == "measure":
            variant, workload, pool, jobs, gc_off = rest
            out = child_measure(variant, workload, int(pool), int(jobs), gc_off == "1")
        elif kind == "loop":
            variant, workload, pool, jobs, seconds, path = rest
            child_loop(variant, workload, int(pool), int(jobs), float(seconds), path)
            return
        elif kind == "retained":
            out = child_retained(rest[0], int(rest[1]))
        else:
            raise SystemExit(f"unknown child {kind!r}; one of: measure, loop, retained")
        print("@@" + json.dumps(out), flush=True)
        return

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=sorted(DEFAULT_POOL), default="trivial")
    parser.add_argument("--pool", type=int, help="threads (default: the benchmark's cell)")
    parser.add_argument("--jobs", type=int, help="jobs per timed run (default: --quick's)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant")
    parser.add_argument("--seconds", type=float, default=6.0, help="py-spy sampling time")
    parser.add_argument("--rate", type=int, default=500, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=15,
                        help="also list the N functions with the most samples (self time)")
    parser.add_argument("--no-pyspy", action="store_true", help="timings and GC only")
    parser.add_argument("--retained", action="store_true",
                        help="also count what the retained finished jobs cost the collector")
    parser.add_argument("--instructions", action="store_true",
                        help="also count instructions per job under valgrind (slow: minutes; "
                             "the load-independent A/B metric on a shared machine)")
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args(argv)
    w = args.workload
    pool = args.pool or DEFAULT_POOL[w]
    jobs = args.jobs or DEFAULT_JOBS[w]

    runs: dict[tuple[str, bool], list[dict]] = defaultdict(list)
    for _ in range(args.repeats):  # interleaved: the machine's load hits both alike
        for variant in ("routilux", "chain"):
            for gc_off in (False, True):
                runs[(variant, gc_off)].append(
                    _run_child(["measure", variant, w, str(pool), str(jobs),
                                "1" if gc_off else "0"]))
    report: dict[str, Any] = {"workload": w, "pool": pool, "jobs": jobs, "runs": {
        f"{v}{'-gcoff' if off else ''}": r for (v, off), r in runs.items()}}

    print(f"# {w}: pool {pool}, {jobs} jobs per run, medians of {args.repeats} runs\n")
    print("| | routilux | chain | routilux / chain |")
    print("| :--- | ---: | ---: | ---: |")
    rows = {}
    for variant in ("routilux", "chain"):
        on, off = runs[(variant, False)], runs[(variant, True)]
        rows[variant] = {
            "rate": statistics.median(r["done"] / r["wall_s"] for r in on),
            "wall_us": _median(on, "wall_s") / jobs * 1e6,
            "cpu_us": _median(on, "cpu_s") / jobs * 1e6,
            "gc_us": statistics.median(sum(r["gc_s"]) for r in on) / jobs * 1e6,
            "gc_n": [statistics.median(r["gc_n"][g] for r in on) for g in range(3)],
            "rate_gcoff": statistics.median(r["done"] / r["wall_s"] for r in off),
            "cpu_us_gcoff": _median(off, "cpu_s") / jobs * 1e6,
        }
    r, c = rows["routilux"], rows["chain"]
    ratio = statistics.median(a["done"] / a["wall_s"] / (b["done"] / b["wall_s"])
                              for a, b in zip(runs[("routilux", False)],
                                              runs[("chain", False)], strict=True))
    for label, key, fmt in (("jobs/s", "rate", ",.0f"), ("wall µs per job", "wall_us", ".1f"),
                            ("CPU µs per job", "cpu_us", ".1f"),
                            ("GC µs per job (gc.callbacks)", "gc_us", ".1f"),
                            ("jobs/s with gc.disable()", "rate_gcoff", ",.0f"),
                            ("CPU µs per job with gc.disable()", "cpu_us_gcoff", ".1f")):
        print(f"| {label} | {format(r[key], fmt)} | {format(c[key], fmt)} | "
              f"{r[key] / c[key]:.2f} |")
    print(f"| collections gen0/1/2 per run | {'/'.join(f'{n:g}' for n in r['gc_n'])} | "
          f"{'/'.join(f'{n:g}' for n in c['gc_n'])} | |")
    print(f"\nroutilux / chain throughput, median of per-repeat ratios: **{ratio:.2f}x**")
    report["summary"] = rows
    report["ratio"] = ratio

    if not args.no_pyspy:
        print(f"\n## py-spy --gil, {args.rate} Hz, {args.seconds:g} s per variant, steady "
              "state: µs per job = the sampled child's CPU per job x sample share\n")
        shares = {}
        for variant in ("routilux", "chain"):
            counts, totals = _pyspy(variant, w, pool, jobs, args.seconds, args.rate)
            shares[variant] = (counts, totals)
        report["pyspy"] = {v: {"counts": cs, "totals": t} for v, (cs, t) in shares.items()}
        cats = [k for k in ORDER if any(k in cs for cs, _ in shares.values())]
        print("| part | routilux µs | routilux share | chain µs | chain share |")
        print("| :--- | ---: | ---: | ---: | ---: |")
        per_job = {}
        for variant, (counts, _totals) in shares.items():
            total = sum(v for k, v in counts.items() if k not in IDLE) or 1
            budget = _totals["cpu_s"] / _totals["jobs"] * 1e6
            per_job[variant] = {k: (budget * counts.get(k, 0) / total, counts.get(k, 0) / total)
                                for k in cats if k not in IDLE}
        for k in cats:
            if k in IDLE:
                continue
            ru, rs = per_job["routilux"].get(k, (0.0, 0.0))
            cu, cs_ = per_job["chain"].get(k, (0.0, 0.0))
            print(f"| {k} | {ru:.1f} | {rs:.0%} | {cu:.1f} | {cs_:.0%} |")
        rt_, ct_ = shares["routilux"][1], shares["chain"][1]
        print(f"| GC, the hook's thread CPU | {sum(rt_['gc_s']) / rt_['jobs'] * 1e6:.1f} | | "
              f"{sum(ct_['gc_s']) / ct_['jobs'] * 1e6:.1f} | |")
        print(f"| **CPU per job** | **{rt_['cpu_s'] / rt_['jobs'] * 1e6:.1f}** | | "
              f"**{ct_['cpu_s'] / ct_['jobs'] * 1e6:.1f}** | |")
        for variant, (counts, totals) in shares.items():
            n = sum(v for k, v in counts.items() if k not in IDLE)
            print(f"\n{variant}: {n} samples over {totals['jobs']} jobs "
                  f"({totals['jobs'] / totals['wall_s']:,.0f} jobs/s under py-spy); "
                  f"{totals['main_thread_samples'] / max(n, 1):.0%} on the posting thread; "
                  f"steady state CPU {totals['cpu_s'] / totals['jobs'] * 1e6:.1f} µs per job, "
                  f"GC {sum(totals['gc_s']) / totals['jobs'] * 1e6:.1f} µs per job "
                  f"(collections gen0/1/2 {'/'.join(map(str, totals['gc_n']))}, "
                  f"{'/'.join(f'{s * 1e3:.0f}' for s in totals['gc_s'])} ms)")
            if args.top:
                print(f"\n| {variant}: function (self) | samples | share | µs per job |")
                print("| :--- | ---: | ---: | ---: |")
                budget = totals["cpu_s"] / totals["jobs"] * 1e6
                top = sorted(totals["leaves"].items(), key=lambda kv: -kv[1])[:args.top]
                for name, k in top:
                    print(f"| {name} | {k} | {k / n:.1%} | {budget * k / n:.2f} |")
        report["per_job"] = per_job

    if args.retained:
        ret = _run_child(["retained", w, str(pool)])
        report["retained"] = ret
        print(f"\n## The {ret['kept']:,} finished jobs the runtime keeps\n")
        print(f"- GC-tracked objects: {ret['objects_with']:,} with them, "
              f"{ret['objects_without']:,} without: "
              f"{(ret['objects_with'] - ret['objects_without']) / ret['kept']:.1f} per job "
              f"(one job owns {ret['tracked_per_job']})")
        print(f"- one full collection (gc.collect()): {ret['full_pass_ms_with']:.2f} ms with "
              f"them, {ret['full_pass_ms_without']:.2f} ms without")
    if args.instructions:
        ir = instructions_per_job(w, pool, max(1, min(args.repeats, 2)))
        report["instructions"] = ir
        r_ir, c_ir = statistics.median(ir["routilux"]), statistics.median(ir["chain"])
        print(f"\n## Instructions per job (valgrind, medians of {len(ir['chain'])})\n")
        print(f"- routilux {r_ir / 1e3:.1f}k, chain {c_ir / 1e3:.1f}k: chain/routilux "
              f"**{c_ir / r_ir:.2f}** (what the throughput ratio would be if both were "
              "bound by interpreter work alone)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
