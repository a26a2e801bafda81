"""The CLI on files it cannot use as they are: one line saying what, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from tests.harness import Server, cli

BIG = """\
name: cli-broken-blob
steps:
  make:
    run: |
      python3 -c "import json; print(json.dumps({'big': list(range(20000))}))" > "$LOCKSTEP_OUTPUTS"
"""


def test_runs_output_of_a_stored_value_that_is_not_json_is_one_line(
    server: Server, tmp_path: Path
) -> None:
    run = server.run_and_wait(BIG)
    assert run["status"] == "succeeded", run["error"]
    key = run["steps"]["make"]["outputs"]["big"]["__lockstep_ref__"]["key"]
    (server.home / "blobs" / key).write_bytes(b"\x1f\x8b not json at all")  # damaged on disk
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}
    shown = cli(tmp_path, "runs", "output", run["id"], "big", "--step", "make", **env)
    assert shown.returncode != 0
    lines = shown.stderr.strip().splitlines()
    assert len(lines) == 1, shown.stderr
    assert lines[0].endswith(
        f"output 'big' of run {run['id']} is stored but is not valid JSON; "
        "save its bytes with -o FILE to look at them"
    )
    assert "Traceback" not in shown.stderr and "JSONDecodeError" not in shown.stderr


def test_a_path_longer_than_path_max_in_an_ad_hoc_run_is_one_line(
    server: Server, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "workflow.yaml").write_text("name: deep\nsteps:\n  a: {run: 'true'}\n")
    fd = os.open(project, os.O_RDONLY)
    for n in range(25):  # about 5,000 characters: more than PATH_MAX
        name = f"{n:02d}" + "d" * 200
        os.mkdir(name, dir_fd=fd)
        deeper = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(os.open("f.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    os.close(fd)
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}
    ran = cli(tmp_path, "run", str(project / "workflow.yaml"), "--no-watch", **env)
    assert ran.returncode != 0
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert "cannot snapshot" in lines[0] and "File name too long" in lines[0]
    assert "cannot snapshot 00dddd" in lines[0] and f"in {project}:" in lines[0]  # where
    assert len(lines[0]) < 300 + len(str(project))  # shortened
    assert "unexpected" not in lines[0]
