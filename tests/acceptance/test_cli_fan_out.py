"""The CLI on a fan-out and a big output: `runs show` counts items and previews, `runs items`
lists them, `runs output` prints a value stored by reference in full."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import Server, cli

SPEC = """\
name: cli-fan
steps:
  make:
    run: |
      python3 -c "import json; print(json.dumps({'big': list(range(20000))}))" > "$LOCKSTEP_OUTPUTS"
  sim:
    for_each: [a, b, c]
    fail_fast: false
    continue_on_error: true
    run: test "${{ item }}" != b
outputs:
  big: ${{ steps.make.outputs.big }}
"""


def test_runs_show_items_and_output(server: Server, tmp_path: Path) -> None:
    run = server.run_and_wait(SPEC)
    assert run["status"] == "succeeded", run["error"]
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}

    shown = cli(tmp_path, "runs", "show", run["id"], **env)
    assert shown.returncode == 0, shown.stderr
    assert "items 2/3 succeeded, 1 failed" in shown.stdout
    assert "bytes, stored by reference> [0,1,2," in shown.stdout
    assert f"lockstep runs output {run['id']} NAME" in shown.stdout

    failed = cli(tmp_path, "runs", "items", run["id"], "sim", "--status", "failed", "--json", **env)
    assert failed.returncode == 0, failed.stderr
    rows = json.loads(failed.stdout)
    assert [(r["item"], r["status"], r["attempts"]) for r in rows] == [("sim[1]", "failed", 1)]
    every = cli(tmp_path, "runs", "items", run["id"], "sim", **env)
    assert all(f"sim[{i}]" in every.stdout for i in range(3))

    full = cli(tmp_path, "runs", "output", run["id"], "big", "--step", "make", **env)
    assert full.returncode == 0, full.stderr
    assert json.loads(full.stdout) == list(range(20000))
    saved = tmp_path / "big.json"
    to_file = cli(tmp_path, "runs", "output", run["id"], "big", "-o", str(saved), **env)
    assert to_file.returncode == 0, to_file.stderr
    assert json.loads(saved.read_text()) == list(range(20000))

    missing = cli(tmp_path, "runs", "output", run["id"], "nope", **env)
    assert missing.returncode != 0
    assert len(missing.stderr.strip().splitlines()) == 1
    assert f"run {run['id']} has no output 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr
