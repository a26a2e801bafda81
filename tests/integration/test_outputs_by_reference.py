"""Outputs bigger than 64 KiB travel by reference: stored once, previewed in the record, and
read transparently by expressions and by the steps they are handed to."""

from __future__ import annotations

import asyncio
import json

from temporalio.client import Client

from tests.harness import Server

N = 30_000  # [0, 1, ..., 29999]: about 170 KB of JSON

PRODUCER = f"""
  make:
    run: |
      python3 -c "import json; print(json.dumps({{'big': list(range({N})), 'small': 7}}))" \\
        > "$LOCKSTEP_OUTPUTS"
"""


def _history_bytes(server: Server, workflow_id: str) -> int:
    address = server.api.get("/worker/config").json()["temporal_address"]

    async def size() -> int:
        client = await Client.connect(address)
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        return len(history.to_json())

    return asyncio.run(size())


def test_a_big_output_is_handed_on_whole_without_entering_the_engine(server: Server) -> None:
    spec = (
        "name: by-ref\nsteps:\n"
        + PRODUCER
        + """
  use:
    needs: [make]
    with: {data: "${{ steps.make.outputs.big }}", n: "${{ steps.make.outputs.small }}"}
    run: |
      python3 -c "import json, os; d = json.load(open(os.environ['LOCKSTEP_INPUT'])); print('got', len(d['data']), sum(d['data']), d['n'])"
outputs:
  big: ${{ steps.make.outputs.big }}
"""
    )
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded", run["error"]
    out = [line["text"] for line in server.logs(run["id"], "use") if line["stream"] == "out"]
    assert out == [f"got {N} {sum(range(N))} 7"]
    # the record carries a preview and the size, not the value
    marker = run["steps"]["make"]["outputs"]["big"]["__lockstep_ref__"]
    assert marker["preview"].startswith("[0,1,2,3,")
    assert marker["size"] == len(json.dumps(list(range(N)), separators=(",", ":")))
    assert run["steps"]["make"]["outputs"]["small"] == 7
    assert run["outputs"]["big"]["__lockstep_ref__"]["key"] == marker["key"]
    # the whole value, from the API, for the step and for the run
    full = server.http.get(f"/runs/{run['id']}/outputs/big", params={"step": "make"})
    assert full.status_code == 200 and full.json() == list(range(N))
    assert server.http.get(f"/runs/{run['id']}/outputs/big").json() == list(range(N))
    # the engine's history never held it
    assert _history_bytes(server, run["id"]) < marker["size"]


def test_expressions_that_look_inside_a_big_output_read_the_real_value(server: Server) -> None:
    spec = (
        "name: by-ref-read\nsteps:\n"
        + PRODUCER
        + """
  count:
    needs: [make]
    if: ${{ size(steps.make.outputs.big) > 1000 }}
    run: echo "n=${{ size(steps.make.outputs.big) }} last=${{ steps.make.outputs.big[29999] }}"
  each:
    needs: [make]
    for_each: ${{ steps.make.outputs.big.filter(x, x % 10000 == 0) }}
    uses: noop
    with: {v: "${{ item }}"}
outputs:
  total: ${{ steps.make.outputs.big.size() }}
  picked: ${{ steps.each.outputs.map(o, o.v) }}
"""
    )
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded", run["error"]
    out = [line["text"] for line in server.logs(run["id"], "count") if line["stream"] == "out"]
    assert out == [f"n={N} last={N - 1}"]
    assert run["outputs"] == {"total": N, "picked": [0, 10000, 20000]}


def test_an_unknown_output_is_a_clear_404(server: Server) -> None:
    run = server.run_and_wait("name: tiny\nsteps:\n  a:\n    run: echo x=1 >> $LOCKSTEP_OUTPUTS\n")
    resp = server.http.get(f"/runs/{run['id']}/outputs/nope", params={"step": "a"})
    assert resp.status_code == 404
    assert "has no output 'nope'" in resp.json()["detail"]
