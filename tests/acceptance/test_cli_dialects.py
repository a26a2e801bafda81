"""Every command that takes a workflow file takes either format: workflow.yaml or the JSON
state machine. The JSON example runs as the README says, with the scoring service it brings."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness import cli, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "statemachine"


@pytest.fixture
def scoring() -> Iterator[subprocess.Popen[str]]:
    """examples/statemachine/scoring.py on its documented port, as the README starts it."""
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE / "scoring.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def up() -> bool:
        try:
            return httpx.post("http://127.0.0.1:8099/score", json={}).status_code == 400
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return False

    wait_for(up, timeout=20, what="the scoring service")
    yield proc
    proc.terminate()
    proc.wait(10)
    if proc.stdout:
        proc.stdout.close()


def test_validate_takes_the_json_dialect_and_a_directory_holding_it(
    home: Path, tmp_path: Path
) -> None:
    proc = cli(home, "validate", str(EXAMPLE / "workflow.json"), str(ROOT / "examples/demo"))
    assert proc.returncode == 0, proc.stderr
    assert f"{EXAMPLE / 'workflow.json'}: ok (3 steps)" in proc.stdout
    only_json = tmp_path / "machine"
    only_json.mkdir()
    (only_json / "workflow.json").write_text((EXAMPLE / "workflow.json").read_text())
    proc = cli(home, "validate", str(only_json))
    assert proc.returncode == 0 and "workflow.json: ok (3 steps)" in proc.stdout, proc.stderr


def test_a_bad_machine_is_reported_with_positions_by_validate_and_run(
    home: Path, tmp_path: Path
) -> None:
    doc = json.loads((EXAMPLE / "workflow.json").read_text())
    doc["steps"][0]["transitionToStep"] = "scoreOrdr"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc, indent=2))
    proc = cli(home, "validate", str(bad))
    assert proc.returncode == 1
    assert f"{bad}:" in proc.stderr and "did you mean 'scoreOrder'" in proc.stderr
    proc = cli(home, "run", str(bad), "--no-watch")
    assert proc.returncode == 2 and "did you mean 'scoreOrder'" in proc.stderr
    assert not (home / "lockstep.db").exists()  # rejected before anything was recorded


def test_run_takes_the_json_dialect_and_types_its_params_by_the_first_input(
    home: Path, scoring: subprocess.Popen[str]
) -> None:
    items = json.dumps([{"sku": "a", "price": 2.5, "quantity": 2}])
    proc = cli(
        home, "run", str(EXAMPLE / "workflow.json"), "-p", "orderId=o-1", "-p", f"items={items}",
        "--json", LOCKSTEP_OUTBOUND_ALLOW="127.0.0.1/32",  # the README's loopback service
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    run = json.loads(proc.stdout)
    assert run["status"] == "succeeded"
    assert run["params"] == {"orderId": "o-1", "items": [{"sku": "a", "price": 2.5, "quantity": 2}]}
    assert run["outputs"]["status"] == "approved" and run["outputs"]["total"] == 5.0
    assert run["steps"]["scoreOrder"]["attempts"] == 3  # pending twice, then approved
    # a param the first step's input does not allow is refused before the run exists
    proc = cli(home, "run", str(EXAMPLE / "workflow.json"), "-p", "orderId=o-2", "-p", "x=1")
    assert proc.returncode == 2 and "x" in proc.stderr


def test_an_ad_hoc_run_leaves_out_what_gitignore_and_lockstepignore_list(
    home: Path, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    (project / ".venv").mkdir(parents=True)
    with (project / ".venv" / "big.img").open("wb") as f:
        f.truncate(300 * 1024**2)  # sparse: over the snapshot cap, were it taken
    (project / ".gitignore").write_text(".venv/\n")
    (project / ".lockstepignore").write_text("NOTES.md\n")
    (project / "data.txt").write_text("input\n")
    (project / "workflow.yaml").write_text(
        "name: ignoring\nsteps:\n  look:\n    cache: true\n"
        "    run: ls -A | tr '\\n' ' ' && test ! -e NOTES.md && test ! -e .venv\n"
    )
    first = cli(home, "run", str(project / "workflow.yaml"), "--json")
    assert first.returncode == 0, first.stderr + first.stdout
    logs = cli(home, "runs", "logs", json.loads(first.stdout)["id"], "look")
    assert ".gitignore .lockstepignore data.txt workflow.yaml" in logs.stdout
    # a note listed in .lockstepignore changes nothing the step sees: the cache still hits
    (project / "NOTES.md").write_text("thoughts\n")
    second = cli(home, "run", str(project / "workflow.yaml"), "--json")
    assert second.returncode == 0, second.stderr
    look = json.loads(second.stdout)["steps"]["look"]
    assert look["cached_from"] == f"{json.loads(first.stdout)['id']}/look/1"
