"""A user runs a workflow whose step runs another (embedded, no server): the parent's outputs
carry the child's, `runs list --tree` shows the child under its parent, `runs show` of each
names the other, and a malformed `workflow:` is one line at its position."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import cli

KID = """\
name: kid
params: {type: object, properties: {n: {type: integer, default: 1}}}
steps:
  double:
    run: echo "twice=${{ params.n * 2 }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  twice: ${{ steps.double.outputs.twice }}
"""

PARENT = """\
name: parent
steps:
  call:
    workflow: kid@$LIVE
    with: {n: 21}
outputs:
  got: ${{ steps.call.outputs.twice }}
"""


def test_a_parent_and_its_child_from_the_cli(home: Path, tmp_path: Path) -> None:
    kid, parent = tmp_path / "kid.yaml", tmp_path / "parent.yaml"
    kid.write_text(KID)
    parent.write_text(PARENT)
    assert cli(home, "publish", str(kid)).returncode == 0
    assert cli(home, "tags", "set", "kid", "$LIVE", "1").returncode == 0
    ran = cli(home, "run", str(parent), "--json")
    assert ran.returncode == 0, ran.stderr
    run = json.loads(ran.stdout)
    assert run["outputs"] == {"got": "42"}
    [child] = run["children"]

    tree = cli(home, "runs", "list", "--tree", COLUMNS="200")
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(run["id"]))
    assert lines[at + 1].startswith(f"└ {child['run_id']}") and " kid " in lines[at + 1]

    shown = cli(home, "runs", "show", run["id"])
    assert f"child run {child['run_id']} (kid, succeeded) of step call" in shown.stdout
    up = cli(home, "runs", "show", child["run_id"])
    assert f"cause: parent run {run['id']} step call" in up.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nsteps:\n  call:\n    workflow: Kid@[red]x\n")
    refused = cli(home, "validate", str(bad))
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}:4:5: 'workflow' 'Kid@[red]x' must name a definition")
