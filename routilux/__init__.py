"""routilux: run workflow routines concurrently on a resizable thread pool, and see it.

Layout (docs/architecture.md): the implementation lives in private layers, one concept
per module: floor utilities (``_errors``, ``_validate``, ``_singleton``, ``_deadlock``);
``trace`` (imports nothing of routilux); ``executors`` (plug-ins); ``_model`` (what a flow
is: routines, slots, flows, jobs, worker state, policies; never imports the engine);
``_engine`` (how it runs: pool threads, workers, job table, monitor); then the analysis
modules (``diagnostics``, ``tuning``). This module is the public face and re-exports each
public name explicitly. ``routilux.core``,
``routilux.activation_policies``, ``routilux.runtime`` and
``routilux.monitoring.flow_registry`` are the import paths the Routilux docs use; they
re-export the same objects. ``routilux.trace``, ``routilux.sync`` and
``routilux.diagnostics`` are public modules of their own. Nothing here imports Jupyter,
pandas or Dask.
"""

from __future__ import annotations

from . import _faces
from ._engine._pool import WorkerManager, get_worker_manager, reset_worker_manager
from ._engine._runtime import Runtime, RuntimeStatistics, latest_runtime
from ._errors import (
    DeadlockError,
    QueueFullError,
    RoutiluxError,
    RoutiluxInternalError,
    RuntimeShutDown,
    SharedStateError,
    SlotQueueFullError,
    WorkerNotRunningError,
)
from ._model._context import (
    get_current_job,
    get_current_job_id,
    get_current_worker_state,
    set_current_job,
    set_current_worker_state,
)
from ._model._dsl import ObjectFactory, ObjectMetadata
from ._model._entry import EntryJob
from ._model._error_handler import ErrorHandler, ErrorStrategy
from ._model._flow import Connection, Flow, FlowRegistry, get_flow_registry
from ._model._hooks import (
    ExecutionHooksInterface,
    NullExecutionHooks,
    get_execution_hooks,
    reset_execution_hooks,
    set_execution_hooks,
)
from ._model._job import JobContext
from ._model._output import (
    RoutedStdout,
    clear_job_output,
    get_job_output,
    install_routed_stdout,
    uninstall_routed_stdout,
)
from ._model._policies import (
    all_slots_ready_policy,
    batch_size_policy,
    breakpoint_policy,
    custom_policy,
    immediate_policy,
    time_interval_policy,
)
from ._model._routine import Event, ExecutionContext, Routine
from ._model._slot import Slot, SlotDataPoint
from ._model._status import ExecutionStatus, JobStatus, RoutineStatus
from ._model._worker_state import (
    ExecutionRecord,
    SharedLog,
    WorkerRegistry,
    WorkerState,
    get_worker_registry,
)

__version__ = "0.1.0"

__all__ = [
    "Connection",
    "DeadlockError",
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
    "RuntimeShutDown",
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


_faces.claim_public_names(globals())
