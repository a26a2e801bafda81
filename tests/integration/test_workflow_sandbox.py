"""The interpreter's workflow code is deterministic: every kind of step runs with Temporal's
sandbox on (``LOCKSTEP_WORKFLOW_SANDBOX=true``), which fails a workflow task that reads the
clock, randomness, files or the environment. Servers run without it by default (less CPU a
step); this keeps the code they run fit for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Server, wait_for
from tests.receivers import http_receiver

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*/workflow.yaml"))

#: approvals and a wait (engine-only steps), a retry with a sub-second backoff, the cache,
#: a condition, a noop, a wide fan-out (its batches are child workflows) and a finally step
SPEC = """\
name: sandboxed
steps:
  flaky:
    run: |
      test "$LOCKSTEP_ATTEMPT" = 2 || exit 1
      echo "n=3" >> "$LOCKSTEP_OUTPUTS"
    retry: {attempts: 2, backoff: 100ms}
  cached:
    run: echo "c=1" >> "$LOCKSTEP_OUTPUTS"
    cache: true
  gate:
    needs: [flaky, cached]
    approval: {message: "go on with ${{ steps.flaky.outputs.n }}?"}
  pause:
    needs: [gate]
    wait: 1s
  skipped:
    needs: [pause]
    if: ${{ steps.flaky.outputs.n == '4' }}
    run: exit 1
  many:
    needs: [pause]
    uses: noop
    for_each: ${{ ITEMS }}
    with: {i: "${{ item }}"}
  last:
    needs: [many, skipped]
    uses: noop
    with: {count: "${{ steps.many.outputs }}"}
finally:
  tidy:
    run: echo "tidy after ${{ run.status }}"
outputs:
  first: ${{ steps.many.outputs[0].i }}
""".replace("${{ ITEMS }}", str(list(range(250))))


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("sandboxed-home"),
        LOCKSTEP_WORKFLOW_SANDBOX="true",
        LOCKSTEP_OUTBOUND_ALLOW="127.0.0.1/32",  # the state machine's http service
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_example_runs_in_the_sandbox(sandboxed: Server, path: Path) -> None:
    run = sandboxed.run_and_wait(path.read_text(), workdir=path.parent, timeout=120)
    assert run["status"] == "succeeded", run


def test_a_state_machine_runs_in_the_sandbox(sandboxed: Server) -> None:
    """The JSON state-machine dialect: its own workflow, its transitions and visits."""
    with http_receiver() as service:
        service.answer = lambda call, n: (200, {**call.body, "status": "approved", "score": 1})
        text = (ROOT / "examples/statemachine/workflow.json").read_text()
        text = text.replace("http://127.0.0.1:8099", service.url)
        order = {"orderId": "o-1", "items": [{"sku": "a", "price": 2, "quantity": 1}]}
        run = sandboxed.run_and_wait(text, params=order, file="workflow.json")
    assert run["status"] == "succeeded", (run["error"], run["steps"])
    assert run["outputs"]["status"] == "approved"


def test_every_kind_of_step_runs_in_the_sandbox(sandboxed: Server, tmp_path: Path) -> None:
    run_id = sandboxed.submit(SPEC, workdir=tmp_path)["id"]
    wait_for(
        lambda: sandboxed.run(run_id)["steps"]["gate"]["status"] == "waiting",
        timeout=60,
        what="the approval to wait",
    )
    decided = sandboxed.http.post(f"/runs/{run_id}/approvals/gate/approve", json={})
    assert decided.status_code == 200, decided.text
    run = sandboxed.wait(run_id, timeout=120)
    assert run["status"] == "succeeded", run
    steps = run["steps"]
    assert steps["flaky"]["attempts"] == 2
    assert steps["skipped"]["status"] == "skipped"
    assert len(steps["many"]["outputs"]) == 250
    assert steps["tidy"]["status"] == "succeeded"
    assert run["outputs"] == {"first": 0}
