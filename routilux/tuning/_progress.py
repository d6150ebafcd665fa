"""How a running ``sweep`` reports: ``SweepProgress``, and the default terminal display.

The terminal display is a tqdm bar when tqdm is installed (imported when a sweep starts,
so ``import routilux.tuning`` stays free of it), else one plain line per finished size.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SweepProgress:
    """What ``sweep`` reports to its ``progress`` callback while it runs.

    ``index`` is the 0-based position of ``size`` in the sweep; ``row`` is None while the
    size runs and that size's result row (a dict keyed by ``SWEEP_COLUMNS``) once done.
    """

    size: int
    index: int
    sizes: int
    jobs_done: int
    jobs: int
    row: dict[str, Any] | None = None

    @property
    def fraction(self) -> float:
        """Progress of the whole sweep, 0.0 to 1.0."""
        done = 1.0 if self.row is not None else self.jobs_done / max(self.jobs, 1)
        return min(1.0, (self.index + done) / max(self.sizes, 1))


def _size_line(p: SweepProgress, r: Mapping[str, Any]) -> str:
    """One finished size, as both terminal progress styles print it."""
    p95 = r["p95_latency_s"]
    return (f"sweep: size {p.size} ({p.index + 1}/{p.sizes}): {r['throughput']:.1f} jobs/s, "
            f"p95 latency {'-' if p95 is None else f'{p95:.3f} s'}, "
            f"utilisation {r['utilisation']:.0%}")


def _stderr_progress(p: SweepProgress) -> None:
    """The terminal progress without tqdm: one line per finished size, nothing between."""
    if p.row is not None:
        print(_size_line(p, p.row), file=sys.stderr, flush=True)


class _TqdmProgress:
    """The terminal progress with tqdm: one bar over every job of the sweep.

    The bar counts jobs finished across all sizes (``sizes x jobs`` in all), its postfix
    names the size running, and each finished size's line is written above it, so the
    terminal keeps the per-size results the plain lines give and shows a sweep that is
    slow, or stuck, while it runs. sweep closes it whatever ends the sweep.
    """

    def __init__(self, tqdm_class: Any) -> None:
        self._tqdm = tqdm_class
        self._bar: Any = None
        self._file: Any = None

    def __call__(self, p: SweepProgress) -> None:
        if self._bar is None:
            self._file = sys.stderr  # looked up now: a redirected stderr is honoured
            # sweep already reports at most ten times a second: draw every report.
            self._bar = self._tqdm(total=p.sizes * p.jobs, desc="sweep", unit="job",
                                   file=self._file, dynamic_ncols=True, mininterval=0,
                                   miniters=1)
        done = p.index * p.jobs + (p.jobs if p.row is not None else min(p.jobs_done, p.jobs))
        self._bar.set_postfix_str(f"size {p.size} ({p.index + 1}/{p.sizes})", refresh=False)
        if done > self._bar.n:
            self._bar.update(done - self._bar.n)
        if p.row is not None:
            self._bar.write(_size_line(p, p.row), file=self._file)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _terminal_progress() -> Callable[[SweepProgress], Any]:
    """sweep's default progress: a tqdm bar if tqdm is installed, else plain lines.

    tqdm is optional (the ``jupyter`` and ``dev`` extras install it) and imported here,
    when a sweep starts, so ``import routilux.tuning`` stays free of it.
    """
    try:
        from tqdm import tqdm  # deferred: tqdm (optional) only when a sweep shows progress
    except ImportError:
        return _stderr_progress
    return _TqdmProgress(tqdm)
