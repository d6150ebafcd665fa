"""Issue 14, item 2: serialize()/deserialize() round trips in upstream's dict shapes.

Structure and config travel; logic stays code (api.md §13): a routine whose class can be
imported comes back as that class (so it runs), any other as a plain Routine with the
same ports and config.
"""

from __future__ import annotations

import json
import logging

import pytest
from util import JOIN_TIMEOUT, new_flow, running

from routilux import (
    Connection,
    ErrorHandler,
    ErrorStrategy,
    ExecutionStatus,
    Flow,
    Routine,
    WorkerState,
    batch_size_policy,
    immediate_policy,
)


class Doubler(Routine):
    """Importable (module level), configured through set_config, as the docs require."""

    def __init__(self) -> None:
        super().__init__()
        self.add_slot("input", max_queue_length=50, watermark=0.5)
        self.add_event("output", ["result"])
        self.set_config(factor=2)
        self.set_activation_policy(immediate_policy())

    def logic(self, slot_data, policy_message, worker_state):
        factor = self.get_config("factor")
        self.emit("output", result=slot_data["input"][0]["x"] * factor)


class Sink(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("input")
        self.set_activation_policy(immediate_policy())

    def logic(self, slot_data, policy_message, worker_state):
        worker_state.update_routine_state("sink", {"got": slot_data["input"][0]["result"]})


def _flow() -> Flow:
    flow = new_flow("ser", execution_timeout=42.0)
    doubler = Doubler()
    doubler.set_config(factor=3)
    doubler.set_error_handler(ErrorHandler(ErrorStrategy.RETRY, max_retries=2,
                                           retry_delay=0.5))
    flow.add_routine(doubler, "double")
    flow.add_routine(Sink(), "sink")
    flow.connect("double", "output", "sink", "input")
    flow.set_error_handler(ErrorHandler(ErrorStrategy.CONTINUE))
    return flow


def test_flow_serializes_to_upstreams_shape_as_json() -> None:
    flow = _flow()
    data = json.loads(json.dumps(flow.serialize()))
    assert data["_type"] == "Flow" and data["version"] == 1
    assert data["flow_id"] == flow.flow_id and data["execution_timeout"] == 42.0
    assert data["error_handler"]["strategy"] == "continue"
    assert list(data["routines"]) == ["double", "sink"]
    double = data["routines"]["double"]
    assert double["_type"] == "Doubler" and double["_class"].endswith(":Doubler")
    assert double["_config"] == {"factor": 3}
    assert double["_slots"]["input"] == {"_type": "Slot", "name": "input",
                                         "max_queue_length": 50, "watermark": 0.5}
    assert double["_events"]["output"]["output_params"] == ["result"]
    assert double["_error_handler"]["max_retries"] == 2
    assert double["_activation_policy"]["type"] == "immediate"
    assert double["_logic"].endswith("Doubler.logic")
    assert data["connections"] == [{
        "_type": "Connection", "_source_event_name": "output", "_source_routine_id": "double",
        "_target_slot_name": "input", "_target_routine_id": "sink",
    }]


def test_flow_round_trip_rebuilds_classes_config_and_wiring_and_runs() -> None:
    original = _flow()
    data = json.loads(json.dumps(original.serialize()))
    original_id = original.flow_id
    del original
    restored = Flow.deserialize(data)
    assert restored.flow_id == original_id and restored.execution_timeout == 42.0
    assert restored.error_handler.strategy == ErrorStrategy.CONTINUE
    double = restored.routines["double"]
    assert type(double) is Doubler and double.get_config("factor") == 3
    assert double.get_error_handler().max_retries == 2
    assert double.get_slot("input").max_queue_length == 50
    assert [repr(c) for c in restored.connections] == [
        "Connection[Event[double.output] -> Slot[sink.input]]"]
    assert restored.serialize() == data  # stable: a second round trip changes nothing
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(restored, "double", "input", {"x": 5})
        assert job.wait(JOIN_TIMEOUT) and job.status == "completed"
        rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
    assert ws.get_routine_state("sink") == {"got": 15}


def test_deserialize_on_an_instance_fills_it_in() -> None:
    data = _flow().serialize()
    target = Flow()
    assert target.deserialize(data) is target
    assert target.flow_id == data["flow_id"] and list(target.routines) == ["double", "sink"]


def test_an_unimportable_class_comes_back_as_a_plain_routine(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = _flow().serialize()
    data["routines"]["double"]["_class"] = "no_such_module_here:Gone"
    with caplog.at_level(logging.WARNING, logger="routilux"):
        restored = Flow.deserialize(data)
    plain = restored.routines["double"]
    assert type(plain) is Routine
    assert list(plain.slots) == ["input"] and list(plain.events) == ["output"]
    assert plain.get_config("factor") == 3
    assert plain.get_activation_policy_info()["type"] == "immediate"  # built-ins rebuild
    assert plain._get_logic() is None
    assert any("no_such_module_here:Gone cannot be imported" in r.getMessage()
               for r in caplog.records)


def test_a_class_local_to_a_function_round_trips_in_the_same_process() -> None:
    class Local(Routine):  # upstream's tests define routines inside test functions
        def setup(self) -> None:
            self.add_slot("input")
            self.add_event("output")

    flow = new_flow("local")
    routine = Local()
    routine.setup()
    flow.add_routine(routine, "test")
    restored = Flow()
    restored.deserialize(flow.serialize())
    assert type(restored.routines["test"]) is Local
    assert list(restored.routines["test"].slots) == ["input"]


def test_builtin_policies_come_back_with_their_config() -> None:
    r = Routine()
    r.add_slot("a")
    r.set_activation_policy(batch_size_policy(4))
    back = Routine.deserialize(json.loads(json.dumps(r.serialize())))
    assert back.get_activation_policy_info() == r.get_activation_policy_info()


def test_connection_serialize_and_deserialize_keep_the_names() -> None:
    flow = _flow()
    conn = flow.connections[0]
    data = conn.serialize()
    loose = Connection.deserialize(data)
    assert isinstance(loose, Connection) and loose.source_event is None
    assert (loose._source_routine_id, loose._source_event_name, loose._target_routine_id,
            loose._target_slot_name) == ("double", "output", "sink", "input")
    unwired = Connection().serialize()
    assert unwired == {"_type": "Connection"}


def test_worker_state_round_trip_after_a_run() -> None:
    flow = _flow()
    with running(thread_pool_size=2) as rt:
        ws, job = rt.post(flow.flow_id, "double", "input", {"x": 1})
        assert job.wait(JOIN_TIMEOUT)
        rt.wait_until_all_workers_idle(JOIN_TIMEOUT)
    ws.shared_log.append({"note": "kept"})
    data = json.loads(json.dumps(ws.serialize()))
    assert data["_type"] == "WorkerState" and data["status"] == "completed"
    back = WorkerState.deserialize(data)
    assert back.worker_id == ws.worker_id and back.flow_id == flow.flow_id
    assert back.status == ExecutionStatus.COMPLETED
    assert back.routine_states == ws.routine_states
    assert back.jobs_processed == ws.jobs_processed == 1
    assert [r.event_name for r in back.execution_history] == \
        [r.event_name for r in ws.execution_history]
    assert list(back.shared_log) == [{"note": "kept"}]
    empty = WorkerState()
    assert empty.deserialize(data) is empty and empty.worker_id == ws.worker_id


@pytest.mark.parametrize("cls", [Flow, Routine, Connection, WorkerState])
def test_deserialize_refuses_what_is_not_a_dict(cls: type) -> None:
    with pytest.raises(TypeError, match="deserialize needs a dict"):
        cls.deserialize(["not", "a", "dict"])


def test_an_unknown_version_is_refused() -> None:
    data = _flow().serialize()
    data["version"] = 99
    with pytest.raises(ValueError, match="serialization version 99"):
        Flow.deserialize(data)
