"""Record the Temporal histories that ``tests/unit/test_replay.py`` replays: run each spec
below on a real `lockstep server` and save its run's history as JSON.

A history recorded by one version of lockstep must replay under the next (runs in flight
across an upgrade carry on), so histories are recorded with an older checkout and kept:

    git worktree add /tmp/old <commit>
    PYTHONPATH=/tmp/old/src .venv/bin/python tests/histories/record.py tests/histories/<commit>
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench._server import start_server

SPECS = {
    "chain": """\
name: chain
params: {type: object, properties: {n: {type: integer, default: 2}}}
steps:
  a: {run: 'echo "x=${{ params.n }}" >> "$LOCKSTEP_OUTPUTS"'}
  b: {needs: [a], run: 'echo "y=${{ steps.a.outputs.x }}" >> "$LOCKSTEP_OUTPUTS"'}
  skipped: {needs: [a], if: "params.n > 5", run: exit 1}
  c: {needs: [b, skipped], uses: noop, with: {y: "${{ steps.b.outputs.y }}"}}
finally:
  tidy: {run: 'echo "after ${{ run.status }}"'}
outputs:
  y: ${{ steps.c.outputs.y }}
""",
    "diamond-retries": """\
name: diamond
steps:
  top: {run: 'true'}
  left:
    needs: [top]
    run: 'test "$LOCKSTEP_ATTEMPT" = 2'
    retry: {attempts: 2, backoff: 100ms}
  right: {needs: [top], run: exit 3, continue_on_error: true}
  bottom: {needs: [left, right], run: 'true'}
""",
    "fan-out": """\
name: fan
steps:
  many:
    for_each: [1, 2, 3, 4]
    max_parallel: 2
    run: 'echo "v=${{ item }}" >> "$LOCKSTEP_OUTPUTS"'
  after: {needs: [many], uses: noop, with: {n: "${{ steps.many.outputs }}"}}
""",
    "failed": """\
name: failed
steps:
  a: {run: exit 1}
  b: {needs: [a], run: 'true'}
  c: {run: 'true'}
""",
}


async def _history(address: str, run_id: str) -> str:
    client = await Client.connect(address)
    history = await client.get_workflow_handle(run_id).fetch_history()
    return history.to_json()


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lockstep-histories-") as tmp:
        server, http, meta = start_server(Path(tmp) / "home")
        try:
            for name, spec in SPECS.items():
                run_id = http.post("/runs", json={"spec": spec}).raise_for_status().json()["id"]
                while http.get(f"/runs/{run_id}").json()["status"] in ("queued", "running"):
                    time.sleep(0.1)
                text = asyncio.run(_history(meta["temporal"], run_id))
                (out / f"{name}.json").write_text(text)
                print(f"{name}: {run_id} {http.get(f'/runs/{run_id}').json()['status']}")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
