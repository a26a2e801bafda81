"""A user sees why each run started: `runs show` says it in one line, `runs list` filters by
it, and a filter that names no kind lockstep knows is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import cli


def test_show_says_why_and_list_filters_by_cause(home: Path, tmp_path: Path) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text("name: why\nsteps:\n  a:\n    run: exit 3\n")
    ran = cli(home, "run", str(wf), "--json")
    assert ran.returncode == 1, ran.stderr
    original = json.loads(ran.stdout)
    user = original["cause"]["user"]
    assert original["cause"]["kind"] == "manual" and user
    retried = cli(home, "runs", "retry", original["id"], "--json")
    assert retried.returncode == 1, retried.stderr  # it fails again, as the step still does
    retry = json.loads(retried.stdout)

    shown = cli(home, "runs", "show", retry["id"])
    assert shown.returncode == 0, shown.stderr
    assert f"cause: retry of {original['id']} by {user}" in shown.stdout
    first = cli(home, "runs", "show", original["id"])
    assert f"cause: manual by {user}" in first.stdout

    only = cli(home, "runs", "list", "--cause", "retry", "--json")
    assert only.returncode == 0, only.stderr
    assert [(r["id"], r["cause"]["of"]) for r in json.loads(only.stdout)] == [
        (retry["id"], original["id"])
    ]
    by_id = cli(home, "runs", "list", "--prefix", retry["id"][:-2], "--user", user, "--json")
    assert [r["id"] for r in json.loads(by_id.stdout)] == [retry["id"]], by_id.stderr
    nobody = cli(home, "runs", "list", "--user", "nobody-at-all")
    assert nobody.returncode == 0 and "no runs match" in nobody.stdout
    none = cli(home, "runs", "list", "--trigger", "nightly")
    assert none.returncode == 0 and "no runs match" in none.stdout

    bad = cli(home, "runs", "list", "--cause", "telepathy")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown cause 'telepathy'; use one of: manual" in lines[0]
