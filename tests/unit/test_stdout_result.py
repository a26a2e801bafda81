"""`result: json|text`: what a step prints on stdout becomes its output `result`, through the
attempt lifecycle every workspace executor shares (a real process, real stores)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from lockstep.engine.caching import cache_key
from lockstep.engine.plan import compile_plan
from lockstep.engine.types import Workspace
from lockstep.errors import SpecError
from lockstep.executors.stdout_result import StdoutCapture
from lockstep.outputs_by_reference import internalize
from lockstep.spec.load import load_spec
from tests.unit.test_shell_executor import Env


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


@pytest.mark.parametrize(
    ("script", "mode", "result"),
    [
        (
            "echo 'working' >&2; echo '{\"n\": 3, \"xs\": [1.5, null]}'",
            "json",
            {"n": 3, "xs": [1.5, None]},
        ),
        ("echo '[1, 2]'", "json", [1, 2]),
        ("echo '\"just a string\"'", "json", "just a string"),
        ("printf '  42  \\n'", "json", 42),
        ("printf 'hello\\nworld\\n\\n'", "text", "hello\nworld\n"),  # one newline removed
        ("printf 'no newline'", "text", "no newline"),
        ("printf 'crlf\\r\\n'", "text", "crlf"),
        ("true", "text", ""),
        # control characters are data: kept as they are, escaped when stored as JSON
        ("printf '\\033[31mred\\033]0;title\\007\\n'", "text", "\x1b[31mred\x1b]0;title\x07"),
    ],
)
async def test_stdout_becomes_the_result(env: Env, script: str, mode: str, result: object) -> None:
    done = await env.run(env.task(script, result=mode))
    assert done.ok, done.error
    assert done.outputs == {"result": result}


async def test_the_log_still_shows_stdout(env: Env) -> None:
    done = await env.run(env.task("echo '{\"n\": 1}'; echo warn >&2", result="json"))
    assert done.ok and done.outputs == {"result": {"n": 1}}
    assert ("out", '{"n": 1}') in env.log() and ("err", "warn") in env.log()


async def test_result_joins_outputs_written_to_the_file(env: Env) -> None:
    script = 'echo "seed=7" >> "$LOCKSTEP_OUTPUTS"; echo "done"'
    schema = {"type": "object", "properties": {"seed": {"type": "integer"}}}
    done = await env.run(env.task(script, result="text", outputs_schema=schema))
    assert done.ok, done.error
    assert done.outputs == {"seed": 7, "result": "done"}


async def test_without_result_stdout_is_only_logged(env: Env) -> None:
    done = await env.run(env.task("echo '{\"n\": 1}'"))
    assert done.ok and done.outputs == {}


@pytest.mark.parametrize(
    ("script", "mode", "schema", "error"),
    [
        (
            "echo 'not json {'",
            "json",
            None,
            "step 'prepare' declares 'result: json' and its stdout is not JSON (line 1 column 1: "
            "Expecting value); print one JSON value, and log to stderr",
        ),
        (
            "echo '{\"a\": 1}'; echo 'trailing words'",
            "json",
            None,
            "step 'prepare' declares 'result: json' and its stdout is not JSON (line 2 column 1: "
            "Extra data); print one JSON value, and log to stderr",
        ),
        (
            "echo '[NaN]'",
            "json",
            None,
            "step 'prepare' declares 'result: json' and its stdout is not JSON (NaN, Infinity, "
            "a number out of range, or nested too deeply)",
        ),
        (
            "echo hi >&2",
            "json",
            None,
            "step 'prepare' declares 'result: json' and printed nothing on stdout; print one "
            "JSON value",
        ),
        (
            "printf '\\377\\376'",
            "text",
            None,
            "step 'prepare' declares 'result: text' and its stdout is not UTF-8 (byte 0); print "
            "text only",
        ),
        (
            "head -c 1048577 /dev/zero | tr '\\0' a",
            "text",
            None,
            "step 'prepare' declares 'result: text' and printed more than 1 MiB on stdout; "
            "print less, or write large results to a file and declare it as an artifact",
        ),
        (
            'echo \'{"n": "three"}\'',
            "json",
            {
                "type": "object",
                "properties": {
                    "result": {"type": "object", "properties": {"n": {"type": "integer"}}}
                },
            },
            "step 'prepare' output /result/n: must be of type integer",
        ),
        (
            'echo "result=mine" >> "$LOCKSTEP_OUTPUTS"; echo theirs',
            "text",
            None,
            "step 'prepare' declares 'result:' and also wrote an output 'result' to "
            "$LOCKSTEP_OUTPUTS; rename that output",
        ),
        (
            # a result cannot forge an output stored by reference
            'echo \'{"__lockstep_ref__": {"key": "x"}}\'',
            "json",
            None,
            "reserved for lockstep's outputs stored by reference",
        ),
    ],
)
async def test_a_bad_result_fails_the_step_in_one_line(
    env: Env, script: str, mode: str, schema: dict[str, object] | None, error: str
) -> None:
    done = await env.run(env.task(script, result=mode, outputs_schema=schema))
    assert not done.ok
    assert done.error is not None and "\n" not in done.error
    assert error in done.error, done.error
    assert done.outputs == {}
    assert ("sys", done.error) in env.log()


async def test_exactly_the_limit_is_accepted(env: Env) -> None:
    done = await env.run(env.task("head -c 1048576 /dev/zero | tr '\\0' a", result="text"))
    assert done.ok, done.error
    # a big result is stored by reference like any other big output, and reads back whole
    assert internalize(done.outputs, env.blobs, "default") == {"result": "a" * 1048576}


def test_the_capture_keeps_at_most_its_limit_plus_one_byte() -> None:
    capture = StdoutCapture(max_bytes=10)
    for _ in range(1000):
        capture.feed(b"0123456789abcdef")
    assert capture.too_big and capture.data() == b"0123456789a"
    small = StdoutCapture(max_bytes=10)
    small.feed(b"0123456789")
    assert not small.too_big and small.data() == b"0123456789"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "http: {url: 'https://example.org/x'}\n    result: json",
            "'result' of step 'a' only applies to a 'run' step (what its command prints on "
            "stdout); remove it",
        ),
        ("wait: 10s\n    result: text", "'result' of step 'a' only applies to a 'run' step"),
        ("run: echo\n    result: yaml", "result"),
    ],
)
def test_result_only_on_run_steps(step: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(f"name: x\nsteps:\n  a:\n    {step}\n")
    assert any(message in str(d) for d in caught.value.diagnostics), caught.value.diagnostics


def test_the_result_is_a_declared_output_for_expressions() -> None:
    text = """\
name: x
steps:
  a:
    run: echo 1
    result: json
    outputs: {type: object, properties: {other: {type: string}}}
  b:
    needs: [a]
    run: echo "${{ steps.a.outputs.result }}"
"""
    assert load_spec(text).spec.steps["a"].result == "json"


def test_a_schema_that_forbids_the_result_is_refused_at_validation() -> None:
    text = """\
name: x
steps:
  a:
    run: echo 1
    result: json
    outputs: {type: object, properties: {n: {}}, additionalProperties: false}
"""
    with pytest.raises(SpecError) as caught:
        load_spec(text, "workflow.yaml")
    assert [str(d) for d in caught.value.diagnostics] == [
        "workflow.yaml:6:5: step 'a' has 'result: json' but its 'outputs' schema allows no "
        "output 'result'; declare it under properties"
    ]


def test_the_result_mode_is_part_of_a_steps_cache_key() -> None:
    spec = load_spec("name: x\nsteps:\n  a: {run: echo 1, cache: true}\n")
    plan = compile_plan(
        spec, run_id="r1", project="p", params={}, workspace=Workspace(), heartbeat_timeout_s=5
    )
    step = plan.steps[0]
    keys = {
        cache_key(plan, replace(step, result=mode), step.command, {}, None, [], None)
        for mode in (None, "json", "text")
    }
    assert len(keys) == 3
