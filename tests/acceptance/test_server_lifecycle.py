"""`lockstep server`: one per home, clean shutdown, and the CLI talking to it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.harness import Server, cli, pid_alive, wait_for


def test_second_server_on_same_home_refuses_and_ctrl_c_stops_everything(home: Path) -> None:
    srv = Server(home)
    srv.start()
    try:
        temporal = srv.temporal_pid
        assert temporal is not None
        second = cli(home, "server", "--port", "0", timeout=30)
        assert second.returncode == 1
        assert "already in use by lockstep server" in second.stderr
        # the CLI finds the running server by itself and goes through its API
        wf = home / "wf.yaml"
        wf.write_text("name: via-server\nsteps:\n  a:\n    run: echo hi\n")
        proc = cli(home, "run", str(wf), "--json")
        assert proc.returncode == 0, proc.stderr
        run = json.loads(proc.stdout)
        assert srv.run(run["id"])["status"] == "succeeded"
    finally:
        srv.stop()
    assert srv.proc is not None and srv.proc.returncode == 0
    wait_for(lambda: not pid_alive(temporal), timeout=10, what="temporal to stop")
    assert not (home / "server.json").exists()


def test_lockstep_url_submits_to_that_server(home: Path, server: Server, tmp_path: Path) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text("name: remote\nsteps:\n  a:\n    run: echo remote > out.txt; cat out.txt\n")
    proc = cli(home, "run", str(wf), "--json", LOCKSTEP_URL=server.url, LOCKSTEP_TOKEN=server.token)
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    assert server.run(run["id"])["status"] == "succeeded"
    assert not (home / "lockstep.db").exists()  # nothing local: it all went to the server
    follow = cli(
        home, "runs", "logs", run["id"], "-f", LOCKSTEP_URL=server.url, LOCKSTEP_TOKEN=server.token
    )
    assert "remote" in follow.stdout
    assert not (tmp_path / "out.txt").exists()
    assert sorted(os.listdir(tmp_path)) == ["home", "workflow.yaml"]


def test_runs_rerun_reproduces_an_ad_hoc_run(home: Path, server: Server, tmp_path: Path) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text(
        "name: again\nparams: {type: object, properties: {n: {type: integer, default: 1}}}\n"
        'steps:\n  a:\n    run: echo "n=${{ params.n }}" >> "$LOCKSTEP_OUTPUTS"\n'
    )
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}
    first = json.loads(cli(home, "run", str(wf), "-p", "n=7", "--json", **env).stdout)
    wf.write_text("name: again\nsteps:\n  a: {run: 'exit 1'}\n")  # the file changes later
    proc = cli(home, "runs", "rerun", first["id"], "--json", **env)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert again["steps"]["a"]["outputs"] == {"n": "7"}
    assert (again["rerun_of"], again["rerun_policy"]) == (first["id"], "same")
    latest = cli(home, "runs", "rerun", first["id"], "--latest", **env)
    assert latest.returncode == 2 and "needs one" in latest.stderr  # a request refused
