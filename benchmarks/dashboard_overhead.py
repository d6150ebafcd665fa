"""What a live dashboard costs the runtime it watches, and what one refresh costs.

1. Throughput of a traced runtime (jobs/s) with a Dashboard attached and its pump ticking at
   10 Hz (no browser: the widget's comm only JSON-encodes each message, as a kernel would
   before sending it) against the same runtime with no dashboard. Runs alternate in one
   process; the medians and their ratio are printed. Target: ratio >= 0.9.
2. One refresh over 100,000 trace events: ``tracer.read`` of all of them, aggregation into
   the model, the delta message, its JSON encoding. Target: < 200 ms.
3. The pump's tick at 10k, 100k and 1M events in the trace (``tick_cost``): a steady tick
   over 10,000 new events should cost the same whatever the trace's size (the pump reads
   only what is new and folds it incrementally), and the first tick of a dashboard
   attached to a long trace is bounded (``MAX_TICK_EVENTS``).

Never asserts: timings depend on the machine.

    python benchmarks/dashboard_overhead.py [--jobs 20000] [--repeats 5] [--threads 4]
    python benchmarks/dashboard_overhead.py --ticks-only   # part 3 alone (~1 min)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routilux import Flow, Routine, Runtime
from routilux.trace import Tracer
from routilux.activation_policies import immediate_policy
from routilux_jupyter import Dashboard
from routilux_jupyter._model import DashboardModel
from routilux_jupyter._pump import MAX_TICK_EVENTS

TARGET_RATIO = 0.9  # throughput with a live dashboard / without
TARGET_REFRESH_MS = 200.0  # one refresh over REFRESH_EVENTS events
REFRESH_EVENTS = 100_000
TICK_SIZES = (10_000, 100_000, 1_000_000)  # events in the trace for tick_cost


def make_flow(work_iterations: int) -> Flow:
    def work(slot_data, policy_message, worker_state):
        total = 0
        for k in range(work_iterations):  # a little pure-Python work: holds the GIL
            total += k
        return total

    routine = Routine()
    routine.add_slot("in")
    routine.set_logic(work)
    routine.set_activation_policy(immediate_policy())
    flow = Flow(f"bench-dashboard-{uuid.uuid4().hex[:8]}")
    flow.add_routine(routine, "work")
    return flow


def encode_only(dash: Dashboard) -> None:
    """Make the view's comm JSON-encode each message (the kernel's cost) and drop it."""
    comm = dash.widget.children[1].comm  # the live view
    comm.send = lambda data=None, metadata=None, buffers=None: json.dumps(data)


def one_run(flow: Flow, jobs: int, threads: int, with_dashboard: bool) -> dict[str, float]:
    """One timed run: jobs/s, and (with a dashboard) its updates and kernel CPU share."""
    rt = Runtime(thread_pool_size=threads, trace=True)
    dash = None
    try:
        rt.exec(flow.flow_id)
        if with_dashboard:
            dash = Dashboard(rt, interval_s=0.1)
            encode_only(dash)
            cpu_before = dash.cpu_s
        start = time.perf_counter()
        for i in range(jobs):
            rt.post(flow.flow_id, "work", "in", {"i": i})
        if not rt.wait_until_all_jobs_finished(timeout=600):
            raise RuntimeError(f"jobs did not finish: {rt.statistics()}")
        elapsed = time.perf_counter() - start
        out = {"rate": jobs / elapsed, "updates": 0.0, "cpu_share": 0.0}
        if dash is not None:
            out["updates"] = dash.updates_sent
            out["cpu_share"] = (dash.cpu_s - cpu_before) / elapsed
        return out
    finally:
        if dash is not None:
            dash.close()
        rt.shutdown()


def overhead(jobs: int, repeats: int, threads: int, work_iterations: int) -> dict[str, Any]:
    """Alternating plain/live runs. Besides the medians, the median of each adjacent pair's
    ratio: on a shared machine, load drifts between runs, and pairs cancel most of it."""
    flow = make_flow(work_iterations)
    one_run(flow, min(jobs, 2000), threads, True)  # warm-up
    plain, live, pairs, updates, shares = [], [], [], [], []
    for k in range(repeats):
        order = (False, True) if k % 2 == 0 else (True, False)
        runs = {kind: one_run(flow, jobs, threads, kind) for kind in order}
        plain.append(runs[False]["rate"])
        live.append(runs[True]["rate"])
        pairs.append(runs[True]["rate"] / runs[False]["rate"])
        updates.append(runs[True]["updates"])
        shares.append(runs[True]["cpu_share"])
    return {
        "plain": statistics.median(plain),
        "live": statistics.median(live),
        "pair_ratio": statistics.median(pairs),
        "updates": statistics.median(updates),
        "cpu_share": statistics.median(shares),
    }


def fill(rt: Runtime, flow: Flow, events: int, per_round: int = 2000) -> None:
    """Post jobs until the runtime's tracer holds at least ``events`` events."""
    i = 0
    while rt.tracer.last_seq < events:
        for _ in range(per_round):
            rt.post(flow.flow_id, "work", "in", {"i": i})
            i += 1
        if not rt.wait_until_all_jobs_finished(timeout=600):
            raise RuntimeError(f"jobs did not finish: {rt.statistics()}")


def refresh_cost(repeats: int, threads: int) -> dict[str, Any]:
    """Median ms of one refresh over >= REFRESH_EVENTS new events, and of its parts."""
    flow = make_flow(20)
    totals, reads, models, encodes, counts, events_ms = [], [], [], [], [], []
    for _ in range(repeats):
        rt = Runtime(thread_pool_size=threads, trace=True)
        try:
            rt.exec(flow.flow_id)
            dash = Dashboard(rt, start=False)  # attached first: the events are all new to it
            encode_only(dash)
            fill(rt, flow, REFRESH_EVENTS)
            counts.append(rt.tracer.last_seq)
            start = time.perf_counter()
            dash.refresh()
            totals.append((time.perf_counter() - start) * 1e3)
            dash.close()
            # the parts, measured apart on the same events
            t = time.perf_counter()
            rt.tracer.read(0)  # TraceEvent records: what read_rows saves
            t0 = time.perf_counter()
            rows = rt.tracer.read_rows(0)
            t1 = time.perf_counter()
            events_ms.append((t0 - t) * 1e3)
            model = DashboardModel(window_s=30.0)
            model.feed(rows)
            msg = model.delta()
            t2 = time.perf_counter()
            json.dumps(msg)
            t3 = time.perf_counter()
            reads.append((t1 - t0) * 1e3)
            models.append((t2 - t1) * 1e3)
            encodes.append((t3 - t2) * 1e3)
        finally:
            rt.shutdown()
    return {
        "events": int(statistics.median(counts)),
        "total_ms": statistics.median(totals),
        "read_ms": statistics.median(reads),
        "read_events_ms": statistics.median(events_ms),
        "model_ms": statistics.median(models),
        "encode_ms": statistics.median(encodes),
    }


def tick_cost(events: int, batch: int, threads: int, ticks: int = 5) -> dict[str, Any]:
    """CPU ms of the pump's work with ``events`` in the trace.

    - ``attach_ms``: the first tick of a dashboard attached to that trace (``Dashboard``
      ticks once when made; bounded: it folds at most ``MAX_TICK_EVENTS``, the rest
      follows over the next ticks);
    - ``catch_up_ms``: ``refresh()`` folding everything held after that (a cell's
      explicit refresh is not bounded);
    - ``tick_ms``: the median of ``ticks`` steady pump ticks over ``batch`` new events
      each: what the pump pays every 0.1 s. It should depend on the new events only,
      not on the trace's size.

    The tracer is big enough to hold every event (no drops). CPU time of this thread
    (``time.thread_time``), as ``Dashboard.cpu_s`` counts it.
    """
    flow = make_flow(20)
    rt = Runtime(thread_pool_size=threads, trace=Tracer(capacity=events + 4 * batch))
    try:
        rt.exec(flow.flow_id)
        fill(rt, flow, events)
        held_at_attach = rt.tracer.last_seq
        dash = Dashboard(rt, start=False)  # its first tick (in __init__) is the attach
        attach_ms = dash.cpu_s * 1e3
        encode_only(dash)
        start = time.thread_time()
        dash.refresh()
        catch_up_ms = (time.thread_time() - start) * 1e3
        steady, new = [], []
        for _ in range(ticks):
            held = rt.tracer.last_seq
            fill(rt, flow, held + batch, per_round=200)
            new.append(rt.tracer.last_seq - held)
            start = time.thread_time()
            dash.pump_tick()
            steady.append((time.thread_time() - start) * 1e3)
        dash.close()
        return {"events": held_at_attach, "attach_ms": attach_ms,
                "catch_up_ms": catch_up_ms, "tick_ms": statistics.median(steady),
                "tick_events": statistics.median(new)}
    finally:
        rt.shutdown()


def tick_costs(sizes: list[int], batch: int = 10_000, threads: int = 4,
               repeats: int = 3) -> list[dict[str, Any]]:
    """``tick_cost`` at each trace size, medians of ``repeats`` (one run for >= 1M)."""
    out = []
    for size in sizes:
        runs = [tick_cost(size, batch, threads) for _ in range(1 if size >= 1_000_000 else repeats)]
        out.append({key: statistics.median(r[key] for r in runs) for key in runs[0]})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs per timed run")
    parser.add_argument("--repeats", type=int, default=11, help="runs of each kind (median)")
    parser.add_argument("--threads", type=int, default=4, help="pool threads")
    parser.add_argument("--work", type=int, default=200,
                        help="loop iterations of pure-Python work per job")  # fmt: skip
    parser.add_argument("--ticks-only", action="store_true",
                        help="only the pump's tick cost at 10k/100k/1M trace events")
    args = parser.parse_args(argv)
    if args.ticks_only:
        print_tick_costs(args.threads)
        return

    print(f"Python {sys.version.split()[0]}; {args.jobs} jobs x {args.repeats} runs each, "
          f"{args.threads} threads, {args.work} iterations of work per job")  # fmt: skip
    o = overhead(args.jobs, args.repeats, args.threads, args.work)
    print(f"{'throughput (median)':<44}{'jobs/s':>10}")
    print(f"{'traced, no dashboard':<44}{o['plain']:>10.0f}")
    print(f"{'traced, live dashboard (pump at 10 Hz)':<44}{o['live']:>10.0f}")
    print(
        f"ratio live/plain: {o['live'] / o['plain']:.3f} of the medians, "
        f"{o['pair_ratio']:.3f} median of paired runs (target >= {TARGET_RATIO})"
    )
    print(
        f"dashboard: {o['updates']:.0f} updates per live run; its ticks used "
        f"{100 * o['cpu_share']:.1f}% of one CPU (Dashboard.cpu_s / run time)"
    )

    r = refresh_cost(max(3, args.repeats), args.threads)
    print(
        f"one refresh over {r['events']} events: {r['total_ms']:.1f} ms "
        f"(target < {TARGET_REFRESH_MS:.0f} ms)"
    )
    print(f"  parts: tracer.read_rows {r['read_ms']:.1f} ms, aggregation + delta "
          f"{r['model_ms']:.1f} ms, JSON {r['encode_ms']:.1f} ms; for comparison "
          f"tracer.read (TraceEvent records) {r['read_events_ms']:.1f} ms")  # fmt: skip
    print_tick_costs(args.threads)


def print_tick_costs(threads: int) -> None:
    rows = tick_costs(list(TICK_SIZES), threads=threads)
    print("CPU ms of the pump thread (time.thread_time); a steady tick folds ~10,000 new "
          f"events; at most {MAX_TICK_EVENTS:,} per pump tick")
    print(f"{'events in the trace':>20}{'attach tick ms':>16}{'catch-up ms':>13}"
          f"{'steady tick ms':>16}{'(new events)':>14}")
    for r in rows:
        print(f"{r['events']:>20,.0f}{r['attach_ms']:>16.1f}{r['catch_up_ms']:>13.1f}"
              f"{r['tick_ms']:>16.1f}{r['tick_events']:>14,.0f}")
    print(f"steady tick at {rows[-1]['events']:,.0f} events / at {rows[0]['events']:,.0f}: "
          f"{rows[-1]['tick_ms'] / rows[0]['tick_ms']:.2f}x (bounded: about 1x)")


if __name__ == "__main__":
    main()
