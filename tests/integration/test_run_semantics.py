"""How a run behaves, on a real server with its embedded Temporal and worker."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Server, pid_alive, wait_for


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value)


def test_diamond_passes_outputs_and_runs_branches_in_parallel(server: Server) -> None:
    spec = """
name: diamond
params: {type: object, properties: {word: {type: string, default: hi}}}
steps:
  start:
    run: echo "word=${{ params.word }}" >> "$LOCKSTEP_OUTPUTS"
  left:
    needs: [start]
    run: sleep 1; echo "v=${{ steps.start.outputs.word }}-L" >> "$LOCKSTEP_OUTPUTS"
  right:
    needs: [start]
    run: sleep 1; echo "v=${{ steps.start.outputs.word }}-R" >> "$LOCKSTEP_OUTPUTS"
  join:
    needs: [left, right]
    run: |
      echo '{"both": "'"${{ steps.left.outputs.v }}+${{ steps.right.outputs.v }}"'"}' > "$LOCKSTEP_OUTPUTS"
outputs:
  both: ${{ steps.join.outputs.both }}
"""
    run = server.run_and_wait(spec, {"word": "yo"})
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"both": "yo-L+yo-R"}
    assert run["params"] == {"word": "yo"}
    left, right = run["steps"]["left"]["history"][0], run["steps"]["right"]["history"][0]
    # the two branches overlapped in time: neither waited for the other
    assert _t(left["started_at"]) < _t(right["finished_at"])
    assert _t(right["started_at"]) < _t(left["finished_at"])


def test_defaults_apply_and_typed_outputs_reach_expressions(server: Server) -> None:
    spec = """
name: typed
params: {type: object, properties: {n: {type: integer, default: 4}}}
steps:
  a:
    run: |
      echo '{"n": '"${{ params.n }}"', "items": [1, 2]}' > "$LOCKSTEP_OUTPUTS"
    outputs: {type: object, properties: {n: {type: integer}, items: {type: array}}, required: [n]}
  b:
    needs: [a]
    if: ${{ steps.a.outputs.n > 3 }}
    run: echo "size=${{ steps.a.outputs.items }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  n: ${{ steps.a.outputs.n }}
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded", run
    assert run["outputs"] == {"n": 4}
    assert run["steps"]["b"]["outputs"] == {"size": "[1,2]"}  # key=value: the text as written


def test_the_run_env_reaches_every_step_and_the_outputs(server: Server) -> None:
    """The run's env, rendered once from the params, is what each step's expressions and
    process see, in the first step as in a later one and in finally (no step reads another
    moment's context)."""
    spec = """
name: env-everywhere
params: {type: object, properties: {who: {type: string, default: ann}}}
env: {GREETING: "hi ${{ params.who }}"}
steps:
  first:
    run: echo "said=${{ env.GREETING }}/$GREETING" >> "$LOCKSTEP_OUTPUTS"
  later:
    needs: [first]
    run: echo "said=${{ env.GREETING }}/$GREETING" >> "$LOCKSTEP_OUTPUTS"
finally:
  last:
    run: echo "said=${{ env.GREETING }} after ${{ run.status }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  said: ${{ env.GREETING }}
"""
    run = server.run_and_wait(spec, {"who": "bob"})
    assert run["status"] == "succeeded", run
    said = {sid: step["outputs"]["said"] for sid, step in run["steps"].items()}
    assert said == {
        "first": "hi bob/hi bob",
        "later": "hi bob/hi bob",
        "last": "hi bob after succeeded",
    }
    assert run["outputs"] == {"said": "hi bob"}


def test_false_condition_skips_and_dependents_still_run(server: Server) -> None:
    spec = """
name: cond
params: {type: object, properties: {go: {type: boolean, default: false}}}
steps:
  maybe:
    if: ${{ params.go }}
    run: echo ran
  after:
    needs: [maybe]
    run: echo "maybe was ${{ steps.maybe.status }}"; echo "s=${{ steps.maybe.status }}" >> "$LOCKSTEP_OUTPUTS"
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded"
    assert run["steps"]["maybe"]["status"] == "skipped"
    assert run["steps"]["maybe"]["attempts"] == 0
    assert run["steps"]["after"]["outputs"]["s"] == "skipped"


def test_failure_marks_downstream_upstream_failed_and_finally_runs(server: Server) -> None:
    spec = """
name: failing
steps:
  ok:
    run: "true"
  bad:
    run: echo boom >&2; exit 3
  child:
    needs: [bad]
    run: echo never
  grandchild:
    needs: [child]
    run: echo never
finally:
  cleanup:
    run: echo "cleanup sees ${{ run.status }} and bad=${{ steps.bad.status }}" ; echo "seen=${{ run.status }}" >> "$LOCKSTEP_OUTPUTS"
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "failed"
    assert run["error"] == "failed: bad; upstream_failed: child, grandchild"
    steps = run["steps"]
    assert steps["ok"]["status"] == "succeeded"
    assert steps["bad"]["status"] == "failed"
    assert steps["bad"]["error"] == "exited with code 3"
    assert steps["bad"]["history"][0]["exit_code"] == 3
    assert steps["child"]["status"] == "upstream_failed"
    assert steps["grandchild"]["status"] == "upstream_failed"
    assert steps["cleanup"]["status"] == "succeeded"
    assert steps["cleanup"]["outputs"] == {"seen": "failed"}
    logs = server.logs(run["id"], "bad")
    assert [(l["stream"], l["text"]) for l in logs if l["stream"] != "sys"] == [("err", "boom")]


def test_continue_on_error_lets_the_run_succeed(server: Server) -> None:
    spec = """
name: tolerant
steps:
  lint:
    run: exit 1
    continue_on_error: true
  build:
    needs: [lint]
    run: echo built
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded"
    assert run["steps"]["lint"]["status"] == "failed"
    assert run["steps"]["build"]["status"] == "succeeded"


def test_retries_back_off_and_respect_exit_codes(server: Server) -> None:
    spec = """
name: retrying
steps:
  flaky:
    run: '[ "$LOCKSTEP_ATTEMPT" -ge 3 ] || exit 75'
    retry: {attempts: 3, backoff: 300ms, on_exit_codes: [75]}
  fatal:
    run: exit 2
    retry: {attempts: 5, backoff: 100ms, on_exit_codes: [75]}
"""
    run = server.run_and_wait(spec)
    flaky, fatal = run["steps"]["flaky"], run["steps"]["fatal"]
    assert flaky["status"] == "succeeded" and flaky["attempts"] == 3
    assert [a["exit_code"] for a in flaky["history"]] == [75, 75, 0]
    # exponential backoff: at least 300 ms, then at least 600 ms between attempts (durable
    # timers never fire early; under load they may fire late, so only lower bounds hold)
    h = flaky["history"]
    gap1 = (_t(h[1]["scheduled_at"]) - _t(h[0]["finished_at"])).total_seconds()
    gap2 = (_t(h[2]["scheduled_at"]) - _t(h[1]["finished_at"])).total_seconds()
    assert gap1 >= 0.29
    assert gap2 >= 0.59
    # an exit code outside on_exit_codes is not retried
    assert fatal["status"] == "failed" and fatal["attempts"] == 1


def test_sub_second_backoffs_are_honoured_not_rounded_up_to_a_second(server: Server) -> None:
    spec = """
name: quick-retries
steps:
  at-once:
    run: exit 75
    retry: {attempts: 9, backoff: 0}
  brief:
    run: exit 75
    retry: {attempts: 9, backoff: 100ms, max_backoff: 250ms}
"""
    run = server.run_and_wait(spec)
    for step, waits in (("at-once", [0.0] * 8), ("brief", [0.1, 0.2] + [0.25] * 6)):
        h = run["steps"][step]["history"]
        assert [a["exit_code"] for a in h] == [75] * 9, h
        gaps = [
            (_t(h[i + 1]["scheduled_at"]) - _t(h[i]["finished_at"])).total_seconds()
            for i in range(8)
        ]
        # each wait lasted at least its backoff (doubling, capped by max_backoff)...
        assert all(gap >= wait - 0.01 for gap, wait in zip(gaps, waits, strict=True)), gaps
        # ...and none was stretched to Temporal's one-second timer tick: that would make the
        # eight waits add up to at least ~8 s, whatever the machine's load
        assert sum(gaps) < 6.0, gaps


def test_a_cancel_during_a_short_backoff_cancels_the_step_at_once(server: Server) -> None:
    spec = """
name: waiting
steps:
  flaky:
    run: exit 75
    retry: {attempts: 50, backoff: 900ms}
"""
    run_id = server.submit(spec)["id"]

    # attempts take a few ms and waits 900 ms: the cancel lands in a wait almost every time
    def two_failed(r: dict[str, Any]) -> bool:
        return [a["status"] for a in r["steps"]["flaky"]["history"][:2]] == ["failed"] * 2

    server.wait(run_id, until=two_failed)
    assert server.http.post(f"/runs/{run_id}/cancel").status_code == 200
    run = server.wait(run_id, timeout=20)
    assert (run["status"], run["steps"]["flaky"]["status"]) == ("cancelled", "cancelled")
    assert len(run["steps"]["flaky"]["history"]) <= 3  # no attempt started after the cancel


def test_step_timeout_kills_the_whole_process_group(server: Server, tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    spec = f"""
name: stubborn
steps:
  hang:
    timeout: 1s
    run: |
      trap '' TERM
      sleep 300 &
      echo $! > {pidfile}
      echo $$ >> {pidfile}
      wait
"""
    run = server.run_and_wait(spec)
    step = run["steps"]["hang"]
    assert run["status"] == "failed"
    assert step["status"] == "failed"
    assert "timed out after 1s" in step["error"]
    pids = [int(p) for p in pidfile.read_text().split()]
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout=5, what="step processes to die")


def test_run_timeout_stops_running_steps(server: Server) -> None:
    spec = """
name: slow-run
timeout: 2s
steps:
  long:
    run: sleep 60
finally:
  note:
    run: echo "status ${{ run.status }}"
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "failed"
    assert run["error"] == "run timed out after 2s"
    assert run["steps"]["long"]["status"] == "cancelled"
    assert run["steps"]["note"]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("not json {", "$LOCKSTEP_OUTPUTS line 1: expected key=value"),
        ('{"seed": "abc"}', "step 'a' output /seed: must be of type integer"),
    ],
)
def test_bad_outputs_fail_the_step_with_a_precise_message(
    server: Server, content: str, error: str
) -> None:
    spec = f"""
name: bad-outputs
steps:
  a:
    run: |
      printf '%s' '{content}' > "$LOCKSTEP_OUTPUTS"
    outputs: {{type: object, properties: {{seed: {{type: integer}}}}}}
  b:
    needs: [a]
    run: echo never
"""
    run = server.run_and_wait(spec)
    assert run["steps"]["a"]["status"] == "failed"
    assert error in run["steps"]["a"]["error"]
    assert run["steps"]["b"]["status"] == "upstream_failed"


HOSTILE = [
    '"; touch /tmp/lockstep-pwned #',
    "$(touch /tmp/lockstep-pwned)",
    "`id`",
    "line1\nline2",
    "a'b\"c",
    "*",
    "x=y=z",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_param_values_reach_steps_as_exact_bytes_never_as_shell(server: Server, value: str) -> None:
    spec = """
name: hostile
params: {type: object, properties: {v: {type: string}}, required: [v]}
steps:
  script:
    env: {V: "${{ params.v }}"}
    run: |
      printf '%s' "${{ params.v }}" > a.txt
      printf '%s' ${{ params.v }} > b.txt
      python3 -c 'import json,os; json.dump({"a": open("a.txt").read(), "b": open("b.txt").read(), "env": os.environ["V"]}, open(os.environ["LOCKSTEP_OUTPUTS"], "w"))'
  argv:
    run: [python3, -c, "import json,os,sys; json.dump({'arg': sys.argv[1]}, open(os.environ['LOCKSTEP_OUTPUTS'], 'w'))", "${{ params.v }}"]
"""
    run = server.run_and_wait(spec, {"v": value})
    assert run["status"] == "succeeded", run
    assert run["steps"]["script"]["outputs"] == {"a": value, "b": value, "env": value}
    assert run["steps"]["argv"]["outputs"] == {"arg": value}
    assert not os.path.exists("/tmp/lockstep-pwned")


def test_each_step_gets_its_own_copy_of_the_workspace(server: Server, tmp_path: Path) -> None:
    work = tmp_path / "proj"
    work.mkdir()
    (work / "data.txt").write_text("original\n")
    spec = """
name: isolated
steps:
  writer_a:
    run: cat data.txt; echo a > data.txt; sleep 0.5; echo "saw=$(cat data.txt)" >> "$LOCKSTEP_OUTPUTS"
  writer_b:
    run: cat data.txt; echo b > data.txt; sleep 0.5; echo "saw=$(cat data.txt)" >> "$LOCKSTEP_OUTPUTS"
  reader:
    needs: [writer_a, writer_b]
    run: echo "saw=$(cat data.txt)" >> "$LOCKSTEP_OUTPUTS"
"""
    run = server.run_and_wait(spec, workdir=work)
    assert run["status"] == "succeeded"
    assert run["steps"]["writer_a"]["outputs"] == {"saw": "a"}
    assert run["steps"]["writer_b"]["outputs"] == {"saw": "b"}
    assert run["steps"]["reader"]["outputs"] == {"saw": "original"}
    assert (work / "data.txt").read_text() == "original\n"  # the user's directory is untouched
