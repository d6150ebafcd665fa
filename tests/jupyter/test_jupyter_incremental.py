"""The live pump folds a trace incrementally (issue 16): the result after N ticks is the
batch fold's, the samples are ``routilux.trace.pool_series``, and state stays bounded.

The trace is recorded into a real ``Tracer`` (``record_as`` with explicit timestamps, in
seq order) and read by the pump's own reader, ``_pump.fold_new_events``: by cursor, at most
a budget per tick, in slices.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from routilux.trace import Tracer, pool_series
from routilux_jupyter import _pump
from routilux_jupyter._model import DashboardModel
from routilux_jupyter._pool_model import MAX_MESSAGE_SAMPLES, PoolSeries, thin

T0 = 5_000_000_000_000  # ns


def recorded_trace() -> Tracer:
    """Three pool threads run 60 jobs of two stages; a lock is contended; a barrier holds
    items; one job fails with an activation still queued. Timestamps rise with seq."""
    tracer = Tracer(capacity=10_000)
    clock = iter(range(T0, T0 + 10**12, 250_000))  # 0.25 ms per event

    def rec(kind: str, thread: int = 1, lane: str | None = None, **fields: Any) -> None:
        tracer.record_as(thread, kind, thread_name=lane or f"RoutiluxThread-{thread}",
                         ts_ns=next(clock), **fields)

    rec("pool.size", 0, "MainThread", value=3)
    for k in range(60):
        job = f"job{k}"
        thread = 1 + k % 3
        rec("job.posted", 0, "MainThread", job_id=job)
        rec("task.queued", 0, "MainThread", job_id=job, routine="a", name="in", value=1)
        rec("task.started", thread, job_id=job, routine="a", name="in", value=0.0)
        if k % 7 == 3:
            rec("lock.wait", thread, name="ledger", detail={"holder_name": "RoutiluxThread-9"})
            rec("lock.acquired", thread, name="ledger", value=0.0005)
            rec("lock.released", thread, name="ledger", routine="a",
                detail={"caused_s": 0.0002, "site": "app.py:12"})
        rec("task.finished", thread, job_id=job, routine="a", name="in", value=0.0005)
        rec("task.queued", 0, "MainThread", job_id=job, routine="b", name="in", value=1)
        if k == 41:
            rec("job.failed", thread, job_id=job, value=0.004)  # its "b" never starts
            continue
        if k % 10 == 5:
            rec("barrier.wait", 0, "MainThread", routine="b", job_id=job)
            rec("barrier.release", 0, "MainThread", routine="b", job_id=job)
        rec("task.started", thread, job_id=job, routine="b", name="in", value=0.0)
        rec("task.finished", thread, job_id=job, routine="b", name="in", value=0.0005)
        rec("job.completed", thread, job_id=job, value=0.003)
    return tracer


def state(model: DashboardModel) -> dict[str, Any]:
    """What the charts draw, from ``view()`` (bars as tuples: unmerged with gap 0)."""
    view = model.view()
    return {
        "lanes": view.lanes, "routines": view.routines, "bars": sorted(view.bars),
        "samples": view.samples, "locks": [r.as_list() for r in view.locks],
        "counters": view.counters, "findings": view.findings, "dropped": view.dropped,
    }


def series_rows(tracer: Tracer) -> list[tuple[float, int, int, int]]:
    return [((p.ts_ns - T0) * 1e-9, p.queued, p.busy, p.size or 0) for p in pool_series(tracer)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("budget", [None, 1, 37, 500])
def test_n_ticks_fold_what_one_batch_folds(budget: int | None, monkeypatch: Any) -> None:
    tracer = recorded_trace()
    batch = DashboardModel(merge_gap_s=0.0)
    batch.feed(tracer.read_rows(0))
    monkeypatch.setattr(_pump, "FOLD_SLICE", 16)  # many slices per tick, too
    live = DashboardModel(merge_gap_s=0.0)
    cursor, ticks, sent = 0, 0, []
    while cursor < tracer.last_seq:
        cursor = _pump.fold_new_events(live, tracer, cursor, budget)
        sent.append(json.loads(json.dumps(live.delta())))  # as the browser gets it
        ticks += 1
    assert ticks == (1 if budget is None else -(-tracer.last_seq // budget))
    assert state(live) == state(batch)
    assert live.view().samples == series_rows(tracer)  # exactly pool_series
    payload = [s for msg in sent for s in msg["samples"]]
    assert payload == [[round(r[0], 5), r[1], r[2], r[3]] for r in series_rows(tracer)]
    bars = sorted(tuple(b) for msg in sent for b in msg["bars"])
    assert bars == sorted((b[0], round(b[1], 5), round(b[2], 5), b[3], b[4])
                          for b in batch.view().bars)
    assert live.view().locks[0].waits == 9 and live.view().counters["failed"] == 1


@pytest.mark.timeout(30)
def test_a_tick_reads_only_what_is_new() -> None:
    tracer = recorded_trace()
    model = DashboardModel(merge_gap_s=0.0)
    cursor = _pump.fold_new_events(model, tracer, 0, 100)
    assert cursor == 100 and model.last_seq == 100
    assert _pump.fold_new_events(model, tracer, cursor, 100) == 200
    tracer.record("job.posted", job_id="late")
    last = tracer.last_seq
    cursor = _pump.fold_new_events(model, tracer, 200, None)
    assert cursor == last and model.jobs["posted"] == 61 and model.lost == 0
    assert _pump.fold_new_events(model, tracer, cursor, None) == cursor  # nothing new


@pytest.mark.timeout(30)
def test_overwritten_events_count_as_lost_and_the_fold_goes_on() -> None:
    tracer = Tracer(capacity=50)
    model = DashboardModel()
    for k in range(20):
        tracer.record("job.posted", job_id=f"a{k}")
    cursor = _pump.fold_new_events(model, tracer, 0, None)
    for k in range(120):  # the ring keeps the newest 50: 70 are gone before the next read
        tracer.record("job.posted", job_id=f"b{k}")
    _pump.fold_new_events(model, tracer, cursor, None)
    assert model.lost == 70 and model.jobs["posted"] == 70
    assert model.delta()["dropped"] == 70


@pytest.mark.timeout(30)
def test_kept_samples_stay_bounded_and_keep_peaks_and_the_last_state() -> None:
    window_s, limit = 4.0, 2_000
    series = PoolSeries(window_s, max_kept=limit)
    tracer = Tracer(capacity=200_000)
    series_fed = 0
    for tick in range(40):  # 40 ticks of 2,500 queue changes each, 0.1 ms apart
        for k in range(2_500):
            n = tick * 2_500 + k
            tracer.record_as(0, "task.queued", job_id=f"j{n}", routine="r", name="in",
                             thread_name="MainThread", ts_ns=T0 + n * 100_000)
        rows = tracer.read_rows(series_fed)
        series_fed = rows[-1][0]
        series.feed(rows)
        sent = series.take(T0)
        assert len(sent) <= MAX_MESSAGE_SAMPLES
        assert len(series.kept) <= limit
        series.prune(sent[-1][0] - window_s)
    kept = list(series.kept)
    assert kept[-1] == ((100_000 - 1) * 100_000 * 1e-9, 100_000, 0, 0)  # the last state
    assert kept == sorted(kept)  # time order
    # every bucket below a pixel of the window keeps its highest queue: the peak survives
    assert max(r[1] for r in kept) == 100_000
    assert kept[0][0] <= kept[-1][0] - window_s + series.bucket_s


@pytest.mark.timeout(10)
def test_thin_keeps_first_peaks_and_last_of_each_bucket() -> None:
    samples = [(0, 1, 5), (1, 9, 0), (2, 3, 7), (3, 2, 2), (10, 4, 4), (20, 0, 0)]
    # (t, queued, busy): bucket 5 from t=0 holds the first four; then one each
    assert thin(samples, 5, t=0, q=1, b=2) == [(0, 1, 5), (1, 9, 0), (2, 3, 7), (3, 2, 2),
                                               (10, 4, 4), (20, 0, 0)]
    dense = [(k, k % 3, 0) for k in range(10)]  # one bucket: first, max queue, last
    assert thin(dense, 100, t=0, q=1, b=2) == [(0, 0, 0), (2, 2, 0), (9, 0, 0)]


@pytest.mark.timeout(30)
def test_the_live_model_thins_a_flood_as_it_folds_it() -> None:
    # 20,000 queue changes 0.1 ms apart in one tick, folded in slices as the pump does:
    # the live model holds a fifth of them (two of ten per 1 ms bucket); the message still
    # has every bucket's peak and the last state, and a model fed the same without
    # thinning on feed sends the same peak.
    tracer = Tracer(capacity=50_000)
    tracer.record_as(0, "pool.size", value=2, thread_name="MainThread", ts_ns=T0)
    for n in range(20_000):
        tracer.record_as(0, "task.queued", job_id=f"j{n}", routine="r", name="in",
                         thread_name="MainThread", ts_ns=T0 + (n + 1) * 100_000)
    live, plain = DashboardModel(window_s=4.0, live=True), DashboardModel(window_s=4.0)
    held = []
    for start in range(0, tracer.last_seq, 1_000):
        rows = tracer.read_rows(start)[:1_000]
        live.feed(rows)
        plain.feed(rows)
        held.append(len(live.pool.unsent))
    assert max(held) <= MAX_MESSAGE_SAMPLES + 1_000 and held[-1] <= 20_001 // 4
    assert len(plain.pool.unsent) == 20_001  # fed directly, every change waits for take()
    sent, reference = live.delta()["samples"], plain.delta()["samples"]
    assert sent[-1] == reference[-1] == [2.0, 20_000, 0, 2]
    assert max(s[1] for s in sent) == max(s[1] for s in reference) == 20_000
    assert len(sent) <= 4 * (4_000 * 2 / 4.0 + 1)  # at most four per bucket of 1 ms


@pytest.mark.timeout(30)
def test_a_tick_of_many_tiny_bars_widens_the_merge_gap_so_messages_stay_small() -> None:
    from routilux_jupyter._model import MAX_MESSAGE_BARS

    # 32 lanes, each running 1 ms tasks with 1 ms between them, ticks of 0.1 s: 50 bars
    # per lane per tick at the start-of-run gap (seconds seen / 4000, well below 1 ms).
    tracer = Tracer(capacity=200_000)
    model = DashboardModel(window_s=30.0, live=True)
    sizes, cursor = [], 0
    for tick in range(6):
        for k in range(50):
            for lane in range(32):
                t0 = T0 + (tick * 100 + 2 * k) * 1_000_000 + lane * 1_000
                for kind, ts in (("task.started", t0), ("task.finished", t0 + 1_000_000)):
                    tracer.record_as(lane + 1, kind, job_id=f"{tick}.{k}.{lane}",
                                     routine="r", name="in", ts_ns=ts,
                                     thread_name=f"RoutiluxThread-{lane}")
        cursor = _pump.fold_new_events(model, tracer, cursor, None)
        sizes.append(len(model.delta()["bars"]))
    assert sizes[0] > MAX_MESSAGE_BARS  # the first tick still carries every bar
    assert all(n <= MAX_MESSAGE_BARS for n in sizes[1:]), sizes
    assert model.merge_gap_s <= 30.0 / 4000  # never coarser than a full window's gap
    # the lanes stay covered from their first start to their last finish
    view = model.view()
    assert {b[0] for b in view.bars} == set(range(32))
