"""``utilisation_curve``: the pool-level analogue of Go's minimum mutator utilisation.

For each window length, the worst (and best) fraction of the pool's capacity that was
doing work in any window of that length. Needs pandas and numpy, imported when called.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._common import _require_pandas
from ._recording import _events, _rebuild, _Recording

if TYPE_CHECKING:
    import pandas


def utilisation_curve(
    trace: Any, windows: Iterable[float] | None = None, *, pool_size: int | None = None,
) -> pandas.DataFrame:
    """For each window length, the worst (and best) fraction of the pool doing work.

    The pool-level analogue of Go's minimum mutator utilisation: slide a window of
    ``window_s`` seconds over the run (first post to last task end) and take the lowest
    busy-thread-seconds / capacity-thread-seconds seen (busy pool threads and the size as
    ``routilux.trace.pool_series`` gives them; coroutines on the event loop hold no pool
    thread, so they count as idle capacity). A pool that is starved somewhere
    (idle threads while work is scarce, or blocked elsewhere) shows low values at short
    windows; a saturated pool stays near 1 even for short windows, and then more threads
    may help if the work waits on I/O. The last row, the whole run, is the mean.

    Args:
        trace: a ``Tracer``, a saved trace path, a traced ``Runtime`` or a list of events.
        windows: window lengths in seconds (default: 40 lengths spaced geometrically from
            a thousandth of the run to the whole run). Lengths beyond the run are dropped.
        pool_size: the pool's size throughout, for a trace that cannot say (no
            ``pool.size``, ``pool.resize`` or ``queue.depth``); by default the trace's
            sizes, else the most pool threads seen busy at once.

    Returns:
        A DataFrame with columns ``window_s``, ``utilisation`` (the minimum) and
        ``max_utilisation``, sorted by ``window_s``.

    Raises:
        ImportError: pandas is not installed.
        ValueError: the trace holds no finished task, or a window length <= 0.
    """
    pd = _require_pandas("utilisation_curve")
    import numpy as np  # deferred: numpy (with pandas) only when a curve is asked for

    events, _ = _events(trace, "utilisation_curve")
    rec = _rebuild(events)
    if not rec.tasks or rec.first_ns is None or rec.last_ns is None \
            or rec.last_ns <= rec.first_ns:
        raise ValueError("utilisation_curve() found no finished task in the trace")
    t0, t1 = rec.first_ns, rec.last_ns
    span = (t1 - t0) / 1e9
    x, cum_busy, cum_size = _cumulative_areas(np, rec, pool_size, t0, span)
    lengths = _window_lengths(np, windows, span)
    rows = [_window_extremes(np, x, cum_busy, cum_size, min(float(w), span), span)
            for w in lengths]
    return pd.DataFrame(rows, columns=["window_s", "utilisation", "max_utilisation"])


def _cumulative_areas(
    np: Any, rec: _Recording, pool_size: int | None, t0: int, span: float,
) -> tuple[Any, Any, Any]:
    """Breakpoints (seconds from ``t0``), and busy and capacity thread-seconds up to each.

    Both step functions (busy pool threads, pool size) come from
    ``routilux.trace.pool_series``: the series every chart of the pool draws.
    """
    deltas: dict[float, list[int]] = defaultdict(lambda: [0, 0])
    busy = 0
    for sample in rec.series:
        if sample.busy != busy:
            deltas[min(max((sample.ts_ns - t0) / 1e9, 0.0), span)][0] += sample.busy - busy
            busy = sample.busy
    if pool_size is not None:
        steps: list[tuple[int, int]] = [(t0, pool_size)]
    elif rec.initial_size is not None:
        steps = [(t0, rec.initial_size), *rec.sizes]
    else:
        steps = [(t0, max(1, max((p.busy for p in rec.series), default=0)))]
    size = 0
    for ts, new in steps:
        deltas[min(max((ts - t0) / 1e9, 0.0), span)][1] += new - size
        size = new
    times = sorted(deltas)
    if times[-1] < span:
        times.append(span)
        deltas[span]
    busy_level = np.cumsum([deltas[t][0] for t in times])
    size_level = np.cumsum([deltas[t][1] for t in times])
    x = np.asarray(times, dtype=float)
    widths = np.diff(x)
    cum_busy = np.concatenate([[0.0], np.cumsum(busy_level[:-1] * widths)])
    cum_size = np.concatenate([[0.0], np.cumsum(size_level[:-1] * widths)])
    return x, cum_busy, cum_size


def _window_lengths(np: Any, windows: Iterable[float] | None, span: float) -> Any:
    """The window lengths to evaluate, sorted; the default is 40 spaced geometrically."""
    if windows is None:
        lo = max(span / 1000.0, 1e-6)
        return np.unique(np.geomspace(lo, span, 40))
    lengths = np.asarray(sorted(float(w) for w in windows), dtype=float)
    if lengths.size and lengths[0] <= 0:
        raise ValueError(f"window lengths must be > 0 seconds, got {lengths[0]:g}")
    return lengths[lengths <= span * (1 + 1e-9)]


def _window_extremes(
    np: Any, x: Any, cum_busy: Any, cum_size: Any, w: float, span: float,
) -> tuple[float, float, float]:
    """``(w, lowest, highest)`` busy / capacity over every window of length ``w``."""
    # The ratio of two piecewise-linear functions of the window start is monotonic
    # between breakpoints, so its extremes sit where a window edge meets a breakpoint.
    starts = np.concatenate([x, x - w])
    starts = starts[(starts >= 0) & (starts <= span - w)]
    starts = np.unique(np.append(starts, [0.0, span - w]))
    busy_area = np.interp(starts + w, x, cum_busy) - np.interp(starts, x, cum_busy)
    cap_area = np.interp(starts + w, x, cum_size) - np.interp(starts, x, cum_size)
    ratio = np.divide(busy_area, cap_area, out=np.zeros_like(busy_area),
                      where=cap_area > 0)
    return (w, float(ratio.min()), float(ratio.max()))
