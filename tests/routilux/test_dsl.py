"""The flow DSL (api.md §7): Flow.from_dict / Flow.from_yaml over an ObjectFactory.

A good spec builds a flow that runs; every bad spec is refused with a message naming
where in the spec the problem is and what is valid (table-driven, as test_bad_input).
"""

from __future__ import annotations

from typing import Any

import pytest
from util import JOIN_TIMEOUT, Recorder, finish_all, running

from routilux import (
    ErrorHandler,
    Flow,
    ObjectFactory,
    ObjectMetadata,
    Routine,
    get_current_job,
    immediate_policy,
)

SEEN = Recorder()


class Doubler(Routine):
    def __init__(self) -> None:
        super().__init__()
        self.add_slot("in")
        self.add_event("out")
        self.set_activation_policy(immediate_policy())

    def logic(self, slot_data, policy_message, worker_state):
        x = slot_data["in"][0]["x"]
        self.emit("out", x=x * self.get_config("factor", 2))


class Sink(Routine):
    def setup(self) -> None:  # the other build style: declared in setup()
        self.add_slot("in")
        self.set_activation_policy(immediate_policy())

    def logic(self, slot_data, policy_message, worker_state):
        SEEN.add((slot_data["in"][0]["x"], get_current_job().job_id))


@pytest.fixture
def factory() -> ObjectFactory:
    f = ObjectFactory()
    f.register("doubler", Doubler, description="x -> 2x")
    f.register("sink", Sink)
    return f


def good_spec(flow_id: str = "dsl-good") -> dict[str, Any]:
    return {
        "flow_id": flow_id,
        "routines": {
            "a": {"class": "doubler", "config": {"factor": 3},
                  "error_handler": {"strategy": "retry", "max_retries": 2}},
            "b": {"class": "sink"},
        },
        "connections": [{"from": "a.out", "to": "b.in"}],
        "execution": {"timeout": 12.5},
    }


@pytest.mark.timeout(30)
def test_a_spec_builds_a_flow_that_runs(factory: ObjectFactory) -> None:
    flow = Flow.from_dict(good_spec("dsl-run"), factory=factory)
    assert list(flow.routines) == ["a", "b"]
    assert flow.execution_timeout == 12.5
    handler = flow.routines["a"].get_error_handler()
    assert (handler.strategy.value, handler.max_retries, handler.retry_delay) == ("retry", 2, 1.0)
    assert flow.routines["a"].get_config("factor") == 3
    with running(thread_pool_size=2) as rt:
        _, job = rt.post(flow, "a", "in", {"x": 5})
        finish_all(rt)
        assert job.status == "completed"
        assert (15, job.job_id) in SEEN.wait_for(1, JOIN_TIMEOUT)


def test_yaml_spec_is_the_same_spec(factory: ObjectFactory) -> None:
    pytest.importorskip("yaml")
    flow = Flow.from_yaml(
        """
        flow_id: dsl-yaml
        routines:
          a: {class: doubler, config: {factor: 4}}
          b: {class: sink}
        connections:
          - {from: a.out, to: b.in}
        """.replace("\n        ", "\n"),
        factory=factory,
    )
    assert flow.flow_id == "dsl-yaml" and len(flow.connections) == 1
    assert flow.routines["a"].get_config("factor") == 4


def test_the_global_factory_is_used_by_default() -> None:
    f = ObjectFactory.get_instance()
    f.register("dsl-global-doubler", Doubler)
    try:
        flow = Flow.from_dict({"routines": {"a": {"class": "dsl-global-doubler"}}})
        assert isinstance(flow.routines["a"], Doubler)
    finally:
        f.unregister("dsl-global-doubler")


def test_instance_prototypes_copy_ports_config_logic_policy_and_handler() -> None:
    f = ObjectFactory()
    base = Routine()
    base.add_slot("in", max_queue_length=7)
    base.add_event("out", ["y"])
    base.set_config(label="base")
    base.set_logic(lambda sd, pm, ws: None)
    base.set_activation_policy(immediate_policy())
    base.set_error_handler(ErrorHandler("skip"))
    f.register("configured", base, metadata=ObjectMetadata("configured", category="demo"))
    made = f.create("configured", config={"extra": 1})
    assert made is not base
    assert made.get_slot("in").max_queue_length == 7
    assert made.get_event("out").output_params == ["y"]
    assert made.config() == {"label": "base", "extra": 1}
    assert made.get_error_handler().strategy.value == "skip"
    assert f.list_available(category="demo")[0]["type"] == "instance"
    assert f.get_factory_name(made) == "configured"


FACTORY_CASES = [
    ("name taken", lambda f: f.register("doubler", Doubler), ValueError,
     r"prototype 'doubler' is already registered"),
    ("not a routine", lambda f: f.register("x", dict), TypeError,
     r"prototype 'x' must be a Routine subclass or a Routine instance"),
    ("empty name", lambda f: f.register("", Doubler), ValueError,
     r"prototype name must be a non-empty str"),
    ("create unknown", lambda f: f.create("nope"), ValueError,
     r"no ObjectFactory prototype named 'nope'; registered: doubler, sink"),
    ("unregister unknown", lambda f: f.unregister("nope"), ValueError,
     r"no prototype named 'nope'"),
]


@pytest.mark.parametrize(("call", "error", "match"), [c[1:] for c in FACTORY_CASES],
                         ids=[c[0] for c in FACTORY_CASES])
def test_factory_refuses_bad_calls(factory: ObjectFactory, call: Any, error: type,
                                   match: str) -> None:
    with pytest.raises(error, match=match):
        call(factory)


def _with(path: tuple[Any, ...], value: Any, delete: bool = False) -> dict[str, Any]:
    spec = good_spec()
    target: Any = spec
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return spec


BAD_SPECS = [
    # (id, spec, error, match)
    ("not a mapping", [1, 2], TypeError, r"a flow spec must be a mapping, got list"),
    ("unknown top key", _with(("routine",), {}), ValueError,
     r"flow spec: unknown key\(s\) 'routine'; valid: flow_id, routines, connections, execution"),
    ("no routines", _with(("routines",), None, delete=True), ValueError,
     r"flow spec: missing 'routines'"),
    ("routines a list", _with(("routines",), ["a"]), ValueError,
     r"routines must be a mapping, got list"),
    ("flow_id not a str", _with(("flow_id",), 7), ValueError,
     r"flow_id must be a non-empty string, got 7"),
    ("routine entry a str", _with(("routines", "a"), "doubler"), ValueError,
     r"routines.a must be a mapping, got str"),
    ("routine id with a dot", _with(("routines", "a.b"), {"class": "sink"}), ValueError,
     r"routine id must be a non-empty string without '.', got 'a.b'"),
    ("missing class", _with(("routines", "b"), {"config": {}}), ValueError,
     r"routines.b: missing 'class' \(the ObjectFactory name\)"),
    ("unregistered class", _with(("routines", "b", "class"), "nosuch"), ValueError,
     r"routines.b: no ObjectFactory prototype named 'nosuch'; registered: doubler, sink"),
    ("class not a str", _with(("routines", "b", "class"), Sink), ValueError,
     r"routines.b.class must be a string"),
    ("unknown routine key", _with(("routines", "b", "logic"), "print"), ValueError,
     r"routines.b: unknown key\(s\) 'logic'; valid: class, config, error_handler"),
    ("config a list", _with(("routines", "a", "config"), [1]), ValueError,
     r"routines.a.config must be a mapping, got list"),
    ("handler unknown key", _with(("routines", "a", "error_handler", "retries"), 2),
     ValueError, r"routines.a.error_handler: unknown key\(s\) 'retries'; valid: strategy"),
    ("handler bad strategy", _with(("routines", "a", "error_handler", "strategy"), "panic"),
     ValueError, r"routines.a.error_handler: unknown error strategy 'panic'"),
    ("handler nan delay", _with(("routines", "a", "error_handler", "retry_delay"),
                                float("nan")), ValueError,
     r"routines.a.error_handler: retry_delay must be a finite number"),
    ("connections a dict", _with(("connections",), {"from": "a.out"}), ValueError,
     r"connections must be a list, got dict"),
    ("connection missing to", _with(("connections", 0), {"from": "a.out"}), ValueError,
     r"connections\[0\]: missing 'to'"),
    ("connection no dot", _with(("connections", 0, "from"), "aout"), ValueError,
     r"connections\[0\].from must be a string 'routine_id.event', got 'aout'"),
    ("connection unknown event", _with(("connections", 0, "from"), "a.nope"), ValueError,
     r"connections\[0\]: routine 'a' has no event 'nope'; events are: out"),
    ("connection unknown routine", _with(("connections", 0, "to"), "z.in"), ValueError,
     r"connections\[0\]: flow 'dsl-good' has no target routine 'z'"),
    ("connection unknown slot", _with(("connections", 0, "to"), "b.inn"), ValueError,
     r"connections\[0\]: routine 'b' has no slot 'inn'; slots are: in"),
    ("connection extra key", _with(("connections", 0, "via"), "x"), ValueError,
     r"connections\[0\]: unknown key\(s\) 'via'; valid: from, to"),
    ("execution unknown key", _with(("execution", "retries"), 1), ValueError,
     r"execution: unknown key\(s\) 'retries'; valid: timeout"),
    ("timeout nan", _with(("execution", "timeout"), float("nan")), ValueError,
     r"execution.timeout: execution_timeout must be a finite number"),
    ("timeout a str", _with(("execution", "timeout"), "1m"), ValueError,
     r"execution.timeout: execution_timeout must be a number"),
]


@pytest.mark.parametrize(("spec", "error", "match"), [c[1:] for c in BAD_SPECS],
                         ids=[c[0] for c in BAD_SPECS])
def test_bad_specs_are_refused_naming_the_place(factory: ObjectFactory, spec: Any,
                                                error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Flow.from_dict(spec, factory=factory)


@pytest.mark.parametrize(
    ("text", "match"),
    [("routines: [unclosed", r"the flow spec is not valid YAML"),
     ("- a\n- b\n", r"the YAML flow spec must be a mapping at the top, got list"),
     ("!!python/object/apply:os.system ['echo hi']", r"not valid YAML")],
    ids=["syntax", "a list", "python tag (never evaluated)"],
)
def test_bad_yaml_is_refused(factory: ObjectFactory, text: str, match: str) -> None:
    pytest.importorskip("yaml")
    with pytest.raises(ValueError, match=match):
        Flow.from_yaml(text, factory=factory)
