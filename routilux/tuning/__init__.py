"""Choosing a pool size: measure it, explain a choice, predict it from one recording.

- ``sweep`` runs one workload at several pool sizes (a fresh traced ``Runtime`` per size)
  and returns a pandas DataFrame of throughput, job latency percentiles, queue wait and
  pool utilisation per size, all read from the trace.
- ``recommend`` picks a size from such a frame and says why in words: where throughput
  stops growing (the knee), a latency target, Little's law, and how the result compares
  with the docs' rules of thumb (``os.cpu_count()`` threads for CPU-bound work, 2-4 times
  that for I/O-bound work).
- ``simulate`` replays a recorded trace with another number of threads by discrete-event
  simulation, without rerunning the workload (the design of the replay is in
  ``routilux.tuning._simulate``).
- ``utilisation_curve`` is the pool-level analogue of Go's minimum mutator utilisation:
  for each window length, the worst fraction of the pool's capacity that was doing work.

Only ``sweep`` and ``utilisation_curve`` need pandas (and numpy), imported when called;
``simulate`` and ``recommend`` work on plain Python data (``recommend`` reads the frame
``sweep`` returns). ``sweep``'s default terminal progress bar uses tqdm when it is
installed, imported when a sweep starts; without it, plain lines.

The parts: ``_recording`` (a trace read back as tasks with causal parents), ``_simulate``,
``_mmu`` (``utilisation_curve``), ``_sweep``, ``_progress`` (``SweepProgress`` and the
terminal bars), ``_recommend``, and ``_common`` (helpers they share).
"""

from __future__ import annotations

from ._mmu import utilisation_curve
from ._progress import SweepProgress
from ._recommend import WORKLOADS, Recommendation, recommend
from ._simulate import Simulation, simulate
from ._sweep import SWEEP_COLUMNS, sweep

__all__ = [
    "SWEEP_COLUMNS",
    "WORKLOADS",
    "Recommendation",
    "Simulation",
    "SweepProgress",
    "recommend",
    "simulate",
    "sweep",
    "utilisation_curve",
]
