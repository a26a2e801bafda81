"""The step kinds a user writes are declared once (spec.step_kinds) and each has its executor
(executors.registry); the YAML ``http:`` step, added through that seam alone, is checked like
every other step before anything runs."""

from __future__ import annotations

import textwrap

import pytest

from lockstep.engine.plan import compile_plan
from lockstep.engine.types import ContainerSpec, StepTask, Workspace
from lockstep.errors import ExecutionError, SpecError
from lockstep.executors.container import ContainerExecutor
from lockstep.executors.http import HttpExecutor, NoopExecutor
from lockstep.executors.local import ProcessExecutor
from lockstep.executors.registry import EXECUTORS, executor_for
from lockstep.spec.load import load_spec
from lockstep.spec.machine_validate import CONFIG_KEYS
from lockstep.spec.machine_validate import EXECUTORS as DIALECT
from lockstep.spec.models import json_schema
from lockstep.spec.step_kinds import KINDS


def test_every_declared_kind_has_an_executor_and_every_executor_a_kind() -> None:
    assert set(EXECUTORS) == set(KINDS)


def test_the_json_dialect_learns_its_executors_and_their_config_keys_from_the_kinds() -> None:
    assert set(DIALECT) == {"noop", "shell", "http"}
    assert CONFIG_KEYS["http"] == KINDS["http"].config_keys


def _task(**kw: object) -> StepTask:
    fields: dict[str, object] = {
        "run_id": "r", "step_id": "s", "attempt": 1, "argv": ["true"], "env": {},
        "workspace": Workspace(), "timeout_s": None, "outputs_schema": None, "log_key": "r/s/1",
    }  # fmt: skip
    fields.update(kw)
    return StepTask(**fields)  # type: ignore[arg-type]


def test_the_worker_picks_the_executor_by_the_task_alone() -> None:
    assert isinstance(executor_for(_task()), ProcessExecutor)
    assert isinstance(executor_for(_task(executor="http")), HttpExecutor)
    assert isinstance(executor_for(_task(executor="noop")), NoopExecutor)
    # a container step is a "shell" task with an image in plans stored before the seam and
    # after it (its cache key names it so): it still runs in its container
    boxed = _task(container=ContainerSpec(image="busybox"))
    assert isinstance(executor_for(boxed), ContainerExecutor)
    with pytest.raises(ExecutionError, match=r"needs the 'k8s' executor.*upgrade the worker"):
        executor_for(_task(executor="k8s"))


SPEC = """\
name: ping
steps:
  ping:
    http: {url: "https://example.org/x", method: put, headers: {X-Token: abc}}
    with: {n: 1}
    timeout: 5s
    outputs: {type: object, properties: {total: {type: integer}}}
  boxed: {run: echo hi, image: busybox}
  report:
    needs: [ping]
    run: echo ${{ steps.ping.outputs.total }}
"""


def test_an_http_step_compiles_to_the_http_executor_with_its_call_as_config() -> None:
    plan = compile_plan(
        load_spec(SPEC, "workflow.yaml"), run_id="r1", project="default", params={},
        workspace=Workspace(), heartbeat_timeout_s=30,
    )  # fmt: skip
    steps = {s.id: s for s in plan.steps}
    ping = steps["ping"]
    assert (ping.executor, ping.command, ping.timeout_s) == ("http", [], 5.0)
    assert ping.config == {
        "url": "https://example.org/x", "method": "PUT", "headers": {"X-Token": "abc"},
    }  # fmt: skip
    assert ping.inputs == {"n": 1}
    # the wire name of a container step is unchanged, so cache keys and stored plans hold
    assert (steps["boxed"].executor, steps["boxed"].container is not None) == ("shell", True)
    assert steps["report"].executor == "shell"


def _errors(body: str) -> list[str]:
    text = "name: demo\nsteps:\n" + textwrap.indent(textwrap.dedent(body), "  ")
    with pytest.raises(SpecError) as caught:
        load_spec(text, "w.yaml")
    return [str(d) for d in caught.value.diagnostics]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "a:\n  http: {url: 'https://x.org/a', metod: POST}\n",
            "w.yaml:4:36: unknown key 'metod'; did you mean 'method'?",
        ),
        (
            "a:\n  http: {url: 'ftp://x.org'}\n",
            "w.yaml:4:12: invalid 'url': must be an http:// or https:// URL with a host, "
            "got 'ftp://x.org'",
        ),
        (
            "a:\n  http: {url: 'https://x.org/${{ params.id }}'}\n",
            "w.yaml:4:12: invalid 'url': expressions are not evaluated here; pass run values "
            "in 'with:'",
        ),
        (
            "a:\n  run: 'true'\n  http: {url: 'https://x.org'}\n",
            "w.yaml:5:5: step 'a' has both 'run' and 'http'; keep one",
        ),
        (
            "a:\n  http: {url: 'https://x.org'}\n  uses: noop\n",
            "w.yaml:5:5: step 'a' has both 'http' and 'uses'; keep one",
        ),
        (
            "a:\n  http: {url: 'https://x.org'}\n  image: busybox\n",
            "w.yaml:5:5: 'image' of step 'a' only applies to a 'run' step (an http step has no "
            "workspace); remove it",
        ),
        (
            "a:\n  http: {url: 'https://x.org', method: TRACE}\n",
            "w.yaml:4:34: 'method': input should be 'POST', 'GET', 'PUT', 'PATCH' or 'DELETE'",
        ),
        (
            "a:\n  http: {url: 'https://x.org', headers: {'a b': x}}\n",
            "w.yaml:4:34: invalid 'headers': invalid header name 'a b'; use letters, digits "
            "and -!#$%&'*+.^_`|~",
        ),
        (
            'a:\n  http: {url: "https://x.org", headers: {X: "a\\nb"}}\n',
            "w.yaml:4:44: invalid 'X': a header value must not contain line breaks",
        ),
        (
            "a:\n  http: https://x.org\n",
            "w.yaml:4:5: 'http' must be a mapping such as {url: 'https://example.org/x', "
            "method: POST}, got a string",
        ),
        (
            "a:\n  description: x\n",
            "w.yaml:3:3: missing required key 'run' in step 'a' (or 'http', 'uses: noop', 'approval', 'wait' or 'workflow')",
        ),
    ],
)
def test_http_step_mistakes_are_one_clear_line_at_their_position(body: str, message: str) -> None:
    assert _errors(body) == [message]


def test_the_published_schema_offers_http_next_to_run_and_image() -> None:
    step = json_schema()["$defs"]["StepSpec"]["properties"]
    assert {"run", "image", "http", "uses"} <= set(step)
    call = json_schema()["$defs"]["HttpCall"]
    assert call["required"] == ["url"] and call["additionalProperties"] is False
