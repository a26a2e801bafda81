"""for_each: a step run once per item, on a real server with its embedded Temporal and worker."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from temporalio.client import Client

from tests.harness import Server


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _items(server: Server, run_id: str, step: str, **params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        resp = server.http.get(
            f"/runs/{run_id}/steps/{step}/items", params={"offset": len(found), **params}
        )
        assert resp.status_code == 200, resp.text
        page = resp.json()
        found += page
        if len(page) < params.get("limit", 100):
            return found


def _most_at_once(items: list[dict[str, Any]]) -> int:
    spans = [(_t(a["started_at"]), _t(a["finished_at"])) for i in items for a in i["history"]]
    return max(sum(1 for s, e in spans if s <= at < e) for at, _ in spans)


def test_items_see_item_and_index_and_outputs_come_back_in_item_order(server: Server) -> None:
    spec = """
name: sweep
params:
  type: object
  properties: {cases: {type: array, items: {type: string}, default: [leo, geo, meo, heo, sso]}}
steps:
  sim:
    for_each: ${{ params.cases }}
    max_parallel: 2
    run: sleep 0.3; echo "out=${{ item }}-${{ index }}" >> "$LOCKSTEP_OUTPUTS"
  report:
    needs: [sim]
    run: echo "n=${{ size(steps.sim.outputs) }} status=${{ steps.sim.status }}"
outputs:
  all: ${{ steps.sim.outputs.map(o, o.out) }}
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded", (
        run["error"],
        {k: (v["status"], v["error"]) for k, v in run["steps"].items()},
    )
    assert run["outputs"] == {"all": ["leo-0", "geo-1", "meo-2", "heo-3", "sso-4"]}
    sim = run["steps"]["sim"]
    assert sim["status"] == "succeeded"
    assert sim["items"] == {"total": 5, "succeeded": 5}
    assert sim["outputs"] == [{"out": f"{c}-{i}"} for i, c in enumerate(run["params"]["cases"])]
    assert not [s for s in run["steps"] if "[" in s]  # items are listed apart
    items = _items(server, run["id"], "sim")
    assert [i["index"] for i in items] == [0, 1, 2, 3, 4]
    assert all(i["status"] == "succeeded" and i["attempts"] == 1 for i in items)
    assert _most_at_once(items) == 2  # items overlapped, and max_parallel held
    logs = server.logs(run["id"], "report")
    assert any("n=5 status=succeeded" in line["text"] for line in logs)


def test_fail_fast_stops_the_other_items_and_fails_the_step(server: Server) -> None:
    spec = """
name: fragile
steps:
  sim:
    for_each: [0, 1, 2, 3, 4, 5]
    max_parallel: 1
    run: test "${{ item }}" != 1
  after:
    needs: [sim]
    run: "true"
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "failed", run
    sim = run["steps"]["sim"]
    assert sim["status"] == "failed"
    assert sim["error"].startswith("1 of 6 items failed; first sim[1]: ")
    assert sim["items"] == {"total": 6, "succeeded": 1, "failed": 1, "cancelled": 4}
    assert run["steps"]["after"]["status"] == "upstream_failed"
    cancelled = _items(server, run["id"], "sim", status="cancelled")
    assert [i["index"] for i in cancelled] == [2, 3, 4, 5]
    assert all(i["attempts"] == 0 and i["error"] == "not run" for i in cancelled)


def test_without_fail_fast_every_item_runs_and_outputs_keep_their_places(server: Server) -> None:
    spec = """
name: tolerant
steps:
  sim:
    for_each: [a, b, c, d]
    fail_fast: false
    continue_on_error: true
    run: |
      test "${{ item }}" != b || exit 3
      echo "v=${{ item }}" >> "$LOCKSTEP_OUTPUTS"
  after:
    needs: [sim]
    run: echo "${{ steps.sim.outputs }}"
"""
    run = server.run_and_wait(spec)
    sim = run["steps"]["sim"]
    assert sim["status"] == "failed"
    assert sim["items"] == {"total": 4, "succeeded": 3, "failed": 1}
    assert sim["outputs"] == [{"v": "a"}, None, {"v": "c"}, {"v": "d"}]
    assert run["steps"]["after"]["status"] == "succeeded"  # continue_on_error on the step


def test_items_store_artifacts_a_consumer_gets_all_of_them(server: Server) -> None:
    spec = """
name: shards
steps:
  make:
    for_each: [x, y, z]
    run: mkdir -p out && echo "shard ${{ item }}" > "out/${{ item }}.txt"
    artifacts: {result: "out/${{ item }}.txt"}
  merge:
    needs: [make]
    inputs: {artifacts: [make.result]}
    run: cat out/x.txt out/y.txt out/z.txt
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded", (
        run["error"],
        {k: (v["status"], v["error"]) for k, v in run["steps"].items()},
    )
    text = [line["text"] for line in server.logs(run["id"], "merge") if line["stream"] == "out"]
    assert text == ["shard x", "shard y", "shard z"]
    listed = server.http.get(f"/runs/{run['id']}/artifacts").json()
    names = sorted((a["step"], a["name"]) for a in listed)
    assert names == [("make[0]", "result"), ("make[1]", "result"), ("make[2]", "result")]


@pytest.mark.parametrize(
    ("for_each", "error"),
    [
        ("${{ params.word }}", "for_each of step 'sim' gave 'abc' (a string), not a list"),
        ("${{ params.nothing }}", "gave '{}' (an object), not a list"),
    ],
)
def test_for_each_that_is_not_a_list_fails_the_step_clearly(
    server: Server, for_each: str, error: str
) -> None:
    spec = f"""
name: notalist
params:
  type: object
  properties: {{word: {{type: string, default: abc}}, nothing: {{type: object, default: {{}}}}}}
steps:
  sim:
    for_each: {for_each}
    run: echo "${{{{ item }}}}"
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "failed"
    assert error in run["steps"]["sim"]["error"], run["steps"]["sim"]
    assert run["steps"]["sim"]["attempts"] == 0


def test_a_condition_on_the_item_skips_single_items_and_noop_passes_its_input(
    server: Server,
) -> None:
    spec = """
name: picky
steps:
  pick:
    for_each: [1, 2, 3, 4]
    if: ${{ item % 2 == 0 }}
    uses: noop
    with: {n: "${{ item * 10 }}"}
outputs:
  picked: ${{ steps.pick.outputs }}
"""
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded", (
        run["error"],
        {k: (v["status"], v["error"]) for k, v in run["steps"].items()},
    )
    assert run["outputs"] == {"picked": [None, {"n": 20}, None, {"n": 40}]}
    assert run["steps"]["pick"]["items"] == {"total": 4, "skipped": 2, "succeeded": 2}


def _history_length(server: Server, workflow_id: str) -> int:
    address = server.api.get("/worker/config").json()["temporal_address"]

    async def count() -> int:
        client = await Client.connect(address)
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        return len(history.events)

    return asyncio.run(count())


def _wide(n: int) -> str:
    return f"""
name: wide
params: {{type: object, properties: {{n: {{type: integer, default: {n}}}}}}}
steps:
  prep:
    run: python3 -c "import json; print('ids=' + json.dumps(list(range(${{{{ params.n }}}}))))" >> "$LOCKSTEP_OUTPUTS"
    outputs: {{type: object, properties: {{ids: {{type: array}}}}}}
  each:
    needs: [prep]
    for_each: ${{{{ steps.prep.outputs.ids }}}}
    uses: noop
    with: {{square: "${{{{ item * item }}}}"}}
outputs:
  count: ${{{{ size(steps.each.outputs) }}}}
  last: ${{{{ steps.each.outputs[{n - 1}].square }}}}
"""


def _check_wide(server: Server, n: int, timeout: float) -> None:
    run = server.run_and_wait(_wide(n), timeout=timeout)
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"] == {"count": n, "last": (n - 1) ** 2}
    assert run["steps"]["each"]["items"] == {"total": n, "succeeded": n}
    # the run's own history holds a child per batch of 200 items, not the items
    assert _history_length(server, run["id"]) < 100 + 12 * (n // 200)
    assert _history_length(server, f"{run['id']}.each.{(n - 1) // 200 * 200}") < 200


def test_a_thousand_noop_items_run_in_batches_with_bounded_history(server: Server) -> None:
    _check_wide(server, 1000, timeout=180)


@pytest.mark.slow
def test_ten_thousand_noop_items_run_in_batches_with_bounded_history(server: Server) -> None:
    _check_wide(server, 10_000, timeout=600)


def test_a_wide_fan_out_of_real_steps_runs_every_item_once_through_child_batches(
    server: Server,
) -> None:
    items = ", ".join(str(i) for i in range(300))
    spec = f"""
name: wide-real
steps:
  each:
    for_each: [{items}]
    max_parallel: 300
    run: [echo, "${{{{ item }}}}"]
"""
    run = server.run_and_wait(spec, timeout=240)
    assert run["status"] == "succeeded", run["error"]
    assert run["steps"]["each"]["items"] == {"total": 300, "succeeded": 300}
    items = _items(server, run["id"], "each", limit=100)
    assert [i["index"] for i in items] == list(range(300))
    assert all(i["attempts"] == 1 and i["history"][0]["exit_code"] == 0 for i in items)
    assert [
        line["text"] for line in server.logs(run["id"], "each[299]") if line["stream"] == "out"
    ] == ["299"]
    # two children: items 0-199 and 200-299; the run's history holds neither's items
    assert _history_length(server, run["id"]) < 100
    assert _history_length(server, f"{run['id']}.each.200") < 100 * 12
