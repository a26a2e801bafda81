from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from lockstep.errors import SpecError
from lockstep.spec.machine import (
    LoadedMachine,
    Transition,
    is_machine,
    load_machine,
    normalise_name,
)
from lockstep.spec.yamlsafe import MAX_BYTES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "statemachine" / "workflow.json"

# the vendor page's example, verbatim (the lambda type is on line 6, column 8)
VENDOR = """\
{
  "workflowName": "my-workflow",
  "steps": [
    {"name": "fetchData",
     "integrationDetails": {
       "type": "/justworkflowit/aws/lambda",
       "config": {"region": "us-east-1", "functionName": "fetch-data"},
       "inputDefinition": {"$ref": "#/definitions/workflowInput"},
       "outputDefinition": {"$ref": "#/definitions/fetchOutput"}},
     "transitionToStep": "processData"},
    {"name": "processData",
     "integrationDetails": {"type": "/justworkflowit/noop",
       "inputDefinition": {"$ref": "#/definitions/fetchOutput"},
       "outputDefinition": {"$ref": "#/definitions/fetchOutput"}},
     "transitionToStep": null}
  ],
  "definitions": {
    "workflowInput": {"type": "object", "properties": {}, "required": [], "additionalProperties": false},
    "fetchOutput": {"type": "object", "properties": {"data": {"type": "string"}}, "required": ["data"], "additionalProperties": false}
  }
}
"""
RUNNABLE = VENDOR.replace("/justworkflowit/aws/lambda", "/justworkflowit/http").replace(
    '{"region": "us-east-1", "functionName": "fetch-data"}',
    '{"url": "https://fetch.example.com/data"}',
)


def errors_of(text: str | bytes, **kwargs: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_machine(text, "workflow.json", **kwargs)
    return [str(d) for d in caught.value.diagnostics]


def at(text: str, needle: str, nth: int = 0) -> str:
    """``workflow.json:line:col:`` of the ``nth`` occurrence of ``needle`` in ``text``."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"workflow.json:{line}:{col}:"


def step(name: str, to: Any = None, type_: str = "noop", **extra: Any) -> dict[str, Any]:
    return {"name": name, "integrationDetails": {"type": type_}, "transitionToStep": to, **extra}


def doc(*steps: dict[str, Any], **top: Any) -> str:
    return json.dumps({"workflowName": "test", "steps": list(steps), **top}, indent=2)


def one_error(text: str) -> str:
    found = errors_of(text)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- loading


def test_the_vendor_example_is_rejected_for_its_lambda_executor() -> None:
    message = one_error(VENDOR)
    assert message.startswith(
        "workflow.json:6:8: unknown executor type '/justworkflowit/aws/lambda'"
    )
    assert "known executors: 'noop', 'shell', 'http'" in message


def test_the_vendor_example_loads_with_an_http_executor() -> None:
    machine = load_machine(RUNNABLE)
    assert isinstance(machine, LoadedMachine)
    assert (machine.name, machine.workflow_name, machine.description) == (
        "my-workflow",
        "my-workflow",
        None,
    )
    assert machine.start == "fetchData"
    assert list(machine.steps) == ["fetchData", "processData"]
    fetch, process = machine.steps.values()
    assert (fetch.executor, fetch.type) == ("http", "/justworkflowit/http")
    assert fetch.config == {
        "url": "https://fetch.example.com/data",
        "method": "POST",
        "headers": {},
        "timeout": None,
    }
    definitions = json.loads(RUNNABLE)["definitions"]
    assert fetch.input_schema == definitions["workflowInput"]
    assert fetch.output_schema == definitions["fetchOutput"]
    assert fetch.transition == Transition(next="processData")
    assert not fetch.transition.conditional
    assert (process.executor, process.config, process.max_visits) == ("noop", {}, 10)
    assert process.transition.targets() == [None]
    assert machine.digest == hashlib.sha256(RUNNABLE.encode()).hexdigest()
    assert machine.text == RUNNABLE and machine.file == "workflow.json"
    assert machine.data == json.loads(RUNNABLE)
    assert machine.position("/steps/1/transitionToStep") == (15, 6)


def test_bytes_and_yaml_syntax_are_accepted() -> None:
    assert load_machine(RUNNABLE.encode()).digest == hashlib.sha256(RUNNABLE.encode()).hexdigest()
    yaml_text = "workflowName: y\nsteps:\n  - name: a\n    integrationDetails: {type: noop}\n"
    assert load_machine(yaml_text + "    transitionToStep: null\n").start == "a"


def test_the_example_loads() -> None:
    machine = load_machine(EXAMPLE.read_bytes(), str(EXAMPLE))
    assert machine.name == "order-processing"
    assert [s.executor for s in machine.steps.values()] == ["shell", "http", "noop"]
    score = machine.steps["scoreOrder"]
    assert score.max_visits == 5
    assert score.config["url"] == "http://127.0.0.1:8099/score"
    assert score.transition.conditional
    assert score.transition.targets() == ["scoreOrder", "finish"]
    assert machine.steps["computeTotal"].config["timeout"] == 30.0
    order = machine.steps["computeTotal"].input_schema
    assert order is not None
    validator = Draft202012Validator(order)
    assert validator.is_valid({"orderId": "o1", "items": [{"sku": "a", "price": 2, "quantity": 1}]})
    assert not validator.is_valid(
        {"orderId": "o1", "items": [{"sku": "a", "price": -1, "quantity": 1}]}
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"workflowName": "x", "steps": []}, True),
        (json.loads(VENDOR), True),
        ({"workflowName": "x", "steps": {}}, False),
        ({"name": "x", "steps": {"a": {"run": "true"}}}, False),
        ({"steps": []}, False),
        ([{"workflowName": "x", "steps": []}], False),
        ("workflowName", False),
        (None, False),
    ],
)
def test_is_machine(data: object, expected: bool) -> None:
    assert is_machine(data) is expected


@pytest.mark.parametrize(
    ("written", "name"),
    [
        ("my-workflow", "my-workflow"),
        ("MyWorkflow_2", "myworkflow-2"),
        ("Order Processing (v2)", "order-processing--v2"),
        ("-x-", "x"),
        ("Ünïcode", "n-code"),
    ],
)
def test_names_are_normalised(written: str, name: str) -> None:
    assert normalise_name(written) == name
    text = doc(step("a"), workflowName=written)
    assert load_machine(text).name == name


def test_start_at_and_max_visits_and_description() -> None:
    text = doc(
        step("a"),
        step("b", "a", maxVisits=1000),
        startAt="b",
        description="two steps",
    )
    machine = load_machine(text)
    assert machine.start == "b"
    assert machine.description == "two steps"
    assert machine.steps["b"].max_visits == 1000
    assert machine.steps["a"].max_visits == 10


def test_shell_and_http_configs_are_normalised() -> None:
    text = doc(
        step("sh", "web", "shell", **{}),
        step("web", None, "/lockstep/http"),
    )
    data = json.loads(text)
    data["steps"][0]["integrationDetails"]["config"] = {
        "run": ["echo", "hi"],
        "env": {"A_1": "x"},
        "timeout": "1m",
    }
    data["steps"][1]["integrationDetails"]["config"] = {
        "url": "http://127.0.0.1:1/x",
        "method": "put",
        "headers": {"X-Token": "abc"},
        "timeout": 2.5,
    }
    machine = load_machine(json.dumps(data))
    assert machine.steps["sh"].config == {
        "run": ["echo", "hi"],
        "env": {"A_1": "x"},
        "timeout": 60.0,
    }
    assert machine.steps["web"].config == {
        "url": "http://127.0.0.1:1/x",
        "method": "PUT",
        "headers": {"X-Token": "abc"},
        "timeout": 2.5,
    }


# --------------------------------------------------------------------------- schemas


def _with_schemas(inp: Any, out: Any = None, definitions: Any = None) -> str:
    details: dict[str, Any] = {"type": "noop", "inputDefinition": inp}
    if out is not None:
        details["outputDefinition"] = out
    data: dict[str, Any] = {
        "workflowName": "s",
        "steps": [{"name": "a", "integrationDetails": details, "transitionToStep": None}],
    }
    if definitions is not None:
        data["definitions"] = definitions
    return json.dumps(data, indent=2)


NESTED: dict[str, Any] = {
    "id": {"type": "string", "minLength": 1},
    "unused": {"type": "integer"},
    "item": {
        "type": "object",
        "properties": {"id": {"$ref": "#/definitions/id"}, "tags": {"type": "array"}},
        "required": ["id"],
    },
    "order": {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"$ref": "#/definitions/item"}}},
        "required": ["items"],
    },
    "tree": {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/definitions/tree"}}},
    },
}


def test_a_ref_is_replaced_by_its_definition_with_the_nested_ones_attached() -> None:
    machine = load_machine(_with_schemas({"$ref": "#/definitions/order"}, definitions=NESTED))
    schema = machine.steps["a"].input_schema
    assert schema is not None
    assert schema["properties"] == NESTED["order"]["properties"]
    assert list(schema["definitions"]) == ["id", "item"]  # only what it reaches, file order
    validator = Draft202012Validator(schema)
    assert validator.is_valid({"items": [{"id": "x"}]})
    assert not validator.is_valid({"items": [{"id": ""}]})  # through two levels of $ref
    assert not validator.is_valid({"items": [{}]})
    assert machine.steps["a"].output_schema is None


def test_recursive_definitions_and_inline_schemas_with_refs() -> None:
    inline = {"type": "object", "properties": {"root": {"$ref": "#/definitions/tree"}}}
    text = _with_schemas(inline, {"$ref": "#/definitions/tree"}, NESTED)
    machine = load_machine(text)
    step_ = machine.steps["a"]
    assert step_.input_schema is not None and step_.output_schema is not None
    assert list(step_.input_schema["definitions"]) == ["tree"]
    assert step_.input_schema["properties"] == inline["properties"]
    deep = {"children": [{"children": [{"children": 1}]}]}
    assert not Draft202012Validator(step_.output_schema).is_valid(deep)
    assert Draft202012Validator(step_.output_schema).is_valid({"children": [{"children": []}]})
    assert not Draft202012Validator(step_.input_schema).is_valid({"root": deep})


def test_resolved_schemas_are_copies_and_plain_schemas_stay_plain() -> None:
    plain = {"type": "object", "properties": {"n": {"type": "integer"}}}
    machine = load_machine(_with_schemas(plain, {"$ref": "#/definitions/id"}, NESTED))
    assert machine.steps["a"].input_schema == plain
    output = machine.steps["a"].output_schema
    assert output == NESTED["id"]
    assert output is not None
    output["minLength"] = 5
    assert machine.data["definitions"]["id"]["minLength"] == 1


def test_ref_like_data_inside_enum_or_default_is_not_a_reference() -> None:
    schema = {"enum": [{"$ref": "http://not.a/ref"}], "default": {"$ref": "#/nope"}}
    assert load_machine(_with_schemas(schema)).steps["a"].input_schema == schema


@pytest.mark.parametrize(
    ("inp", "definitions", "needle", "fragment"),
    [
        (
            {"$ref": "#/definitions/missing"},
            {"present": {}},
            '"$ref"',
            "$ref '#/definitions/missing' names an unknown definition 'missing'; defined: present",
        ),
        (
            {"$ref": "#/definitions/fetchOutpt"},
            {"fetchOutput": {}},
            '"$ref"',
            "did you mean 'fetchOutput'?",
        ),
        ({"$ref": "#/definitions/x"}, None, '"$ref"', "there is no top-level 'definitions'"),
        (
            {"$ref": "http://example.com/schema.json"},
            {},
            '"$ref"',
            "unsupported $ref 'http://example.com/schema.json'; only local references",
        ),
        ({"$ref": "#/other/x"}, {}, '"$ref"', "unsupported $ref '#/other/x'"),
        ({"$ref": "#/definitions/a/properties/b"}, {"a": {}}, '"$ref"', "unsupported $ref"),
        (
            {"type": "object", "properties": {"x": {"$ref": "#/definitions/nope"}}},
            {"a": {}},
            '"$ref"',
            "unknown definition 'nope'",
        ),
        (
            {"type": "bogus"},
            None,
            '"type": "bogus"',
            "'inputDefinition' in step 'a' is not a valid JSON Schema",
        ),
        ("object", None, '"inputDefinition"', "must be a mapping (a JSON Schema), got a string"),
        ({"$id": "http://x/y", "type": "object"}, None, '"$id"', "'$id' is not supported here"),
        ({"definitions": {}}, None, '"definitions"', "cannot hold its own 'definitions'"),
        (
            {"$ref": "#/definitions/a"},
            {"a": {"minimum": "zero"}},
            '"minimum"',
            "definition 'a' is not a valid JSON Schema",
        ),
        ({}, {"a": {"$ref": "#/definitions/b"}}, '"$ref"', "unknown definition 'b'"),
        ({}, [], '"definitions"', "'definitions' must be a mapping, got a list"),
    ],
)
def test_bad_schemas_and_refs(inp: Any, definitions: Any, needle: str, fragment: str) -> None:
    text = _with_schemas(inp, definitions=definitions)
    message = one_error(text)
    assert message.startswith(at(text, needle)), message
    assert fragment in message


# --------------------------------------------------------------------------- transitions


LOOP = """\
{
  "workflowName": "loop",
  "steps": [
    {"name": "poll",
     "integrationDetails": {"type": "/x/shell", "config": {"run": "./poll.sh"}},
     "maxVisits": 20,
     "transitionToStep": {
       "conditions": [
         {"if": "output.state == 'done'", "next": "report"},
         {"if": "visits.poll >= 20 || size(input) > params.limit", "next": null},
         {"if": "output.items.exists(i, i.retry)", "next": "poll"}
       ],
       "default": "wait"}},
    {"name": "wait", "integrationDetails": {"type": "noop"}, "transitionToStep": "poll"},
    {"name": "report", "integrationDetails": {"type": "noop"}, "transitionToStep": null}
  ]
}
"""


def test_a_loop_with_a_conditional_exit_loads() -> None:
    machine = load_machine(LOOP)
    poll = machine.steps["poll"]
    assert poll.max_visits == 20
    assert poll.transition.conditions == [
        ("output.state == 'done'", "report"),
        ("visits.poll >= 20 || size(input) > params.limit", None),
        ("output.items.exists(i, i.retry)", "poll"),
    ]
    assert poll.transition.default == "wait"
    assert poll.transition.next is None
    assert poll.transition.targets() == ["report", None, "poll", "wait"]
    assert machine.steps["wait"].transition.next == "poll"


@pytest.mark.parametrize(
    ("old", "new", "needle", "fragment"),
    [
        (
            "output.state == 'done'",
            "output.state ==",
            '"if"',
            "invalid expression 'output.state ==':",
        ),
        (
            "output.state == 'done'",
            "outcome.state == 'done'",
            '"if"',
            "unknown name 'outcome'; conditions can use output, input, params, visits",
        ),
        (
            "visits.poll >= 20",
            "visits.pol >= 20",
            '"if": "visits',
            "unknown step 'pol' in visits; did you mean 'poll'?",
        ),
        (
            "output.state == 'done'",
            "${{ output.state == 'done' }}",
            '"if"',
            "write it without '${{ }}'",
        ),
        (
            '"if": "output.state',
            '"iff": "output.state',
            '"iff"',
            "unknown key 'iff' in condition 1 in step 'poll'; did you mean 'if'?",
        ),
        (
            '"next": "report"',
            '"next": "reprot"',
            '"next"',
            "transition in step 'poll' to unknown step 'reprot'; did you mean 'report'?",
        ),
        (
            '"default": "wait"',
            '"default": 3',
            '"default"',
            "must be a step name or null, got a number",
        ),
        ('"default": "wait"', '"otherwise": "wait"', '"otherwise"', "unknown key 'otherwise'"),
        (
            '"maxVisits": 20',
            '"maxVisits": 0',
            '"maxVisits"',
            "'maxVisits' in step 'poll' must be between 1 and 1000, got 0",
        ),
        ('"maxVisits": 20', '"maxVisits": 1001', '"maxVisits"', "between 1 and 1000"),
        (
            '"maxVisits": 20',
            '"maxVisits": "20"',
            '"maxVisits"',
            "'maxVisits' in step 'poll' must be an integer, got a string",
        ),
        (
            '"maxVisits": 20',
            '"maxVisits": true',
            '"maxVisits"',
            "must be an integer, got a boolean",
        ),
        ('"maxVisits": 20', '"maxVisits": null', '"maxVisits"', "must be an integer, got null"),
        (
            '"transitionToStep": "poll"',
            '"transitionToStep": "Poll"',
            '"transitionToStep": "Poll"',
            "unknown step 'Poll'; did you mean 'poll'?",
        ),
        (
            '"transitionToStep": "poll"',
            '"transitionToStep": ["poll"]',
            '"transitionToStep": ["poll"]',
            "must be a step name, null or a mapping",
        ),
        (
            '"transitionToStep": "poll"',
            '"transition": "poll"',
            '"transition"',
            "unknown key 'transition' in step 'wait'; did you mean 'transitionToStep'?",
        ),
    ],
)
def test_bad_transitions(old: str, new: str, needle: str, fragment: str) -> None:
    assert old in LOOP
    text = LOOP.replace(old, new, 1)
    found = errors_of(text)
    assert any(m.startswith(at(text, needle)) and fragment in m for m in found), found


def test_a_missing_transition_is_an_error() -> None:
    text = LOOP.replace(', "transitionToStep": null}', "}")
    message = one_error(text)
    assert message.startswith(at(text, '{"name": "report"'))
    assert "missing required key 'transitionToStep' in step 'report' (use null to end" in message


def test_a_conditional_needs_default_and_conditions() -> None:
    text = LOOP.replace(',\n       "default": "wait"', "")
    found = errors_of(text)
    assert found[0].startswith(at(text, '"transitionToStep": {'))
    assert "missing required key 'default' in 'transitionToStep' in step 'poll'" in found[0]
    assert any("step 'wait' is unreachable" in m for m in found)
    empty = doc(step("a", {"conditions": [], "default": None}))
    assert "'conditions' in step 'a' must be a non-empty list" in one_error(empty)


def test_unreachable_steps_and_unknown_start() -> None:
    text = doc(step("a"), step("orphan"), step("b", "a"))
    found = errors_of(text)
    orphan, b = at(text, '"name": "orphan"'), at(text, '"name": "b"')
    assert found == [
        f"{orphan} step 'orphan' is unreachable: no transition leads to it from the start step 'a'",
        f"{b} step 'b' is unreachable: no transition leads to it from the start step 'a'",
    ]
    started = doc(step("a"), step("b", "a"), startAt="c")
    message = one_error(started)
    assert message.startswith(at(started, '"startAt"'))
    assert "'startAt' names unknown step 'c'" in message


def test_a_cycle_without_exit_can_never_finish() -> None:
    text = doc(step("a", "b"), step("b", "a"))
    message = one_error(text)
    assert message.startswith(at(text, '"transitionToStep"'))
    assert "steps 'a', 'b' can never finish: no chain of transitions from them reaches null" in (
        message
    )
    # a trap after a good start: only the trapped steps are named
    trap = doc(
        step("start", {"conditions": [{"if": "true", "next": "spin"}], "default": None}),
        step("spin", "spin"),
    )
    message = one_error(trap)
    assert message.startswith(at(trap, '"transitionToStep"', 1))
    assert "step 'spin' can never finish" in message


# --------------------------------------------------------------------------- steps and configs


def _config_doc(type_: str, config: Any) -> str:
    data = {
        "workflowName": "c",
        "steps": [
            {
                "name": "a",
                "integrationDetails": {"type": type_, "config": config},
                "transitionToStep": None,
            }
        ],
    }
    return json.dumps(data, indent=2)


@pytest.mark.parametrize(
    ("type_", "config", "needle", "fragment"),
    [
        ("shell", {"env": {}}, '"config"', "missing required key 'run' in 'config' in step 'a'"),
        (
            "shell",
            None,
            '"config"',
            "missing required key 'config' in step 'a': the shell executor needs run",
        ),
        ("shell", {"run": "  "}, '"run"', "'run' in 'config' in step 'a' must not be empty"),
        ("shell", {"run": []}, '"run"', "must be a string (a bash script) or a non-empty list"),
        ("shell", {"run": ["ls", 1]}, '"run"', "got a list"),
        ("shell", {"run": "x", "env": {"1BAD": "x"}}, '"1BAD"', "invalid env name '1BAD'"),
        (
            "shell",
            {"run": "x", "env": {"N": 1}},
            '"N"',
            "env value 'N' in 'config' in step 'a' must be a string",
        ),
        ("shell", {"run": "x", "timeout": 0}, '"timeout"', "a timeout must be more than 0 seconds"),
        ("shell", {"run": "x", "timeout": "soon"}, '"timeout"', "'soon' is not a duration"),
        (
            "shell",
            {"run": "x", "url": "http://x"},
            '"url"',
            "unknown key 'url' in 'config' in step 'a'",
        ),
        ("http", {}, '"config"', "missing required key 'url' in 'config' in step 'a'"),
        ("http", None, '"config"', "the http executor needs url"),
        (
            "http",
            {"url": "ftp://x/y"},
            '"url"',
            "'url' in 'config' in step 'a' must be an http:// or https:// URL",
        ),
        ("http", {"url": "http://"}, '"url"', "must be an http:// or https:// URL with a host"),
        (
            "http",
            {"url": 5},
            '"url"',
            "'url' in 'config' in step 'a' must be a string, got a number",
        ),
        (
            "http",
            {"url": "http://h", "method": "FETCH"},
            '"method"',
            "unsupported HTTP method 'FETCH'",
        ),
        (
            "http",
            {"url": "http://h", "headers": {"Bad Name": "x"}},
            '"Bad Name"',
            "invalid header name",
        ),
        (
            "http",
            {"url": "http://h", "headers": {"X": "a\nb"}},
            '"X"',
            "must not contain line breaks",
        ),
        (
            "http",
            {"url": "http://h", "headers": ["X"]},
            '"headers"',
            "must be a mapping of name: value",
        ),
        ("http", {"url": "http://h", "methd": "GET"}, '"methd"', "did you mean 'method'?"),
        (
            "noop",
            {"x": 1},
            '"x"',
            "unknown key 'x' in 'config' in step 'a' (the noop executor takes no config)",
        ),
        ("noop", "x", '"config"', "'config' in step 'a' must be a mapping, got a string"),
        ("/aws/lambda", {"x": 1}, '"type"', "unknown executor type '/aws/lambda'"),
        ("/lockstep/shel", {}, '"type"', "e.g. '/lockstep/http'); did you mean 'shell'?"),
        (
            "noop",
            {"timeout": 0},
            '"timeout"',
            "unknown key 'timeout' in 'config' in step 'a' (the noop",
        ),
        ("http/", {}, '"type"', "unknown executor type 'http/'"),
    ],
)
def test_bad_configs(type_: str, config: Any, needle: str, fragment: str) -> None:
    text = _config_doc(type_, config)
    message = one_error(text)
    assert message.startswith(at(text, needle)), message
    assert fragment in message


def test_noop_accepts_an_empty_or_null_config() -> None:
    assert load_machine(_config_doc("noop", {})).steps["a"].config == {}
    assert load_machine(_config_doc("noop", None)).steps["a"].config == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"workflowName": "x", "steps": []}',
            "workflow.json:1:23: 'steps' must contain at least one step",
        ),
        (
            '{"workflowName": "x"}',
            "workflow.json:1:1: missing required key 'steps' at the top level",
        ),
        (
            '{"workflowName": "x", "steps": {}}',
            "workflow.json:1:23: 'steps' must be a list of steps, got a mapping",
        ),
        (
            '{"steps": []}',
            "workflow.json:1:1: missing required key 'workflowName' at the top level",
        ),
        (
            '{"workflowName": "", "steps": []}',
            "workflow.json:1:2: 'workflowName' must be 1 to 63 characters long",
        ),
        (
            '{"workflowName": "' + "x" * 64 + '", "steps": []}',
            "workflow.json:1:2: 'workflowName' must be 1 to 63 characters long",
        ),
        (
            '{"workflowName": "__", "steps": []}',
            "workflow.json:1:2: 'workflowName' '__' needs at least one letter or digit",
        ),
        (
            '{"workflowName": 1, "steps": []}',
            "workflow.json:1:2: 'workflowName' must be a string, got a number",
        ),
        (
            '{"workflowName": "x", "steps": [], "descripton": ""}',
            "workflow.json:1:36: unknown key 'descripton' at the top level; did you mean 'description'?",
        ),
        (
            '{"workflowName": "x", "steps": [], "description": 1}',
            "workflow.json:1:36: 'description' at the top level must be a string, got a number",
        ),
        (
            '{"workflowName": "x", "steps": [3]}',
            "workflow.json:1:33: step 1 must be a mapping, got a number",
        ),
        (
            "[1, 2]",
            "workflow.json:1:1: the top level of a state-machine workflow must be a mapping",
        ),
    ],
)
def test_top_level_problems(text: str, expected: str) -> None:
    found = errors_of(text)
    assert any(m.startswith(expected) for m in found), found


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("1st", "invalid step name '1st'; use up to 63 letters"),
        ("has space", "invalid step name 'has space'"),
        ("x" * 64, "invalid step name"),
    ],
)
def test_bad_step_names(name: str, fragment: str) -> None:
    text = doc(step("a", name), step(name))
    message = one_error(text)
    assert message.startswith(at(text, f'"name": "{name}"')), message
    assert fragment in message


def test_duplicate_step_names() -> None:
    text = doc(step("a", "b"), step("b"), step("a"))
    message = one_error(text)
    assert message.startswith(at(text, '"name": "a"', 1))
    assert "duplicate step name 'a'; step 1 has it already" in message


def test_every_problem_of_a_file_comes_at_once_in_file_order() -> None:
    text = """\
{
  "workflowName": "Bad Flow!",
  "startAt": "first",
  "steps": [
    {"name": "first",
     "integrationDetails": {
       "type": "/justworkflowit/aws/lambda",
       "inputDefinition": {"$ref": "#/definitions/nothing"}},
     "maxVisits": 0,
     "transitionToStep": "secnd"},
    {"name": "second",
     "integrationDetails": {"type": "http", "config": {"url": "file:///etc/passwd", "method": "GET"}},
     "transitionToStep": {"conditions": [{"if": "output.ok ==", "next": null}], "default": "first"}},
    {"name": "first", "integrationDetails": {"type": "shell", "config": {}}, "transitionToStep": null},
    {"name": "island", "integrationDetails": {"type": "noop"}, "transitionToStep": "island"}
  ],
  "extra": true
}
"""
    with pytest.raises(SpecError) as caught:
        load_machine(text)
    found = [str(d) for d in caught.value.diagnostics]
    assert found == [
        "workflow.json:7:8: unknown executor type '/justworkflowit/aws/lambda' in step 'first'; "
        "known executors: 'noop', 'shell', 'http' (chosen by the last path segment, "
        "e.g. '/lockstep/http')",
        "workflow.json:8:28: $ref '#/definitions/nothing' names an unknown definition 'nothing'; "
        "there is no top-level 'definitions'",
        "workflow.json:9:6: 'maxVisits' in step 'first' must be between 1 and 1000, got 0",
        "workflow.json:10:6: transition in step 'first' to unknown step 'secnd'; "
        "did you mean 'second'?",
        "workflow.json:11:6: step 'second' is unreachable: no transition leads to it from the "
        "start step 'first'",
        "workflow.json:12:56: 'url' in 'config' in step 'second' must be an http:// or https:// "
        "URL with a host, got 'file:///etc/passwd'",
        "workflow.json:13:43: condition 1 in step 'second': invalid expression 'output.ok ==': "
        "unexpected end of expression at column 13",
        "workflow.json:14:6: duplicate step name 'first'; step 1 has it already",
        "workflow.json:14:63: missing required key 'run' in 'config' in step 3",
        "workflow.json:15:6: step 'island' is unreachable: no transition leads to it from the "
        "start step 'first'",
        "workflow.json:17:3: unknown key 'extra' at the top level; allowed: workflowName, "
        "description, startAt, steps, definitions",
    ]
    assert str(caught.value).endswith("(and 10 more)")
    assert caught.value.diagnostics[0].path == "/steps/0/integrationDetails/type"
    assert caught.value.diagnostics[0].line == 7


# --------------------------------------------------------------------------- limits


def test_deep_nesting_is_refused() -> None:
    text = (
        '{"workflowName": "x", "steps": [], "definitions": {"a": '
        + "[" * 10_000
        + "]" * 10_000
        + "}}"
    )
    found = errors_of(text)
    assert len(found) == 1
    assert "nesting too deep (more than 200 levels)" in found[0]


def test_a_huge_file_is_refused() -> None:
    padding = " " * (2 * 1024 * 1024)
    text = '{"workflowName": "x", "steps": []' + padding + "}"
    assert errors_of(text) == [
        f"workflow.json: file is too large ({len(text)} bytes; the limit is {MAX_BYTES} bytes)"
    ]
    assert errors_of(text.encode())[0].startswith("workflow.json: file is too large")
    assert errors_of(RUNNABLE, max_bytes=100)[0].startswith("workflow.json: file is too large")


def test_invalid_json_is_reported_with_its_position() -> None:
    found = errors_of('{"workflowName": "x",\n  "steps": [,]}')
    assert found[0].startswith("workflow.json:2:")
    assert "invalid YAML" in found[0]


def test_duplicate_keys_are_refused() -> None:
    found = errors_of('{"workflowName": "x", "workflowName": "y", "steps": []}')
    assert found[0].startswith("workflow.json:1:23: duplicate key 'workflowName'")


def test_data_is_not_modified_by_loading() -> None:
    data = json.loads(LOOP)
    original = copy.deepcopy(data)
    load_machine(json.dumps(data))
    assert data == original


@pytest.mark.parametrize(
    ("remove", "anchor", "fragment"),
    [
        # a missing key is reported where its mapping starts
        ("name", "{\n      ", "missing required key 'name' in step 1"),
        (
            "integrationDetails",
            "{\n      ",
            "missing required key 'integrationDetails' in step 'a'",
        ),
        (
            "type",
            '"integrationDetails"',
            "missing required key 'type' in 'integrationDetails' in step 'a'",
        ),
    ],
)
def test_missing_step_keys(remove: str, anchor: str, fragment: str) -> None:
    data = json.loads(doc(step("a")))
    owner = data["steps"][0]
    del (owner["integrationDetails"] if remove == "type" else owner)[remove]
    text = json.dumps(data, indent=2)
    found = errors_of(text)
    assert any(m.startswith(at(text, anchor)) and fragment in m for m in found), found
