"""compat: ``Runtime.exec(flow, entry_params=...)``, the docs' way to start a flow.

The docs' quickstart and tutorials start a flow with ``runtime.exec(name,
entry_params={...})`` and then read the result as the job (``.status`` reaches
"completed", ``.job_id`` goes to ``get_job``) and as the worker state (``.shared_log``,
``.get_routine_state``, ``.save``). ``EntryJob`` is that result: the posted job's fields,
with the worker's state behind every other attribute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._flow import Flow
    from ._job import JobContext
    from ._worker_state import WorkerState

# What an EntryJob answers from the job; everything else comes from the worker state.
JOB_ATTRIBUTES = frozenset({
    "job_id", "status", "error", "created_at", "completed_at", "metadata", "data",
    "trace_log", "is_terminal", "wait", "complete", "get_data", "set_data", "trace",
    "add_done_callback", "to_dict",
})


def entry_point(flow: Flow) -> tuple[str, str]:
    """The (routine id, slot) ``entry_params`` go to: the one routine nothing else feeds.

    A routine counts as fed when a connection from *another* routine ends in one of its
    slots (a routine wired to itself can still be the entry).

    Raises:
        ValueError: no such routine, several, or one with several slots (all named).
    """
    fed = set()
    for conn in list(flow.connections):
        ev, slot = conn.source_event, conn.target_slot
        if ev is None or slot is None or ev.routine is slot.routine:
            continue
        fed.add(id(slot.routine))
    candidates = [(rid, r) for rid, r in flow.routines.items()
                  if r.slots and id(r) not in fed]
    if not candidates:
        raise ValueError(
            f"flow {flow.flow_id!r} has no entry routine for entry_params (every routine with "
            f"slots is fed by a connection); post to a routine explicitly: "
            f"runtime.post({flow.flow_id!r}, routine, slot, data)"
        )
    if len(candidates) > 1:
        names = ", ".join(rid for rid, _ in candidates)
        raise ValueError(
            f"flow {flow.flow_id!r} has several entry routines ({names}); entry_params needs "
            f"one. Post to one of them: runtime.post({flow.flow_id!r}, routine, slot, data)"
        )
    rid, routine = candidates[0]
    if len(routine.slots) > 1:
        slots = ", ".join(routine.slots)
        raise ValueError(
            f"entry routine {rid!r} of flow {flow.flow_id!r} has several slots ({slots}); "
            f"entry_params needs one. Post to one: runtime.post({flow.flow_id!r}, {rid!r}, "
            "slot, data)"
        )
    return rid, next(iter(routine.slots))


class EntryJob:
    """What ``exec(..., entry_params=...)`` returns: the job it posted, on its worker.

    ``job_id``, ``status``, ``error``, ``wait()`` ... are the job's (``status`` becomes
    "completed" once the flow has run); every other attribute is the worker state's
    (``worker_id``, ``shared_log``, ``routine_states``, ``get_routine_state``, ``save``,
    ``serialize`` ...). ``job`` and ``worker_state`` give each object itself, and
    ``await entry_job`` waits for the job.
    """

    __slots__ = ("job", "worker_state")

    def __init__(self, job: JobContext, worker_state: WorkerState) -> None:
        object.__setattr__(self, "job", job)
        object.__setattr__(self, "worker_state", worker_state)

    def __getattr__(self, name: str) -> Any:
        if name in JOB_ATTRIBUTES:
            return getattr(self.job, name)
        return getattr(self.worker_state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.job if name in JOB_ATTRIBUTES else self.worker_state, name, value)

    def __await__(self) -> Any:
        return self.job.__await__()

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.worker_state)) | JOB_ATTRIBUTES | {"job", "worker_state"})

    def __repr__(self) -> str:
        return (f"<EntryJob {self.job.job_id} status={self.job.status} "
                f"worker={self.worker_state.worker_id}>")
