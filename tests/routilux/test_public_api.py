"""The public face (api.md §1), in the style of trio's test_exports.

Every name in ``__all__`` resolves; no private name leaks; the compatibility import paths
give the *same* objects; tracebacks show ``routilux.X``; and importing routilux pulls in
none of the heavy optional dependencies.
"""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import routilux

CORE_NAMES = [
    "Routine", "ExecutionContext", "Slot", "Event", "Connection", "Flow", "WorkerState",
    "ExecutionRecord", "JobContext", "ErrorHandler", "ErrorStrategy", "ExecutionStatus",
    "RoutineStatus", "JobStatus", "Runtime", "FlowRegistry", "WorkerRegistry",
    "get_flow_registry", "get_worker_registry", "WorkerManager", "get_worker_manager",
    "reset_worker_manager",
]
POLICIES = [
    "immediate_policy", "all_slots_ready_policy", "batch_size_policy", "time_interval_policy",
    "custom_policy", "breakpoint_policy",
]
OURS = ["get_current_job", "get_current_job_id", "get_current_worker_state", "SlotQueueFullError"]
CORE_EXTRA = [
    "get_current_job", "get_current_job_id", "get_current_worker_state", "set_current_job",
    "set_current_worker_state", "SlotDataPoint", "SlotQueueFullError", "RoutineConfig",
    "WorkerNotRunningError",
]
SUBMODULES = {
    "routine": ["Routine", "ExecutionContext"],
    "slot": ["Slot", "SlotDataPoint", "SlotQueueFullError"],
    "event": ["Event"],
    "connection": ["Connection"],
    "flow": ["Flow"],
    "runtime": ["Runtime"],
    "worker": ["WorkerState", "ExecutionRecord"],
    "context": ["JobContext", "get_current_job", "get_current_job_id", "get_current_worker_state",
                "set_current_job", "set_current_worker_state"],
    "error": ["ErrorHandler", "ErrorStrategy"],
    "status": ["ExecutionStatus", "RoutineStatus", "JobStatus"],
    "registry": ["FlowRegistry", "WorkerRegistry", "get_flow_registry", "get_worker_registry"],
}
HEAVY = ["IPython", "ipywidgets", "matplotlib", "pandas", "dask", "distributed", "tqdm"]


def test_every_name_in_all_resolves_and_nothing_private_leaks() -> None:
    assert len(routilux.__all__) == len(set(routilux.__all__))
    for name in routilux.__all__:
        assert hasattr(routilux, name), name
        assert not name.startswith("_") or name == "__version__", name


def test_the_required_names_are_exported() -> None:
    missing = [n for n in CORE_NAMES + POLICIES + OURS + ["__version__"]
               if n not in routilux.__all__]
    assert missing == []
    assert isinstance(routilux.__version__, str) and routilux.__version__


def test_public_classes_claim_the_public_module() -> None:
    assert routilux.Flow.__module__ == "routilux"
    for name in routilux.__all__:
        obj = getattr(routilux, name)
        module = getattr(obj, "__module__", None)
        if isinstance(module, str) and module.startswith("routilux"):
            assert not module.startswith("routilux._"), f"{name} claims {module}"


def test_core_exports_the_same_objects() -> None:
    core = importlib.import_module("routilux.core")
    for name in CORE_NAMES + CORE_EXTRA:
        assert hasattr(core, name), f"routilux.core.{name}"
        if hasattr(routilux, name):
            assert getattr(core, name) is getattr(routilux, name), name
    assert routilux.Flow is core.Flow is importlib.import_module("routilux.core.flow").Flow


@pytest.mark.parametrize("module", sorted(SUBMODULES))
def test_core_submodules_expose_upstream_names(module: str) -> None:
    mod = importlib.import_module(f"routilux.core.{module}")
    for name in SUBMODULES[module]:
        assert getattr(mod, name) is getattr(routilux, name), f"routilux.core.{module}.{name}"


def test_activation_policies_module() -> None:
    mod = importlib.import_module("routilux.activation_policies")
    for name in POLICIES:
        assert getattr(mod, name) is getattr(routilux, name), name


def test_compat_import_paths_are_the_same_objects() -> None:
    from routilux.monitoring.flow_registry import FlowRegistry
    from routilux.runtime import Runtime

    assert FlowRegistry is routilux.FlowRegistry
    assert Runtime is routilux.Runtime
    assert routilux.core.RoutineConfig is importlib.import_module("routilux.core").RoutineConfig


def test_status_enums_equal_their_values() -> None:
    assert routilux.JobStatus.COMPLETED == "completed"
    assert routilux.ExecutionStatus.IDLE == "idle"
    assert routilux.RoutineStatus.ERROR_CONTINUED == "error_continued"
    assert [s.value for s in routilux.JobStatus] == [
        "pending", "running", "completed", "failed", "cancelled"]


@pytest.mark.timeout(120)
def test_import_routilux_pulls_in_no_heavy_dependency() -> None:
    code = (
        "import sys, routilux, routilux.core, routilux.runtime, routilux.activation_policies, "
        "routilux.monitoring.flow_registry\n"
        f"heavy = {HEAVY!r}\n"
        "print(','.join(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=100, check=True)
    assert out.stdout.strip() == "", f"import routilux imported: {out.stdout.strip()}"


@pytest.mark.parametrize(
    "legacy",
    ["JobState", "JobManager"],
)
def test_v1_names_are_not_provided(legacy: str) -> None:
    assert not hasattr(routilux, legacy)
