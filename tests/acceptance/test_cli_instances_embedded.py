"""`lockstep instances run` without a server runs the instance on the embedded engine, as
`lockstep run` does, instead of waiting for an engine that never comes."""

from __future__ import annotations

from pathlib import Path

from tests.harness import cli


def test_an_instance_runs_on_the_embedded_engine(home: Path, tmp_path: Path) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text("name: hello-inst\nsteps:\n  a:\n    run: echo hi from the instance\n")
    for args in (
        ["publish", str(wf)],
        ["tags", "set", "hello-inst", "$LIVE", "1"],
        ["instances", "create", "nightly", "--definition", "hello-inst", "--ref", "$LIVE"],
    ):
        proc = cli(home, *args)
        assert proc.returncode == 0, (args, proc.stderr)
    proc = cli(home, "instances", "run", "nightly", timeout=180)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "succeeded" in proc.stdout and "definition hello-inst version 1" in proc.stdout
    run_id = proc.stdout.split("lockstep runs logs ")[1].split()[0]
    assert "hi from the instance" in cli(home, "runs", "logs", run_id, "a").stdout
