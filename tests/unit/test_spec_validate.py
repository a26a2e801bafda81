from __future__ import annotations

import sys
import textwrap

import pytest

from lockstep.errors import SpecError
from lockstep.spec.load import load_spec
from lockstep.spec.validate import validate_spec

FULL = """\
name: orbit-sim
description: a diamond with everything
params:
  type: object
  properties:
    duration_s: {type: integer, minimum: 1, default: 600}
    cases: {type: array, items: {type: string}, default: [leo, geo]}
    deploy: {type: boolean, default: false}
env:
  LABEL: run-${{ run.id }}
defaults:
  timeout: 10m
  retry: {attempts: 3, backoff: 2s}
  env: {MODE: "${{ params.duration_s > 60 ? 'long' : 'short' }}"}
steps:
  prepare:
    run: python prepare.py --duration ${{ params.duration_s }}
    outputs:
      type: object
      properties: {seed: {type: integer}, ok: {type: boolean}}
  left:
    needs: [prepare]
    run: [sim, --seed, "${{ steps.prepare.outputs.seed }}", --case, "${{ params.cases[0] }}"]
    retry: {attempts: 2, backoff: 1s, max_backoff: 10s, on_exit_codes: [75]}
  right:
    needs: [prepare]
    if: ${{ steps.prepare.outputs.ok }}
    env:
      SEED: ${{ steps.prepare.outputs.seed }}
    run: |
      cat <<EOF
      seed ${{ steps.prepare.outputs.seed }} for "${{ env.LABEL }}"
      EOF
    timeout: 90
    continue_on_error: true
  report:
    needs: [left, right]
    if: params.deploy
    run: echo "${{ steps.left.status }}" "${{ steps.right.status == 'succeeded' }}"
    outputs: {type: object, additionalProperties: true}
finally:
  notify:
    run: echo "run ${{ run.id }} at ${{ run.sha }} ended ${{ run.status }}"
  cleanup:
    needs: [notify]
    if: true
    run: echo ${{ steps.notify.status }} ${{ steps.report.outputs.anything }}
outputs:
  seed: ${{ steps.prepare.outputs.seed }}
  status: ${{ run.status }}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(textwrap.dedent(text), "w.yaml")
    return [str(d) for d in caught.value.diagnostics]


def messages(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(textwrap.dedent(text), "w.yaml")
    return [d.message for d in caught.value.diagnostics]


def test_full_example_loads_cleanly() -> None:
    loaded = load_spec(FULL, "w.yaml")
    spec = loaded.spec
    assert list(spec.steps) == ["prepare", "left", "right", "report"]
    assert list(spec.finally_) == ["notify", "cleanup"]
    assert spec.steps["right"].timeout == 90.0
    assert spec.steps["report"].if_ == "params.deploy"
    assert spec.finally_["cleanup"].if_ is True
    assert validate_spec(spec) == []


def test_every_problem_is_reported_at_once_sorted_by_line() -> None:
    found = problems(
        """\
        name: demo
        steps:
          build:
            neds: [test]
            run: echo ${{ params.nope }}
          test:
            needs: [biuld, deploy]
            run: make test
          deploy:
            needs: [test]
            imag: x
        """
    )
    assert found == [
        "w.yaml:4:5: unknown key 'neds'; did you mean 'needs'?",
        "w.yaml:5:5: expression 'params.nope': this workflow declares no params; "
        "add a 'params' schema",
        "w.yaml:7:13: step 'test' needs unknown step 'biuld'; did you mean 'build'?",
        "w.yaml:7:20: cycle: test -> deploy -> test",
        "w.yaml:9:3: missing required key 'run' in step 'deploy' (or 'http', 'uses: noop', 'approval', 'wait' or 'workflow')",
        "w.yaml:11:5: unknown key 'imag'; did you mean 'image'?",
    ]
    with pytest.raises(SpecError) as caught:
        load_spec(FULL.replace("name: orbit-sim", "name: Orbit").replace("neds", "x"), "w.yaml")
    assert str(caught.value) == (
        "w.yaml:1:1: invalid workflow name 'Orbit'; use lowercase letters, digits and '-', "
        "starting with a letter or digit"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  a:\n    run: x\n    iamge: y\n", "unknown key 'iamge'; did you mean 'image'?"),
        (
            "  a:\n    run: x\n    retry: {attemps: 2}\n",
            "unknown key 'attemps'; did you mean 'attempts'?",
        ),
        ("  a:\n    run: x\n    needs: b\n", "'needs' must be a list of step ids, got a string"),
        (
            "  a:\n    run: 5\n",
            "'run' must be a string (a bash script) or a list of strings (an argv), got an integer",
        ),
        ("  a:\n    run: [x, 1]\n", "item 1 of 'run' must be a string, got an integer"),
        (
            "  a:\n    run: x\n    env: {K: [1]}\n",
            "env value 'K' must be a string, a number or a boolean, got a list",
        ),
        (
            "  a:\n    run: x\n    env: {1K: v}\n",
            "invalid env name '1K'; use letters, digits and '_', not starting with a digit",
        ),
        (
            "  a b:\n    run: x\n",
            "invalid step id 'a b'; use letters, digits, '_' and '-', starting with a letter or "
            "'_'",
        ),
        (
            "  a:\n    run: x\n    timeout: soon\n",
            "invalid 'timeout': 'soon' is not a duration; write e.g. '30s', '10m', '1h30m'",
        ),
        ("  a:\n    run: x\n    retry: {attempts: 0}\n", "'attempts' must be >= 1, got 0"),
        (
            "  a:\n    run: x\n    if: [x]\n",
            "'if' must be an expression string or true/false, got a list",
        ),
        (
            "  a:\n    description: x\n",
            "missing required key 'run' in step 'a' (or 'http', 'uses: noop', 'approval', 'wait' or 'workflow')",
        ),
        (
            "  a:\n    run: x\n    continue_on_error: maybe\n",
            "'continue_on_error' must be a boolean, got a string",
        ),
        (
            "  a:\n    run: x\n    outputs: [a]\n",
            "'outputs' must be a mapping (a JSON Schema), got a list",
        ),
    ],
)
def test_model_errors_read_like_advice(body: str, message: str) -> None:
    assert messages("name: demo\nsteps:\n" + body) == [message]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("steps: {a: {run: x}}\n", "missing required key 'name' at the top level"),
        ("name: demo\nsteps: {}\n", "'steps' must contain at least one step"),
        ("name: demo\nsteps: [a]\n", "'steps' must be a mapping of step id to step, got a list"),
        ("name: demo\nnmae: x\nsteps: {a: {run: x}}\n", "unknown key 'nmae'; did you mean 'name'?"),
        (
            "name: demo\nsteps: {a: {run: x}}\noutputs: 1\n",
            "'outputs' must be a mapping of name: value, got an integer",
        ),
        (
            "name: demo\nsteps: {a: {run: x}}\ndefaults: {retry: {backof: 1}}\n",
            "unknown key 'backof'; did you mean 'backoff'?",
        ),
    ],
)
def test_top_level_model_errors(text: str, message: str) -> None:
    assert messages(text) == [message]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("a: {run: x, needs: [a]}", "step 'a' needs itself; remove it from 'needs'"),
        (
            "a: {run: x, needs: [bb]}\n  b: {run: x}",
            "step 'a' needs unknown step 'bb'; did you mean 'b'?",
        ),
        ("a: {run: x, needs: [zzz]}", "step 'a' needs unknown step 'zzz'"),
        ("a: {run: x, needs: [b]}\n  b: {run: x, needs: [a]}", "cycle: a -> b -> a"),
        (
            "a: {run: x, needs: [c]}\n  b: {run: x, needs: [a]}\n  c: {run: x, needs: [b]}",
            "cycle: a -> c -> b -> a",
        ),
    ],
)
def test_graph_problems(steps: str, message: str) -> None:
    assert messages(f"name: demo\nsteps:\n  {steps}\n") == [message]


def test_each_cycle_is_reported_once() -> None:
    found = messages(
        """\
        name: demo
        steps:
          a: {run: x, needs: [b]}
          b: {run: x, needs: [c, a]}
          c: {run: x, needs: [a]}
          d: {run: x, needs: [e]}
          e: {run: x, needs: [d]}
          f: {run: x, needs: [a, d]}
        """
    )
    assert found == ["cycle: a -> b -> a", "cycle: d -> e -> d"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "steps: {a: {run: x}}\nfinally: {a: {run: y}}",
            "step id 'a' is used in both 'steps' and 'finally'; rename one",
        ),
        (
            "steps: {a: {run: x}}\nfinally: {z: {run: y, needs: [a]}}",
            "finally step 'z' cannot need main step 'a'; finally steps run after all main steps "
            "anyway",
        ),
        (
            "steps: {a: {run: x, needs: [z]}}\nfinally: {z: {run: y}}",
            "step 'a' cannot need finally step 'z'",
        ),
        (
            "steps: {a: {run: x}}\nfinally: {y: {run: x, needs: [z]}, z: {run: x, needs: [y]}}",
            "cycle: y -> z -> y",
        ),
    ],
)
def test_finally_rules(text: str, message: str) -> None:
    assert messages("name: demo\n" + text + "\n") == [message]


PARAMS = """\
name: demo
params:
  type: object
  properties:
    count: {type: integer, default: 1}
    deploy: {type: boolean}
    label: {type: string}
steps:
  prep:
    run: echo
    outputs:
      type: object
      properties: {seed: {type: integer}, ready: {type: boolean}, hello-param: {type: string}}
  free:
    run: echo
  main:
    needs: [prep]
"""


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "run: echo ${{ params.cuont }}",
            "expression 'params.cuont': unknown param 'cuont'; did you mean 'count'?",
        ),
        (
            "run: echo ${{ params.zzz }}",
            "expression 'params.zzz': unknown param 'zzz'; declared: count, deploy, label",
        ),
        (
            "run: echo ${{ steps.perp.outputs.seed }}",
            "expression 'steps.perp.outputs.seed': unknown step 'perp'; did you mean 'prep'?",
        ),
        (
            "run: echo ${{ steps.prep.outputs.sed }}",
            "expression 'steps.prep.outputs.sed': step 'prep' has no output 'sed'; did you mean "
            "'seed'?",
        ),
        (
            "run: echo ${{ steps.prep.outputs.hello-param }}",
            "expression 'steps.prep.outputs.hello-param': '-' is minus in CEL; read the output "
            "'hello-param' as steps.prep.outputs['hello-param']",
        ),
        (
            "run: echo ${{ size(steps.prep.outputs.a-b-2) }}",
            "expression 'size(steps.prep.outputs.a-b-2)': '-' is minus in CEL; read the output "
            "'a-b-2' as size(steps.prep.outputs['a-b-2'])",
        ),
        (
            "run: echo ${{ steps.prep.outputs['hello-parm'] }}",
            "expression 'steps.prep.outputs['hello-parm']': step 'prep' has no output "
            "'hello-parm'; did you mean 'hello-param'?",
        ),
        (
            "run: echo ${{ steps.prep.output.seed }}",
            "expression 'steps.prep.output.seed': unknown field 'steps.prep.output'; use "
            "outputs.<name> or status",
        ),
        (
            "run: echo ${{ steps.free.status }}",
            "expression 'steps.free.status': step 'main' uses steps.free but does not need it; "
            "add 'free' to needs",
        ),
        (
            "run: echo ${{ steps.main.status }}",
            "expression 'steps.main.status': step 'main' cannot use its own outputs or status",
        ),
        (
            "run: echo ${{ run.status }}",
            "expression 'run.status': run.status is only available in finally steps and workflow "
            "outputs",
        ),
        (
            "run: echo ${{ run.branch }}",
            "expression 'run.branch': unknown field 'run.branch'; use run.id, run.sha or "
            "run.status",
        ),
        (
            "run: echo ${{ item }}",
            "expression 'item': 'item' is only available in a step with for_each",
        ),
        (
            "run: echo ${{ secrets.token }}",
            "expression 'secrets.token': a secret can only be a whole env value, e.g. TOKEN: ${{ secrets.API_TOKEN }}",
        ),
        (
            "run: echo ${{ foo.bar }}",
            "expression 'foo.bar': unknown name 'foo'; expressions start with params, steps, run "
            "or env",
        ),
        (
            "run: echo ${{ params.count + }}",
            "invalid expression 'params.count +': unexpected end of expression at column 15",
        ),
        ("run: echo ${{ }}", "empty expression '${{ }}'; write an expression inside"),
        ("run: echo ${{ params.count", "unterminated '${{' at offset 5; close it with '}}'"),
        (
            "run: echo '${{ params.label }}'",
            "in 'run' of step 'main': expression inside single quotes would not be expanded; use "
            "double quotes",
        ),
        (
            "run: [echo, '${{ params.nope }}']",
            "expression 'params.nope': unknown param 'nope'; declared: count, deploy, label",
        ),
        (
            "run: echo\n    env: {X: '${{ steps.free.status }}'}",
            "expression 'steps.free.status': step 'main' uses steps.free but does not need it; "
            "add 'free' to needs",
        ),
    ],
)
def test_expression_problems(line: str, message: str) -> None:
    assert messages(PARAMS + "    " + line + "\n") == [message]


@pytest.mark.parametrize(
    "condition",
    [
        "true",
        "${{ false }}",
        "params.count > 1",
        "${{ params.count == 1 && params.deploy }}",
        "'!params.deploy'",
        "params.label in ['a', 'b']",
        "(params.count >= 2)",
        "params.label.startsWith('x')",
        "params.label.matches('^a+$')",
        "has(params.label)",
        "params.deploy",
        "${{ params.deploy }}",
        "steps.prep.outputs.ready",
        "steps.prep.outputs['hello-param'] == 'x'",
        "params.count-params.count == 0",
        "steps.prep.status == 'succeeded'",
    ],
)
def test_boolean_conditions_are_accepted(condition: str) -> None:
    text = PARAMS + f"    run: echo\n    if: {condition}\n"
    assert load_spec(text).spec.steps["main"].if_ is not None


@pytest.mark.parametrize(
    "condition",
    ["params.count", "params.label", "${{ params.count + 1 }}", "'yes'", "size(params.label)"],
)
def test_non_boolean_conditions_are_rejected(condition: str) -> None:
    (message,) = messages(PARAMS + f'    run: echo\n    if: "{condition}"\n')
    assert message.startswith(
        "'if' must be a boolean expression, e.g. ${{ params.deploy == true }}"
    )


def test_if_must_be_a_single_expression() -> None:
    assert messages(PARAMS + "    run: echo\n    if: ${{ a }} and ${{ b }}\n") == [
        "'if' must be a single expression, e.g. ${{ params.deploy == true }}"
    ]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        (
            "env: {A: '${{ steps.prep.status }}'}",
            "expression 'steps.prep.status': steps cannot be used in workflow env",
        ),
        ("env: {A: '${{ env.B }}'}", "expression 'env.B': 'env' cannot be used in workflow env"),
        (
            "defaults: {env: {A: '${{ steps.prep.status }}'}}",
            "expression 'steps.prep.status': steps cannot be used in defaults env",
        ),
        (
            "outputs: {o: '${{ steps.prep.outputs.nope }}'}",
            "expression 'steps.prep.outputs.nope': step 'prep' has no output 'nope'; declared: "
            "seed, ready, hello-param",
        ),
        (
            "outputs: {o: '${{ steps.fin.status }}'}\nfinally: {fin: {run: x}}",
            "expression 'steps.fin.status': workflow outputs can only use main steps, not "
            "finally step 'fin'",
        ),
    ],
)
def test_workflow_level_expressions(where: str, message: str) -> None:
    assert messages(PARAMS + "    run: echo\n" + where + "\n") == [message]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            "{type: strin}",
            "'params' is not a valid JSON Schema: 'strin' is not valid under any of the given "
            "schemas",
        ),
        ("{type: array}", "'params' must be a JSON Schema with 'type: object'"),
        ("{properties: {a: {type: string}}}", "'params' must be a JSON Schema with 'type: object'"),
        (
            "{type: object, properties: {n: {type: integer, default: x}}}",
            "default of param 'n' is invalid: 'x' is not of type 'integer'",
        ),
        (
            "{type: object, properties: {n: {minimum: 1, default: 0}}}",
            "default of param 'n' is invalid: 0 is less than the minimum of 1",
        ),
    ],
)
def test_params_schema_problems(params: str, message: str) -> None:
    assert messages(f"name: demo\nparams: {params}\nsteps: {{a: {{run: x}}}}\n") == [message]


def test_outputs_schema_problems() -> None:
    found = problems(
        """\
        name: demo
        steps:
          a:
            run: x
            outputs: {type: object, properties: {n: {type: 5}}}
          b:
            run: x
            outputs: {type: string}
        """
    )
    assert found == [
        "w.yaml:5:46: 'outputs' is not a valid JSON Schema: 5 is not valid under any of the "
        "given schemas",
        "w.yaml:8:15: 'outputs' must be a JSON Schema with 'type: object'",
    ]


def test_semantic_checks_run_even_when_models_fail() -> None:
    found = messages(
        """\
        name: demo
        steps:
          a:
            run: echo ${{ params.x }}
            retry: {attempts: many}
          b:
            run: x
            needs: [c]
        """
    )
    assert found == [
        "expression 'params.x': this workflow declares no params; add a 'params' schema",
        "'attempts' must be an integer, got a string",
        "step 'b' needs unknown step 'c'",
    ]


def test_steps_inside_a_cycle_still_know_their_ancestors() -> None:
    found = messages(
        """\
        name: demo
        steps:
          root: {run: x}
          a: {run: x, needs: [b]}
          b: {run: x, needs: [c, root]}
          c: {run: x, needs: [b]}
          user:
            needs: [a]
            run: echo ${{ steps.c.status }} ${{ steps.root.status }}
        """
    )
    assert found == ["cycle: b -> c -> b"]


def _chain(n: int) -> str:
    lines = ["name: big", "steps:", "  s0: {run: echo}"]
    for i in range(1, n):
        expr = f"${{{{ steps.s{i - 1}.outputs.x }}}} ${{{{ steps.s0.status }}}}"
        lines.append(f'  s{i}: {{needs: [s{i - 1}], run: "echo {expr}"}}')
    return "\n".join(lines) + "\n"


def _calls_to_load(text: str) -> int:
    """Function calls (Python and C) that loading ``text`` makes: work done, not time taken."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(count)
    try:
        load_spec(text)
    finally:
        sys.setprofile(None)
    return calls


def test_large_files_validate_in_linear_time() -> None:
    assert load_spec(_chain(1500)).spec.steps["s1499"].needs == ["s1498"]
    small, large = _calls_to_load(_chain(200)), _calls_to_load(_chain(800))
    # four times the steps: about four times the work (a quadratic pass would be sixteen)
    assert large < 5 * small, (small, large)


def test_a_hyphenated_step_read_with_a_dot_is_told_how_to_write_it() -> None:
    text = (
        "name: h\nsteps:\n  go-live:\n    run: echo x=1 >> $LOCKSTEP_OUTPUTS\n"
        "  b:\n    needs: [go-live]\n    run: echo ${{ steps.go-live.outputs.x }}\n"
        "  c:\n    needs: [go-live]\n    run: echo ${{ steps['go-live'].outputs.x }}\n"
    )
    said = messages(text)
    assert any("write steps['go-live'] for a step id with '-'" in m for m in said), said
    assert all("steps['go-live'].outputs" not in m for m in said)  # that form is fine
