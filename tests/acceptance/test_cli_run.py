"""`lockstep` as a user types it: embedded runs, validation, exit codes, records."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.harness import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*/workflow.yaml"))


def test_demo_example_runs_end_to_end_on_the_embedded_engine(home: Path) -> None:
    proc = cli(home, "run", str(ROOT / "examples/demo/workflow.yaml"), "-p", "cases=2", "--json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert run["status"] == "succeeded"
    assert run["params"] == {"cases": 2, "label": "demo", "publish": False}
    steps = run["steps"]
    assert steps["fine"]["attempts"] == 2  # the flaky step passed on its retry
    assert steps["fine"]["history"][0]["exit_code"] == 75
    assert steps["publish"]["status"] == "skipped"
    assert steps["cleanup"]["status"] == "succeeded"
    assert run["outputs"]["verdict"] in ("ok", "coarse step too big")
    assert isinstance(run["outputs"]["drift"], float)
    # the record is kept in the home and readable without any server
    shown = cli(home, "runs", "show", run["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["outputs"] == run["outputs"]
    listed = cli(home, "runs", "list", "--json")
    assert [r["id"] for r in json.loads(listed.stdout)] == [run["id"]]
    logs = cli(home, "runs", "logs", run["id"], "cleanup")
    assert f"run {run['id']} finished with status succeeded" in logs.stdout
    # nothing is left running once the command returned
    left = subprocess.run(["pgrep", "-f", f"{home}/temporal.db"], capture_output=True)
    assert left.returncode == 1


def test_failed_run_exits_1_and_prints_the_reason(home: Path, tmp_path: Path) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text("name: broken\nsteps:\n  a:\n    run: echo nope >&2; exit 4\n")
    proc = cli(home, "run", str(wf), "--no-watch")
    assert proc.returncode == 1
    assert "exited with code 4" in proc.stdout


@pytest.mark.parametrize(
    ("yaml_text", "args", "message"),
    [
        ("name: x\nsteps:\n  a:\n    run: [unclosed\n", [], "workflow.yaml:5:1: invalid YAML"),
        (
            "name: x\nsteps:\n  a:\n    rnu: echo\n",
            [],
            "workflow.yaml:4:5: unknown key 'rnu'; did you mean 'run'?",
        ),
        (
            "name: x\nsteps:\n  a: {run: echo, needs: [b]}\n  b: {run: echo, needs: [a]}\n",
            [],
            "cycle: a -> b -> a",
        ),
        (
            "name: x\nparams: {type: object, properties: {n: {type: integer}}}\nsteps:\n  a: {run: echo}\n",
            ["-p", "n=abc"],
            "n",
        ),
        (
            "name: x\nsteps:\n  a: {run: echo}\n",
            ["-p", "ghost=1"],
            "this workflow declares no params",
        ),
        ("name: x\nsteps:\n  a: {run: 'echo ${{ params. }}'}\n", [], "workflow.yaml:3:"),
    ],
)
def test_rejected_before_start_exits_2_with_one_clear_line(
    home: Path, tmp_path: Path, yaml_text: str, args: list[str], message: str
) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text(yaml_text)
    proc = cli(home, "run", str(wf), *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (home / "lockstep.db").exists()  # nothing was created


def test_unreadable_file_and_unknown_run_are_one_line_errors(home: Path, tmp_path: Path) -> None:
    proc = cli(home, "run", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2
    assert "cannot read" in proc.stderr and "Traceback" not in proc.stderr
    shown = cli(home, "runs", "show", "rnope")
    assert shown.returncode == 1
    assert shown.stderr.strip().startswith("error: run 'rnope' not found")


def test_validate_reports_everything_at_once(tmp_path: Path, home: Path) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text(
        "name: Bad_Name\n"
        "steps:\n"
        "  a:\n"
        "    run: echo ${{ params.missing }}\n"
        "    iamge: x\n"
        "  b:\n"
        "    needs: [c]\n"
        "    run: echo\n"
    )
    proc = cli(home, "validate", str(wf))
    assert proc.returncode == 1
    lines = [l for l in proc.stderr.splitlines() if l.startswith("error")]
    assert len(lines) >= 4, proc.stderr
    assert all("workflow.yaml:" in l for l in lines)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_bundled_example_validates(home: Path, path: Path) -> None:
    proc = cli(home, "validate", str(path))
    assert proc.returncode == 0, proc.stderr


def test_schema_is_published_json_schema(home: Path) -> None:
    proc = cli(home, "schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert schema["title"] == "lockstep workflow.yaml"
    assert {"name", "steps", "params", "finally", "outputs"} <= set(schema["properties"])


def test_validate_warns_about_a_pool_no_worker_has_served(home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "workflow.yaml"
    spec.write_text(
        "name: placed\ndefaults: {runs_on: gpu-typo}\nsteps:\n"
        "  a: {run: 'true'}\n  b: {run: 'true', runs_on: default}\n"
    )
    proc = cli(home, "validate", str(spec))
    assert proc.returncode == 0, proc.stderr  # a warning, not an error
    assert f"{spec}:2:12: step 'a' runs on pool 'gpu-typo'" in proc.stderr
    assert "step 'b'" not in proc.stderr
