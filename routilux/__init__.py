"""routilux: run workflow routines concurrently on a resizable thread pool, and see it.

Layout: the implementation lives in private ``_modules`` (one concept each); this module
is the public face and re-exports each public name explicitly. ``routilux.core``,
``routilux.activation_policies``, ``routilux.runtime`` and
``routilux.monitoring.flow_registry`` are the import paths the Routilux docs use; they
re-export the same objects. ``routilux.trace``, ``routilux.sync`` and
``routilux.diagnostics`` are public modules of their own. Nothing here imports Jupyter,
pandas or Dask.
"""

from __future__ import annotations

from ._context import (
    get_current_job,
    get_current_job_id,
    get_current_worker_state,
    set_current_job,
    set_current_worker_state,
)
from ._entry import EntryJob
from ._dsl import ObjectFactory, ObjectMetadata
from ._error_handler import ErrorHandler, ErrorStrategy
from ._errors import (
    QueueFullError,
    RoutiluxError,
    RoutiluxInternalError,
    SharedStateError,
    SlotQueueFullError,
    WorkerNotRunningError,
)
from ._flow import Flow
from ._hooks import (
    ExecutionHooksInterface,
    NullExecutionHooks,
    get_execution_hooks,
    reset_execution_hooks,
    set_execution_hooks,
)
from ._job import JobContext
from ._output import (
    RoutedStdout,
    clear_job_output,
    get_job_output,
    install_routed_stdout,
    uninstall_routed_stdout,
)
from ._policies import (
    all_slots_ready_policy,
    batch_size_policy,
    breakpoint_policy,
    custom_policy,
    immediate_policy,
    time_interval_policy,
)
from ._registry import FlowRegistry, WorkerRegistry, get_flow_registry, get_worker_registry
from ._routine import Connection, Event, ExecutionContext, Routine
from ._runtime import (
    Runtime,
    RuntimeStatistics,
    WorkerManager,
    get_worker_manager,
    latest_runtime,
    reset_worker_manager,
)
from ._slot import Slot, SlotDataPoint
from ._status import ExecutionStatus, JobStatus, RoutineStatus
from ._worker_state import ExecutionRecord, SharedLog, WorkerState

__version__ = "0.1.0"

__all__ = [
    "Connection",
    "EntryJob",
    "ErrorHandler",
    "ErrorStrategy",
    "Event",
    "ExecutionContext",
    "ExecutionHooksInterface",
    "ExecutionRecord",
    "ExecutionStatus",
    "Flow",
    "FlowRegistry",
    "JobContext",
    "JobStatus",
    "NullExecutionHooks",
    "ObjectFactory",
    "ObjectMetadata",
    "QueueFullError",
    "RoutedStdout",
    "Routine",
    "RoutineStatus",
    "RoutiluxError",
    "RoutiluxInternalError",
    "Runtime",
    "RuntimeStatistics",
    "SharedLog",
    "SharedStateError",
    "Slot",
    "SlotDataPoint",
    "SlotQueueFullError",
    "WorkerManager",
    "WorkerNotRunningError",
    "WorkerRegistry",
    "WorkerState",
    "__version__",
    "all_slots_ready_policy",
    "batch_size_policy",
    "breakpoint_policy",
    "clear_job_output",
    "custom_policy",
    "get_current_job",
    "get_current_job_id",
    "get_current_worker_state",
    "get_execution_hooks",
    "get_flow_registry",
    "get_worker_manager",
    "get_job_output",
    "get_worker_registry",
    "immediate_policy",
    "install_routed_stdout",
    "latest_runtime",
    "reset_execution_hooks",
    "reset_worker_manager",
    "set_current_job",
    "set_current_worker_state",
    "set_execution_hooks",
    "time_interval_policy",
    "uninstall_routed_stdout",
]


def _fixup_module_metadata() -> None:
    """Tracebacks and reprs show ``routilux.Flow``, not ``routilux._flow.Flow``."""
    for name in __all__:
        obj = globals()[name]
        if getattr(obj, "__module__", "").startswith("routilux._"):
            try:
                obj.__module__ = __name__
            except (AttributeError, TypeError):
                pass


_fixup_module_metadata()
del _fixup_module_metadata
