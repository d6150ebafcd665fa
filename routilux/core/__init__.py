"""The import path the Routilux docs use for core names; same objects as ``routilux``."""

from routilux import (
    Connection,
    ErrorHandler,
    ErrorStrategy,
    Event,
    ExecutionContext,
    ExecutionHooksInterface,
    ExecutionRecord,
    ExecutionStatus,
    Flow,
    FlowRegistry,
    JobContext,
    JobStatus,
    NullExecutionHooks,
    RoutedStdout,
    Routine,
    RoutineStatus,
    Runtime,
    Slot,
    SlotDataPoint,
    SlotQueueFullError,
    WorkerManager,
    WorkerNotRunningError,
    WorkerRegistry,
    WorkerState,
    clear_job_output,
    get_current_job,
    get_current_job_id,
    get_current_worker_state,
    get_execution_hooks,
    get_flow_registry,
    get_job_output,
    get_worker_manager,
    get_worker_registry,
    install_routed_stdout,
    reset_execution_hooks,
    reset_worker_manager,
    set_current_job,
    set_current_worker_state,
    set_execution_hooks,
    uninstall_routed_stdout,
)


class RoutineConfig(dict):
    """A routine's configuration mapping (what ``Routine.config()`` returns)."""


__all__ = [
    "Connection", "ErrorHandler", "ErrorStrategy", "Event", "ExecutionContext",
    "ExecutionHooksInterface", "ExecutionRecord", "ExecutionStatus", "Flow", "FlowRegistry",
    "JobContext", "JobStatus", "NullExecutionHooks", "RoutedStdout", "Routine",
    "RoutineConfig", "RoutineStatus", "Runtime", "Slot", "SlotDataPoint",
    "SlotQueueFullError", "WorkerManager", "WorkerNotRunningError", "WorkerRegistry",
    "WorkerState", "clear_job_output", "get_current_job", "get_current_job_id",
    "get_current_worker_state", "get_execution_hooks", "get_flow_registry", "get_job_output",
    "get_worker_manager", "get_worker_registry", "install_routed_stdout",
    "reset_execution_hooks", "reset_worker_manager", "set_current_job",
    "set_current_worker_state", "set_execution_hooks", "uninstall_routed_stdout",
]
