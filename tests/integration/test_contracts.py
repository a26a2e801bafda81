"""Typed step contracts in workflow.yaml: `with:` checked against `input` before the step starts,
outputs against `outputs` before anything downstream sees them, both able to $ref shared
`definitions`."""

from __future__ import annotations

from tests.harness import Server

SPEC = """\
name: contracts
params:
  type: object
  properties:
    n: {type: integer, default: 2}
definitions:
  order:
    type: object
    properties:
      id: {type: string, pattern: "^o-"}
      count: {type: integer, minimum: 1}
    required: [id, count]
    additionalProperties: false
  priced:
    type: object
    properties: {total: {type: number}}
    required: [total]
steps:
  price:
    with:
      id: "${{ params.id }}"
      count: ${{ params.n }}
    input: {$ref: "#/definitions/order"}
    outputs: {$ref: "#/definitions/priced"}
    run: |
      python3 -c 'import json,os; o=json.load(open(os.environ["LOCKSTEP_INPUT"])); print(json.dumps({"total": o["count"] * 2.5}))' > "$LOCKSTEP_OUTPUTS"
  report:
    needs: [price]
    with: {total: "${{ steps.price.outputs.total }}", note: "total is ${{ steps.price.outputs.total }}"}
    run: cat "$LOCKSTEP_INPUT"; cp "$LOCKSTEP_INPUT" "$LOCKSTEP_OUTPUTS"
"""


def _spec(id_default: str) -> str:
    return SPEC.replace(
        "    n: {type: integer, default: 2}",
        f"    n: {{type: integer, default: 2}}\n    id: {{type: string, default: '{id_default}'}}",
    )


def test_inputs_and_outputs_follow_their_contracts(server: Server) -> None:
    run = server.run_and_wait(_spec("o-1"))
    assert run["status"] == "succeeded", run["steps"]
    assert run["steps"]["price"]["outputs"] == {"total": 5.0}
    # a whole ${{ }} keeps its JSON type; a template inside text is text
    assert run["steps"]["report"]["outputs"] == {"total": 5.0, "note": "total is 5.0"}


def test_a_bad_input_stops_the_step_before_it_runs_and_names_the_pointer(server: Server) -> None:
    run = server.run_and_wait(_spec("x-1"), {"n": 0})
    price = run["steps"]["price"]
    assert price["status"] == "failed"
    assert price["error"].startswith("step 'price' input /count: 0 is less than the minimum of 1")
    assert price["history"][0]["exit_code"] is None  # nothing was started
    assert run["steps"]["report"]["status"] == "upstream_failed"


def test_a_bad_output_is_caught_before_downstream_sees_it(server: Server) -> None:
    spec = _spec("o-1").replace('print(json.dumps({"total": o["count"] * 2.5}))', "print(1)")
    spec = spec.replace('> "$LOCKSTEP_OUTPUTS"', '; echo "total=oops" > "$LOCKSTEP_OUTPUTS"')
    run = server.run_and_wait(spec)
    # a key=value line is typed by the step's schema (through its $ref); 'oops' is no number
    assert run["steps"]["price"]["error"] == (
        "$LOCKSTEP_OUTPUTS line 1: output 'total' must be a number (its type in the step's "
        "outputs schema)"
    )
    assert run["steps"]["report"]["status"] == "upstream_failed"


def test_unknown_definitions_are_reported_with_positions(server: Server) -> None:
    spec = _spec("o-1").replace('{$ref: "#/definitions/order"}', '{$ref: "#/definitions/ordr"}')
    resp = server.http.post("/runs", json={"spec": spec})
    assert resp.status_code == 422
    assert "workflow.yaml:24:13:" in resp.json()["detail"]
    assert "does not name a definition" in resp.json()["detail"]


RUN_OUTPUTS = """\
name: typed-run
outputs_schema:
  type: object
  properties: {total: {type: number}, label: {type: string, maxLength: 3}}
  required: [total]
outputs:
  total: ${{ steps.a.outputs.total }}
  label: ${{ steps.a.outputs.label }}
steps:
  a:
    run: echo 'total=2.5' >> "$LOCKSTEP_OUTPUTS"; echo "label=LABEL" >> "$LOCKSTEP_OUTPUTS"
    outputs: {type: object, properties: {total: {type: number}, label: {type: string}}}
"""


def test_run_outputs_are_typed_by_their_schema(server: Server) -> None:
    ok = server.run_and_wait(RUN_OUTPUTS.replace("label=LABEL", "label=abc"))
    assert ok["status"] == "succeeded" and ok["outputs"] == {"total": 2.5, "label": "abc"}
    bad = server.run_and_wait(RUN_OUTPUTS)
    assert bad["status"] == "failed" and bad["outputs"] is None
    assert bad["error"] == "the run's output /label: 'LABEL' is too long"
