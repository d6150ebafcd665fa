"""The workloads every variant runs, described once (standard library only).

Each job carries ``{"i": index}`` through its stages. The logic of every stage is the
same in every variant: ``stage_work(sleep_s)`` (nothing, or ``time.sleep``), then hand
the item to the next stage(s).

- ``trivial``:    3 routines in a line (s1 -> s2 -> s3), logic does nothing.
- ``sleep1ms``:   the same line, each stage sleeps 1 ms (I/O-like: releases the GIL).
- ``fanout``:     a -> (b1, b2, b3, b4) -> j, where j waits for all four branches of the
                  same job (routilux: ``all_slots_ready_policy(match_job=True)``); trivial
                  logic. 6 logic calls per job.
- ``exhaustion``: the trivial line with 20,000 jobs posted at once into a pool of 4: the
                  run queue holds thousands of activations; peak RSS and latency matter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Workload:
    name: str
    shape: str  # "linear" (3 stages) or "fan" (1 -> 4 -> barrier)
    sleep_s: float  # seconds each stage sleeps (0: trivial logic)
    description: str

    @property
    def calls_per_job(self) -> int:
        return 3 if self.shape == "linear" else 6


WORKLOADS: dict[str, Workload] = {
    "trivial": Workload("trivial", "linear", 0.0, "3-routine line, trivial logic"),
    "sleep1ms": Workload("sleep1ms", "linear", 0.001, "3-routine line, 1 ms sleep per stage"),
    "fanout": Workload("fanout", "fan", 0.0, "fan-out 1->4, fan-in barrier, trivial logic"),
    "exhaustion": Workload("exhaustion", "linear", 0.0,
                           "20,000 jobs into pool 4 at once, trivial logic"),
}

LINEAR_STAGES = ("s1", "s2", "s3")
FAN_BRANCHES = ("b1", "b2", "b3", "b4")


def stage_work(sleep_s: float, sleep=time.sleep) -> None:
    """What one stage's logic does before handing its item on."""
    if sleep_s:
        sleep(sleep_s)
