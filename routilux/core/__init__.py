"""The import path the Routilux docs use for core names; same objects as ``routilux``."""

from routilux import (  # noqa: F401
    Connection, ErrorHandler, ErrorStrategy, Event, ExecutionContext, ExecutionRecord,
    ExecutionStatus, Flow, FlowRegistry, JobContext, JobStatus, Routine, RoutineStatus,
    Runtime, Slot, SlotDataPoint, SlotQueueFullError, WorkerManager, WorkerNotRunningError,
    WorkerRegistry, WorkerState, get_current_job, get_current_job_id, get_current_worker_state,
    get_flow_registry, get_worker_manager, get_worker_registry, reset_worker_manager,
    set_current_job, set_current_worker_state,
)


class RoutineConfig(dict):
    """A routine's configuration mapping (what ``Routine.config()`` returns)."""


__all__ = [
    "Connection", "ErrorHandler", "ErrorStrategy", "Event", "ExecutionContext",
    "ExecutionRecord", "ExecutionStatus", "Flow", "FlowRegistry", "JobContext", "JobStatus",
    "Routine", "RoutineConfig", "RoutineStatus", "Runtime", "Slot", "SlotDataPoint",
    "SlotQueueFullError", "WorkerManager", "WorkerNotRunningError", "WorkerRegistry",
    "WorkerState", "get_current_job", "get_current_job_id", "get_current_worker_state",
    "get_flow_registry", "get_worker_manager", "get_worker_registry", "reset_worker_manager",
    "set_current_job", "set_current_worker_state",
]
