"""``sweep``: one workload run at several pool sizes, each size measured from its trace.

Each size gets a fresh traced ``Runtime``; its row (throughput, job latency percentiles,
queue wait, utilisation, thread and CPU time per job) is read from that runtime's trace.
Needs pandas, imported when called.
"""

from __future__ import annotations

import os
import statistics as _stats
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._engine._runtime import Runtime
from ..trace import TraceEvent, Tracer
from ._common import _percentile, _require_pandas
from ._progress import SweepProgress, _stderr_progress, _terminal_progress, _TqdmProgress

if TYPE_CHECKING:
    import pandas

SWEEP_COLUMNS = (
    "size", "jobs", "makespan_s", "throughput", "p50_latency_s", "p95_latency_s",
    "p99_latency_s", "mean_queue_wait_s", "utilisation", "work_per_job_s", "cpu_per_job_s",
    "failed",
)  # fmt: skip
"""The columns of the frame ``sweep`` returns, in order (see ``sweep``)."""

PROGRESS_INTERVAL_S = 0.1  # seconds between progress reports while a size runs
SWEEP_TIMEOUT_S = 120.0  # seconds one size may take before sweep gives up


def _check_sizes(sizes: Iterable[int]) -> list[int]:
    try:
        out = list(sizes)
    except TypeError:
        raise TypeError(f"sizes must be a list of ints >= 1, got {sizes!r}") from None
    if not out:
        raise ValueError("sizes must name at least one pool size, e.g. sizes=[1, 2, 4, 8]")
    for n in out:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"sizes must be ints >= 1, got {type(n).__name__} {n!r}")
        if n < 1:
            raise ValueError(f"sizes must be ints >= 1, got {n}")
    if len(set(out)) != len(out):
        raise ValueError(f"sizes must not repeat, got {out}")
    return out


def sweep(
    workload: Any,
    routine: str,
    slot: str,
    make_data: Callable[[int], Mapping[str, Any]] | Mapping[str, Any] | None = None,
    sizes: Iterable[int] = (1, 2, 4, 8),
    jobs: int = 40,
    *,
    rate: float | None = None,
    progress: Callable[[SweepProgress], Any] | bool | None = None,
    traces: dict[int, Tracer] | None = None,
    cancel: threading.Event | None = None,
    timeout_s: float = SWEEP_TIMEOUT_S,
) -> pandas.DataFrame:
    """Run the same workload at each pool size and measure it from the trace.

    For each size: a fresh ``Runtime(thread_pool_size=size, trace=True)``, ``jobs`` posts
    of ``make_data(i)`` to ``routine.slot`` (all at once, or ``rate`` per second), a wait
    until every job has finished, then the runtime is shut down. Latencies are the
    ``job.completed`` values, queue waits the ``task.started`` values, run times the
    ``task.finished`` values.

    Args:
        workload: a flow name or ``Flow``; or a factory ``factory(size) -> (runtime, flow)``
            returning a fresh traced runtime (and the flow or its name) for each size, for
            runtime options or a flow rebuilt per size. sweep shuts that runtime down.
        routine: the entry routine of the flow.
        slot: the slot of that routine to post to.
        make_data: ``make_data(i) -> dict`` for the i-th job, a dict posted every time,
            or None for ``{"i": i}``.
        sizes: pool sizes to try, in order.
        jobs: jobs posted per size.
        rate: post ``rate`` jobs per second (an open workload); None posts them at once,
            which measures what the pool can do flat out.
        progress: a callback given a ``SweepProgress`` about ten times a second and once
            per finished size (from the calling thread); None (or True) shows a tqdm bar
            on stderr with one line per finished size above it, or, without tqdm
            installed, just the lines; False is silent. In a notebook, pass
            ``routilux_jupyter.SweepProgressBar()``.
        traces: a dict to receive each size's ``Tracer`` (for ``simulate`` or a report).
        cancel: a ``threading.Event``; when set, the runtime of the current size is shut
            down and the rows finished so far are returned (``df.attrs["cancelled"]``).
        timeout_s: seconds one size may take.

    Returns:
        A DataFrame, one row per size, columns ``SWEEP_COLUMNS``: ``size``, ``jobs``,
        ``makespan_s`` (first post to last task end), ``throughput`` (completed jobs per
        second of makespan), ``p50_latency_s`` / ``p95_latency_s`` / ``p99_latency_s``
        (completed jobs), ``mean_queue_wait_s``, ``utilisation`` (busy thread-seconds /
        (size x makespan)), ``work_per_job_s`` (thread-seconds of logic per job),
        ``cpu_per_job_s`` (CPU seconds of the whole process per job, while the size ran:
        close to ``work_per_job_s`` for CPU-bound logic, far below it when threads wait),
        ``failed`` (jobs). ``df.attrs`` holds ``cpu_count``, ``rate`` and ``cancelled``.

    Raises:
        ImportError: pandas is not installed.
        TypeError / ValueError: bad sizes, jobs, rate or workload; an unknown routine or
            slot (from the first ``post``).
        TimeoutError: a size did not finish within ``timeout_s``.
    """
    pd = _require_pandas("sweep")
    sizes = _check_sizes(sizes)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                             or not rate > 0):
        raise ValueError(f"rate must be a number of jobs per second > 0, or None; got {rate!r}")
    if not (isinstance(workload, str) or callable(workload) or hasattr(workload, "flow_id")):
        raise TypeError(
            "workload must be a flow name, a Flow, or a factory(size) -> (runtime, flow); "
            f"got {type(workload).__name__}"
        )
    data_for = _data_maker(make_data)
    report = _reporter(progress)
    try:
        rows, cancelled = _sweep_sizes(workload, routine, slot, data_for, sizes, jobs, rate,
                                       report, traces, cancel, timeout_s)
    finally:
        if isinstance(report, _TqdmProgress):
            report.close()
    frame = pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))
    frame.attrs["cpu_count"] = os.cpu_count() or 1
    frame.attrs["rate"] = rate
    frame.attrs["cancelled"] = cancelled
    return frame


def _data_maker(
    make_data: Callable[[int], Mapping[str, Any]] | Mapping[str, Any] | None,
) -> Callable[[int], Mapping[str, Any]]:
    """``make_data`` as a function of the job index (see ``sweep``)."""
    if make_data is None:
        def data_for(i: int) -> Mapping[str, Any]:
            return {"i": i}
    elif isinstance(make_data, Mapping):
        fixed = dict(make_data)

        def data_for(i: int) -> Mapping[str, Any]:
            return dict(fixed)
    elif callable(make_data):
        data_for = make_data
    else:
        raise TypeError(f"make_data must be a callable(i) -> dict, a dict or None, "
                        f"got {type(make_data).__name__}")
    return data_for


def _reporter(
    progress: Callable[[SweepProgress], Any] | bool | None,
) -> Callable[[SweepProgress], Any] | None:
    """The progress callback ``sweep`` calls: the caller's, the terminal's, or none."""
    if progress is None or progress is True:
        return _terminal_progress()
    if progress is False:
        return None
    if callable(progress):
        return progress
    raise TypeError(f"progress must be a callable, None, True or False, got {progress!r}")


def _sweep_sizes(
    workload: Any, routine: str, slot: str, data_for: Callable[[int], Mapping[str, Any]],
    sizes: list[int], jobs: int, rate: float | None,
    report: Callable[[SweepProgress], Any] | None, traces: dict[int, Tracer] | None,
    cancel: threading.Event | None, timeout_s: float,
) -> tuple[list[dict[str, Any]], bool]:
    """Each size in turn: the rows finished, and whether the sweep was cancelled."""
    rows: list[dict[str, Any]] = []
    cancelled = False
    for index, size in enumerate(sizes):
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        runtime, flow = _new_runtime(workload, size, jobs)
        cpu_s = None
        try:
            cpu_s = _run_size(runtime, flow, routine, slot, data_for, jobs, rate, cancel,
                              timeout_s, size, index, len(sizes), report)
        finally:
            # Cancelled, timed out or failed: abandon what is still queued, do not wait.
            runtime.shutdown(wait=cpu_s is not None, timeout=10.0)
        if cpu_s is None:
            cancelled = True
            break
        tracer = runtime.tracer
        row = _measure(tracer.read(0), size, cpu_s)
        if tracer.dropped:
            warnings.warn(
                f"sweep: the trace of size {size} dropped {tracer.dropped} events, so its row "
                "undercounts; use a factory with Runtime(trace=Tracer(capacity=...))",
                RuntimeWarning, stacklevel=3,
            )
        rows.append(row)
        if traces is not None:
            traces[size] = tracer
        if report is not None:
            report(SweepProgress(size, index, len(sizes), jobs, jobs, dict(row)))
    return rows, cancelled


def _new_runtime(workload: Any, size: int, jobs: int) -> tuple[Runtime, Any]:
    """A fresh traced runtime for one size, and the flow to post to."""
    if isinstance(workload, str) or hasattr(workload, "flow_id"):
        capacity = max(200_000, jobs * 64)
        return Runtime(thread_pool_size=size, trace=Tracer(capacity)), workload
    made = workload(size)
    if not (isinstance(made, tuple) and len(made) == 2 and isinstance(made[0], Runtime)):
        if isinstance(made, Runtime):
            made.shutdown(wait=False)
        raise TypeError(
            f"the sweep factory must return (runtime, flow) for size {size}, got "
            f"{type(made).__name__}"
        )
    runtime, flow = made
    if runtime.tracer is None:
        runtime.shutdown(wait=False)
        raise ValueError(
            "the sweep factory returned a runtime without tracing; create it with "
            "Runtime(thread_pool_size=size, trace=True)"
        )
    return runtime, flow


def _run_size(
    runtime: Runtime, flow: Any, routine: str, slot: str,
    data_for: Callable[[int], Mapping[str, Any]], jobs: int, rate: float | None,
    cancel: threading.Event | None, timeout_s: float, size: int, index: int, n_sizes: int,
    report: Callable[[SweepProgress], Any] | None,
) -> float | None:
    """Post and wait for one size: the process CPU seconds it took, or None if cancelled."""
    deadline = time.monotonic() + timeout_s
    start = time.monotonic()
    cpu_start = time.process_time()
    last_report = 0.0
    for i in range(jobs):
        if rate is not None and i > 0:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                if cancel is not None:
                    if cancel.wait(delay):
                        return None
                else:
                    time.sleep(delay)
        elif cancel is not None and cancel.is_set():
            return None
        runtime.post(flow, routine, slot, dict(data_for(i)))
        if i == 0:
            # Pace from the first post's return, not from before it: post i then starts at
            # least i / rate after job 0 was posted, whatever the first post cost.
            start = time.monotonic()
    while not runtime.wait_until_all_jobs_finished(timeout=PROGRESS_INTERVAL_S):
        if cancel is not None and cancel.is_set():
            return None
        now = time.monotonic()
        if now > deadline:
            stats = runtime.statistics()
            raise TimeoutError(
                f"sweep: pool size {size} did not finish {jobs} jobs within {timeout_s:g} s "
                f"({stats.completed + stats.failed} finished); raise timeout_s or post fewer "
                "jobs"
            )
        if report is not None and report is not _stderr_progress \
                and now - last_report >= PROGRESS_INTERVAL_S:
            last_report = now
            stats = runtime.statistics()
            report(SweepProgress(size, index, n_sizes,
                                 stats.completed + stats.failed + stats.cancelled, jobs))
    return time.process_time() - cpu_start


def _measure(events: Sequence[TraceEvent], size: int, cpu_s: float) -> dict[str, Any]:
    """One sweep row from one size's trace."""
    posted = [e.ts_ns for e in events if e.kind == "job.posted"]
    latencies = sorted(float(e.value) for e in events
                       if e.kind == "job.completed" and isinstance(e.value, (int, float)))
    failed = sum(1 for e in events if e.kind in ("job.failed", "job.cancelled"))
    waits = [float(e.value) for e in events
             if e.kind == "task.started" and isinstance(e.value, (int, float))]
    finished = [e for e in events if e.kind == "task.finished"]
    runs = [float(e.value) for e in finished if isinstance(e.value, (int, float))]
    ends = [e.ts_ns for e in finished]
    terminal = [e.ts_ns for e in events if e.kind in ("job.completed", "job.failed")]
    first = min(posted) if posted else None
    last = max(ends) if ends else (max(terminal) if terminal else None)
    makespan = (last - first) / 1e9 if first is not None and last is not None else 0.0
    busy = sum(runs)
    return {
        "size": size,
        "jobs": len(posted),
        "makespan_s": makespan,
        "throughput": len(latencies) / makespan if makespan > 0 else 0.0,
        "p50_latency_s": _percentile(latencies, 50),
        "p95_latency_s": _percentile(latencies, 95),
        "p99_latency_s": _percentile(latencies, 99),
        "mean_queue_wait_s": _stats.fmean(waits) if waits else 0.0,
        "utilisation": busy / (size * makespan) if makespan > 0 else 0.0,
        "work_per_job_s": busy / len(posted) if posted else 0.0,
        "cpu_per_job_s": cpu_s / len(posted) if posted else 0.0,
        "failed": failed,
    }

