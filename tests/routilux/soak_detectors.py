"""Soak the pitfall detectors: the notebooks' examples, N runs each (issue 12, item 4).

Not collected by pytest (it takes minutes). Run it from the repository root:

    python tests/routilux/soak_detectors.py --runs 20 [--hogs 2] [--only NAME ...]

Each scenario is a notebook's example in plain Python (same flows, sizes and timings),
either its *fixed* code, where ``diagnose`` must find nothing, or its *wrong* code, where it
must find the pitfall the notebook teaches. ``--hogs N`` starts N ``while True: pass``
processes for the duration (the loaded machine of the issue) and ends them afterwards.
Prints, per scenario, how many runs gave the expected verdict, and the unexpected
findings' titles.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from routilux import (
    Flow,
    Routine,
    Runtime,
    all_slots_ready_policy,
    get_current_job,
    immediate_policy,
)
from routilux.diagnostics import Finding, diagnose
from routilux.sync import TracedLock


def _routine(logic: Any, slots: tuple[str, ...] = ("in",), event: str | None = None,
             policy: Any = None) -> Routine:
    r = Routine()
    for slot in slots:
        r.add_slot(slot)
    if event:
        r.add_event(event)
    r.set_logic(logic)
    r.set_activation_policy(policy or immediate_policy())
    return r


def _flow(*routines: tuple[str, Routine]) -> Flow:
    flow = Flow(f"soak-{uuid.uuid4().hex[:10]}")
    for name, r in routines:
        flow.add_routine(r, name)
    return flow


def _post_wait(rt: Runtime, flow: Flow, routine: str, n: int, timeout: float = 120) -> None:
    for i in range(n):
        rt.post(flow.flow_id, routine, "in", {"i": i})
    assert rt.wait_until_all_jobs_finished(timeout=timeout), rt.statistics()


# -- 00 quickstart ---------------------------------------------------------------------------
def quickstart_fixed() -> list[Finding]:
    def split_logic(d: Any, m: Any, ws: Any) -> None:
        for item in d["in"]:
            time.sleep(0.004)
            split.emit("words", words=str(item["i"]).split())

    def count_logic(d: Any, m: Any, ws: Any) -> None:
        for item in d["in"]:
            time.sleep(0.004)
            get_current_job().set_data("word_count", len(item["words"]))

    split = _routine(split_logic, event="words")
    flow = _flow(("split", split), ("count", _routine(count_logic)))
    flow.connect("split", "words", "count", "in")
    with Runtime(thread_pool_size=4, trace=True) as rt:
        _post_wait(rt, flow, "split", 400)
        return diagnose(rt)


# -- 01 shared mutable state -----------------------------------------------------------------
def _rendezvous(parties: int) -> Callable[[Any], float]:
    barrier = threading.Barrier(parties, timeout=10)

    def lookup(order: Any) -> float:
        barrier.wait()
        return 9.99

    return lookup


def shared_state_fixed() -> list[Finding]:
    lookup = _rendezvous(4)

    def logic(d: Any, m: Any, ws: Any) -> None:
        job = get_current_job()
        job.set_data("order", d["in"][0])
        lookup(job.get_data("order"))
        ws.modify_routine_state("tally", lambda s: {**s, "orders": s.get("orders", 0) + 1})

    flow = _flow(("tally", _routine(logic)))
    with Runtime(thread_pool_size=4, trace=True) as rt:
        _post_wait(rt, flow, "tally", 400)
        return diagnose(rt)


def shared_state_wrong() -> list[Finding]:
    lookup = _rendezvous(4)
    tally = Routine()
    tally.add_slot("in")
    tally.set_activation_policy(immediate_policy())
    tally.orders = 0

    def logic(d: Any, m: Any, ws: Any) -> None:
        seen = tally.orders
        lookup(d["in"][0])
        tally.orders = seen + 1

    tally.set_logic(logic)
    flow = _flow(("tally", tally))
    with Runtime(thread_pool_size=4, trace=True) as rt:
        _post_wait(rt, flow, "tally", 400)
        return diagnose(rt)


# -- 02 blocking the pool --------------------------------------------------------------------
def _fetch_flow(sleep: bool) -> Flow:
    def fetch(d: Any, m: Any, ws: Any) -> None:
        for _ in d["in"]:
            time.sleep(0.2)

    async def fetch_async(d: Any, m: Any, ws: Any) -> None:
        for _ in d["in"]:
            await asyncio.sleep(0.2)

    return _flow(("fetch", _routine(fetch if sleep else fetch_async)))


def blocking_wrong() -> list[Finding]:
    with Runtime(thread_pool_size=2, trace=True) as rt:
        _post_wait(rt, _fetch_flow(sleep=True), "fetch", 12)
        return diagnose(rt)


def blocking_fixed_bigger_pool() -> list[Finding]:
    with Runtime(thread_pool_size=12, trace=True) as rt:
        _post_wait(rt, _fetch_flow(sleep=True), "fetch", 12)
        return diagnose(rt)


def blocking_fixed_async_12() -> list[Finding]:
    with Runtime(thread_pool_size=2, trace=True) as rt:
        _post_wait(rt, _fetch_flow(sleep=False), "fetch", 12)
        return diagnose(rt)


def async_flood_1000() -> list[Finding]:
    with Runtime(thread_pool_size=2, trace=True) as rt:
        _post_wait(rt, _fetch_flow(sleep=False), "fetch", 1000)
        return diagnose(rt)


# -- 03 deadlocks ----------------------------------------------------------------------------
def _bank(rt: Runtime, debit: Any, audit: Any) -> list[Finding]:
    flow = _flow(("debit", _routine(debit)), ("audit", _routine(audit)))
    rt.post(flow.flow_id, "debit", "in", {"amount": 10})
    rt.post(flow.flow_id, "audit", "in", {"amount": 0})
    assert rt.wait_until_all_jobs_finished(timeout=30)
    return diagnose(rt)


def deadlock_wrong() -> list[Finding]:
    with Runtime(thread_pool_size=2, trace=True) as rt:
        accounts = TracedLock("accounts", tracer=rt.tracer)
        ledger = TracedLock("ledger", tracer=rt.tracer)
        meet = threading.Barrier(2, timeout=10)

        def transfer(first: TracedLock, second: TracedLock) -> Any:
            def logic(d: Any, m: Any, ws: Any) -> None:
                with first:
                    meet.wait()
                    with second:  # one of the two raises DeadlockError: the job fails
                        pass

            return logic

        return _bank(rt, transfer(accounts, ledger), transfer(ledger, accounts))


def deadlock_fixed_ordered() -> list[Finding]:
    with Runtime(thread_pool_size=2, trace=True) as rt:
        accounts = TracedLock("accounts", tracer=rt.tracer)
        ledger = TracedLock("ledger", tracer=rt.tracer)
        together = threading.Barrier(2, timeout=10)

        def ordered(d: Any, m: Any, ws: Any) -> None:
            together.wait()
            with accounts, ledger:
                time.sleep(0.05)

        return _bank(rt, ordered, ordered)


# -- 04 pool exhaustion ----------------------------------------------------------------------
def _backend(rt: Runtime, **post_options: Any) -> list[Finding]:
    def serve(d: Any, m: Any, ws: Any) -> None:
        for _ in d["in"]:
            time.sleep(0.020)

    server = Routine()
    server.add_slot("in", watermark=0.0)
    server.set_logic(serve)
    server.set_activation_policy(immediate_policy())
    flow = _flow(("serve", server))
    start = time.perf_counter()
    for n in range(1000):
        rt.post(flow.flow_id, "serve", "in", {"body": bytes(16 * 1024)}, **post_options)
        if n % 10 == 9:
            time.sleep(max(0.0, start + (n + 1) / 500 - time.perf_counter()))
    assert rt.wait_until_all_jobs_finished(timeout=120)
    return diagnose(rt)


def exhaustion_wrong() -> list[Finding]:
    with Runtime(thread_pool_size=4, trace=True) as rt:
        return _backend(rt)


def exhaustion_fixed_sized() -> list[Finding]:
    with Runtime(thread_pool_size=12, trace=True) as rt:
        return _backend(rt)


def exhaustion_fixed_bounded() -> list[Finding]:
    with Runtime(thread_pool_size=4, max_queue_size=40, trace=True) as rt:
        return _backend(rt, block=True, timeout=30)


# -- 05 barriers -----------------------------------------------------------------------------
def _shop(policy: Any) -> list[Finding]:
    slow, delivered = threading.Event(), threading.Semaphore(0)

    def split_logic(d: Any, m: Any, ws: Any) -> None:
        split.emit("request", product=d["in"][0]["product"])

    def price_logic(d: Any, m: Any, ws: Any) -> None:
        price.emit("answer", product=d["in"][0]["product"])
        delivered.release()

    def stock_logic(d: Any, m: Any, ws: Any) -> None:
        product = d["in"][0]["product"]
        if product == 0:
            assert slow.wait(timeout=10)
        stock.emit("answer", product=product)

    def quote_logic(d: Any, m: Any, ws: Any) -> None:
        get_current_job().set_data("quote", (d["price"][0]["product"], d["stock"][0]["product"]))

    split = _routine(split_logic, event="request")
    price = _routine(price_logic, event="answer")
    stock = _routine(stock_logic, event="answer")
    quote = _routine(quote_logic, slots=("price", "stock"), event="done", policy=policy)
    flow = _flow(("split", split), ("price", price), ("stock", stock), ("quote", quote))
    flow.connect("split", "request", "price", "in")
    flow.connect("split", "request", "stock", "in")
    flow.connect("price", "answer", "quote", "price")
    flow.connect("stock", "answer", "quote", "stock")
    with Runtime(thread_pool_size=6, trace=True) as rt:
        rt.post(flow.flow_id, "split", "in", {"product": 0})
        assert delivered.acquire(timeout=10)
        for product in range(1, 6):
            _, job = rt.post(flow.flow_id, "split", "in", {"product": product})
            assert job.wait(timeout=10)
        slow.set()
        assert rt.wait_until_all_jobs_finished(timeout=10)
        return diagnose(rt)


def barrier_wrong() -> list[Finding]:
    return _shop(all_slots_ready_policy())


def barrier_fixed_matched() -> list[Finding]:
    return _shop(all_slots_ready_policy(match_job=True))


# -- the demo --------------------------------------------------------------------------------
def _demo(*args: str) -> list[Finding]:
    from routilux import demo

    found: list[Finding] = []
    real = demo.diagnose

    def keep(rt: Any) -> list[Finding]:
        found.extend(real(rt))
        return found

    demo.diagnose = keep
    try:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            demo.main(list(args))
    finally:
        demo.diagnose = real
    return found


def demo_default() -> list[Finding]:
    return _demo()


def demo_pool2_io5() -> list[Finding]:
    return _demo("--pool", "2", "--io-ms", "5", "--jobs", "2000")


SCENARIOS: dict[str, tuple[Callable[[], list[Finding]], str | None]] = {
    # name: (run, the finding kind its wrong code must give; None = must find nothing)
    "00 quickstart (fixed)": (quickstart_fixed, None),
    "01 shared state, FixedTally (fixed)": (shared_state_fixed, None),
    "01 shared state, Tally (wrong)": (shared_state_wrong, "shared_mutable_state"),
    "02 blocking, pool of 12 (fixed)": (blocking_fixed_bigger_pool, None),
    "02 blocking, async def x12 (fixed)": (blocking_fixed_async_12, None),
    "02 async flood x1000 on pool 2 (fixed)": (async_flood_1000, None),
    "02 blocking, time.sleep on pool 2 (wrong)": (blocking_wrong, "blocking"),
    "03 deadlock, one lock order (fixed)": (deadlock_fixed_ordered, None),
    "03 deadlock, opposite orders (wrong)": (deadlock_wrong, "deadlock"),
    "04 exhaustion, Little's-law pool (fixed)": (exhaustion_fixed_sized, None),
    "04 exhaustion, max_queue_size=40 (fixed)": (exhaustion_fixed_bounded, None),
    "04 exhaustion, 4 threads (wrong)": (exhaustion_wrong, "pool_exhaustion"),
    "05 barrier, match_job=True (fixed)": (barrier_fixed_matched, None),
    "05 barrier, FIFO joins (wrong)": (barrier_wrong, "barrier"),
    "demo default (healthy)": (demo_default, None),
    "demo --pool 2 --io-ms 5 (wrong)": (demo_pool2_io5, "pool_exhaustion"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hogs", type=int, default=0, help="CPU-hog processes to run beside")
    parser.add_argument("--only", nargs="*", help="scenario names containing these words")
    args = parser.parse_args(argv)
    logging.getLogger("routilux").setLevel(logging.CRITICAL)  # the deadlock run's own error
    chosen = {n: s for n, s in SCENARIOS.items()
              if not args.only or any(w in n for w in args.only)}
    # SIGTERM (timeout, kill) ends the run through the finally below, hogs included.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
            for _ in range(args.hogs)]
    failures = 0
    try:
        for name, (run, expected) in chosen.items():
            good = 0
            unexpected: Counter[str] = Counter()
            for _ in range(args.runs):
                findings = run()
                kinds = {f.kind for f in findings}
                ok = kinds == set() if expected is None else expected in kinds
                good += ok
                for f in findings:
                    if f.kind != expected:
                        unexpected[f"{f.kind}: {f.title[:110]}"] += 1
            failures += args.runs - good
            print(f"{good:3}/{args.runs}  {name}", flush=True)
            for title, n in unexpected.most_common(3):
                print(f"         {n}x {title}", flush=True)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
