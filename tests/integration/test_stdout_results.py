"""Step results from stdout through the whole engine: a `result: json` read by a downstream
step and by the run's outputs, a fan-out over a result, and a bad result failing its step."""

from __future__ import annotations

from tests.harness import Server

SPEC = """\
name: results
steps:
  answer:
    run: |
      echo "thinking" >&2
      echo '{"n": 41, "names": ["ann", "bob"], "odd": "a;$(id)\\u001b[2J"}'
    result: json
    outputs:
      type: object
      properties:
        result: {type: object, properties: {n: {type: integer}}, required: [n]}
  next:
    needs: [answer]
    if: ${{ steps.answer.outputs.result.n == 41 }}
    run: printf '%s+1\\n' "${{ steps.answer.outputs.result.n }}"; printf '%s' "${{ steps.answer.outputs.result.odd }}" >&2
    result: text
  each:
    needs: [answer]
    for_each: ${{ steps.answer.outputs.result.names }}
    run: echo "hi ${{ item }}"
    result: text
  broken:
    run: echo "{not json"
    result: json
    continue_on_error: true
  wrong:
    run: echo '"seven"'
    result: json
    outputs: {type: object, properties: {result: {type: integer}}}
    continue_on_error: true
outputs:
  next: ${{ steps.next.outputs.result }}
  each: ${{ steps.each.outputs.map(o, o.result) }}
"""


def test_results_from_stdout_flow_downstream_and_bad_ones_fail(server: Server) -> None:
    run = server.run_and_wait(SPEC)
    steps = run["steps"]
    assert steps["answer"]["outputs"] == {
        "result": {"n": 41, "names": ["ann", "bob"], "odd": "a;$(id)\x1b[2J"}
    }
    assert steps["next"]["status"] == "succeeded"
    assert run["outputs"] == {"next": "41+1", "each": ["hi ann", "hi bob"]}
    # the stdout is still in the log, the step's stderr too (as data, unexecuted)
    lines = [(line["stream"], line["text"]) for line in server.logs(run["id"], "next")]
    assert ("out", "41+1") in lines and ("err", "a;$(id)\x1b[2J") in lines
    assert steps["broken"]["status"] == "failed"
    assert steps["broken"]["error"] == (
        "step 'broken' declares 'result: json' and its stdout is not JSON (line 1 column 2: "
        "Expecting property name enclosed in double quotes); print one JSON value, and log "
        "to stderr"
    )
    assert steps["wrong"]["status"] == "failed"
    assert steps["wrong"]["error"] == "step 'wrong' output /result: must be of type integer"
    assert run["status"] == "succeeded"  # both failures were allowed (continue_on_error)
