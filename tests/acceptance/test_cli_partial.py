"""`lockstep run --only/--from/--reuse` as a user types it: part of the graph runs, the rest
is shown as not selected, and a bad selection is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import cli

WORKFLOW = """name: pipeline
steps:
  fetch:
    run: echo "n=$RANDOM$RANDOM" >> "$LOCKSTEP_OUTPUTS"
  build:
    needs: [fetch]
    run: echo "m=${{ steps.fetch.outputs.n }}-built" >> "$LOCKSTEP_OUTPUTS"
  docs:
    run: "true"
outputs:
  built: ${{ steps.build.outputs.m }}
"""


def test_from_reuse_runs_the_rest_of_the_graph_on_an_earlier_runs_results(
    home: Path, tmp_path: Path
) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text(WORKFLOW)
    first = cli(home, "run", str(wf), "--json")
    assert first.returncode == 0, first.stderr
    whole = json.loads(first.stdout)
    n = whole["steps"]["fetch"]["outputs"]["n"]

    proc = cli(home, "run", str(wf), "--from", "build", "--reuse", whole["id"][:12], "--json")
    assert proc.returncode == 0, proc.stderr
    part = json.loads(proc.stdout)
    steps = part["steps"]
    assert steps["fetch"]["reused_from"] == whole["id"] and steps["fetch"]["attempts"] == 0
    assert steps["build"]["attempts"] == 1 and part["outputs"] == {"built": f"{n}-built"}
    assert (steps["docs"]["status"], steps["docs"]["error"]) == ("skipped", "not selected")

    shown = cli(home, "runs", "show", part["id"], COLUMNS="200")
    assert shown.returncode == 0, shown.stderr
    assert f"selection: --from build; needs fetch (reused from {whole['id']})" in shown.stdout
    assert "not selected" in shown.stdout

    # without --reuse the needed steps run too, and the command says so
    alone = cli(home, "run", str(wf), "--only", "build", "--no-watch", COLUMNS="200")
    assert alone.returncode == 0, alone.stderr
    assert "also running the steps the selection needs: fetch" in alone.stderr


def test_a_bad_selection_is_one_line_and_starts_nothing(home: Path, tmp_path: Path) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text(WORKFLOW)
    typo = cli(home, "run", str(wf), "--only", "biuld")
    assert typo.returncode == 2
    assert typo.stderr.strip() == (
        "error: --only: workflow 'pipeline' has no step 'biuld'; did you mean 'build'?"
    )
    lone = cli(home, "run", str(wf), "--reuse", "r-1")
    assert lone.returncode == 2
    assert lone.stderr.strip() == "error: --reuse goes with --only or --from (which steps to run)"
    missing = cli(home, "run", str(wf), "--from", "build", "--reuse", "nosuchrun")
    assert missing.returncode == 2
    assert "--reuse: run 'nosuchrun' not found in project 'default'" in missing.stderr
    listed = cli(home, "runs", "list", "--json")
    assert json.loads(listed.stdout) == []
