"""Property: random DAG flows, random pool sizes, random failures; every job ends, no leaks.

Hypothesis builds a flow of 2-6 routines in topological order. Node 0 is the entry. Later
nodes are ``immediate`` (one slot, fed by one or two earlier nodes: fan-in), ``join``
(one slot per parent, ``all_slots_ready_policy(match_job=True)``: fan-out then fan-in) or
``batch`` (``batch_size_policy(b)``, a sink). A node may fail for some jobs: the entry with
STOP (the job fails, nothing downstream runs), any other node with SKIP or CONTINUE (it
raises before emitting; the job goes on) or RETRY (its first attempt raises, the re-run
succeeds and emits). Those choices keep the expected number of runs of every routine
exact, whatever the interleaving, so the test can compute it up front:

- immediate: one run per arriving item; join: per job, the minimum over its parents of
  the items they emitted; batch: per worker, arrivals // b.

Checked for every example: all jobs terminal after ``wait_until_all_jobs_finished``, with
the status the failures imply; every item a (non-batch) routine sees belongs to the job it
runs under, and the job's data holds only its own values; each routine ran exactly as
often as computed; the pool never ran more logic at once than its size, and the threads
this runtime added never exceeded the pool size plus the monitor thread.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from util import JOIN_TIMEOUT, Concurrency, make_routine, new_flow, new_threads, running

from routilux import (
    ErrorHandler,
    ErrorStrategy,
    all_slots_ready_policy,
    batch_size_policy,
    get_current_job,
    get_current_job_id,
    immediate_policy,
)


@dataclass(frozen=True)
class Node:
    kind: str  # "entry" | "immediate" | "join" | "batch"
    parents: tuple[int, ...]
    fail_mod: int | None  # fails for job j when (j + index) % fail_mod == 0
    strategy: str  # "stop" (entry) | "skip" | "continue" | "retry"
    batch: int = 1

    def fails(self, job: int, index: int) -> bool:
        return self.fail_mod is not None and (job + index) % self.fail_mod == 0


@st.composite
def flow_specs(draw: st.DrawFn) -> list[Node]:
    nodes = [Node("entry", (), draw(st.sampled_from([None, None, 3, 5])), "stop")]
    for _ in range(draw(st.integers(1, 5))):
        emitters = [i for i, n in enumerate(nodes) if n.kind != "batch"]
        kind = draw(st.sampled_from(["immediate", "join", "batch"]))
        if kind == "join" and len(emitters) < 2:
            kind = "immediate"
        if kind == "join":
            k = draw(st.integers(2, min(3, len(emitters))))
            parents = tuple(sorted(draw(st.permutations(emitters))[:k]))
        elif kind == "immediate":
            parents = tuple(sorted(draw(st.sets(
                st.sampled_from(emitters), min_size=1, max_size=min(2, len(emitters))))))
        else:
            parents = (draw(st.sampled_from(emitters)),)
        nodes.append(Node(
            kind, parents,
            fail_mod=draw(st.sampled_from([None, None, 2, 3, 4])),
            strategy=draw(st.sampled_from(["skip", "continue", "retry"])),
            batch=draw(st.integers(1, 4)) if kind == "batch" else 1,
        ))
    return nodes


def expected_runs(nodes: list[Node], jobs: int, workers: int) -> tuple[list[int], set[int]]:
    """Runs per node, and the job numbers that must fail."""
    runs = [0] * len(nodes)
    batch_arrivals: Counter[tuple[int, int]] = Counter()
    failed: set[int] = set()
    for j in range(jobs):
        emits = [0] * len(nodes)
        runs[0] += 1
        if nodes[0].fails(j, 0):
            failed.add(j)
            continue
        emits[0] = 1
        for i, node in enumerate(nodes[1:], start=1):
            if node.kind == "immediate":
                act = sum(emits[p] for p in node.parents)
            elif node.kind == "join":
                act = min(emits[p] for p in node.parents)
            else:
                batch_arrivals[(j % workers, i)] += emits[node.parents[0]]
                continue
            if node.fails(j, i) and node.strategy == "retry":
                runs[i] += 2 * act  # each activation fails once, then its re-run emits
                emits[i] = act
                continue
            runs[i] += act
            emits[i] = 0 if node.fails(j, i) else act
    for (_, i), arrivals in batch_arrivals.items():
        runs[i] += arrivals // nodes[i].batch
    return runs, failed


class Probe:
    """What the logic calls saw, collected under one lock."""

    def __init__(self, size: int, baseline: set[threading.Thread]) -> None:
        self.lock = threading.Lock()
        self.runs: Counter[int] = Counter()
        self.leaks: list[tuple] = []
        self.max_new_threads = 0
        self.max_pool_threads = 0
        self.attempted: dict[int, list] = {}  # id(items list) -> the list (kept alive)
        self.concurrency = Concurrency()
        self.baseline = baseline
        self.size = size

    def sample(self, rt) -> None:
        extra = len(new_threads(self.baseline))
        pool_threads = rt.statistics().threads
        with self.lock:
            self.max_new_threads = max(self.max_new_threads, extra)
            self.max_pool_threads = max(self.max_pool_threads, pool_threads)


def build_flow(nodes: list[Node], probe: Probe, rt_box: list):
    flow = new_flow("prop")
    routines = []
    for i, node in enumerate(nodes):
        slots = tuple(f"s{k}" for k in range(len(node.parents))) if node.kind == "join" else ("in",)

        def logic(slot_data, policy_message, worker_state, i=i, node=node):
            with probe.concurrency:
                probe.sample(rt_box[0])
                job = get_current_job()
                job_id = get_current_job_id()
                items = [item for lst in slot_data.values() for item in lst]
                with probe.lock:
                    probe.runs[i] += 1
                if node.kind == "entry":
                    n = items[0]["n"]
                    job.set_data("n", n)
                elif node.kind != "batch":
                    n = items[0]["n"]
                    for item in items:
                        if item["job"] != job_id or item["n"] != n or job.get_data("n") != n:
                            with probe.lock:
                                probe.leaks.append((i, job_id, item, job.get_data("n")))
                    job.set_data(f"seen-{i}", n)
                else:
                    return  # a batch joins items of several jobs by design
                if node.fails(n, i):
                    if node.strategy != "retry":
                        raise RuntimeError(f"node {i} fails for job {n}")
                    # A re-run gets the same item lists: fail only the first attempt.
                    first_list = next(iter(slot_data.values()))
                    with probe.lock:
                        first_attempt = id(first_list) not in probe.attempted
                        probe.attempted[id(first_list)] = first_list
                    if first_attempt:
                        raise ConnectionError(f"node {i} fails once for job {n}")
                routines[i].emit("out", job=job_id, n=n)

        if node.kind == "join":
            policy = all_slots_ready_policy(match_job=True)
        elif node.kind == "batch":
            policy = batch_size_policy(node.batch)
        else:
            policy = immediate_policy()
        r = make_routine(logic, slots=slots, events=("out",), policy=policy)
        if node.kind != "entry" and node.fail_mod is not None:
            r.set_error_handler(ErrorHandler(ErrorStrategy(node.strategy), max_retries=1,
                                             retry_delay=0.0))
        routines.append(r)
        flow.add_routine(r, f"n{i}")
    for i, node in enumerate(nodes):
        for k, p in enumerate(node.parents):
            slot = f"s{k}" if node.kind == "join" else "in"
            flow.connect(f"n{p}", "out", f"n{i}", slot)
    return flow


@pytest.mark.timeout(600)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=flow_specs(),
    size=st.integers(1, 16),
    jobs=st.integers(1, 120),
    workers=st.integers(1, 3),
    posters=st.sampled_from([1, 3]),
)
def test_random_flows_finish_every_job_without_leaks(
    nodes: list[Node], size: int, jobs: int, workers: int, posters: int
) -> None:
    baseline = set(threading.enumerate())
    probe = Probe(size, baseline)
    rt_box: list = []
    flow = build_flow(nodes, probe, rt_box)
    want_runs, want_failed = expected_runs(nodes, jobs, workers)
    with running(thread_pool_size=size) as rt:
        rt_box.append(rt)
        states = [rt.exec(flow.flow_id) for _ in range(workers)]
        posted: dict[int, object] = {}
        errors: list[BaseException] = []
        start = threading.Barrier(posters)

        def post_range(numbers: range) -> None:
            try:
                start.wait(JOIN_TIMEOUT)
                for j in numbers:
                    ws = states[j % workers]
                    posted[j] = rt.post(flow.flow_id, "n0", "in", {"n": j},
                                        worker_id=ws.worker_id)[1]
            except BaseException as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=post_range, args=(range(k, jobs, posters),))
                   for k in range(posters)]
        baseline.update(threads)  # posters are ours, not the runtime's
        for t in threads:
            t.start()
        for t in threads:
            t.join(JOIN_TIMEOUT)
        assert errors == []
        assert rt.wait_until_all_jobs_finished(timeout=JOIN_TIMEOUT)
        assert rt.wait_until_all_workers_idle(timeout=JOIN_TIMEOUT)
        probe.sample(rt)

        all_jobs = rt.list_jobs()
        assert len(all_jobs) == jobs
        assert all(j.status in ("completed", "failed") for j in all_jobs)
        for n, job in posted.items():
            want = "failed" if n in want_failed else "completed"
            assert job.status == want, (n, job.status, job.error)
            assert all(v == n for v in job.data.values()), (n, job.data)
        assert probe.leaks == []
        assert [probe.runs[i] for i in range(len(nodes))] == want_runs, nodes
        assert probe.concurrency.max <= size
        assert probe.max_pool_threads <= size
        assert probe.max_new_threads <= size + 1  # the pool plus the monitor thread
        stats = rt.statistics()
        assert stats.running == 0 and stats.in_flight == 0
        assert stats.completed + stats.failed == jobs
