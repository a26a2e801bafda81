"""`key=value` outputs reach the next step exactly as written, unless the step's `outputs`
schema types them; then a value that does not convert fails the step naming the key."""

from __future__ import annotations

import json

from tests.harness import Server

SPEC = """\
name: values
steps:
  write:
    run: |
      echo "version=1.10" >> "$LOCKSTEP_OUTPUTS"
      echo "sha=1e5" >> "$LOCKSTEP_OUTPUTS"
      echo "flag=true" >> "$LOCKSTEP_OUTPUTS"
      echo "hello-param=hi there" >> "$LOCKSTEP_OUTPUTS"
      echo "count=0042" >> "$LOCKSTEP_OUTPUTS"
      echo "ready=true" >> "$LOCKSTEP_OUTPUTS"
    outputs:
      type: object
      properties:
        count: {type: integer}
        ready: {type: boolean}
        version: {type: string}
        sha: {}
        flag: {type: [string, boolean]}
        hello-param: {type: string}
  read:
    needs: [write]
    if: ${{ steps.write.outputs.ready && steps.write.outputs.count + 1 == 43 }}
    env:
      V: ${{ steps.write.outputs.version }}
      S: ${{ steps.write.outputs.sha }}
      F: ${{ steps.write.outputs.flag }}
      H: ${{ steps.write.outputs['hello-param'] }}
    with:
      version: ${{ steps.write.outputs.version }}
      sha: ${{ steps.write.outputs.sha }}
      flag: ${{ steps.write.outputs.flag }}
      count: ${{ steps.write.outputs.count }}
    run: |
      printf '%s|%s|%s|%s' "$V" "$S" "$F" "$H" > env.txt
      python3 -c 'import json,os; d=json.load(open(os.environ["LOCKSTEP_INPUT"])); d["env"]=open("env.txt").read(); json.dump(d, open(os.environ["LOCKSTEP_OUTPUTS"], "w"))'
  bad:
    run: echo "count=12abc" >> "$LOCKSTEP_OUTPUTS"
    outputs: {type: object, properties: {count: {type: integer}}}
  after:
    needs: [bad]
    run: echo never
"""


def test_key_value_outputs_stay_as_written_unless_their_schema_types_them(
    server: Server,
) -> None:
    run = server.run_and_wait(SPEC)
    write, read = run["steps"]["write"], run["steps"]["read"]
    assert write["outputs"] == {
        "version": "1.10",
        "sha": "1e5",
        "flag": "true",
        "hello-param": "hi there",
        "count": 42,
        "ready": True,
    }
    # the next step ran (its condition used the typed values) and got the exact text
    assert read["status"] == "succeeded", read
    assert read["outputs"] == {
        "version": "1.10",
        "sha": "1e5",
        "flag": "true",
        "count": 42,
        "env": "1.10|1e5|true|hi there",
    }
    bad = run["steps"]["bad"]
    assert bad["status"] == "failed"
    assert bad["error"] == (
        "$LOCKSTEP_OUTPUTS line 1: output 'count' must be an integer (its type in the step's "
        "outputs schema)"
    )
    assert run["steps"]["after"]["status"] == "upstream_failed"
    assert run["status"] == "failed"
    # the failure is in the step's log too, where `lockstep runs logs` shows it
    texts = [line["text"] for line in server.logs(run["id"], "bad")]
    assert any("output 'count' must be an integer" in t for t in texts), json.dumps(texts)
