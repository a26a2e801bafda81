"""Where state lives: the project's home from any subfolder, the server of a login context,
the home's own server, two runs at once, and reads that create nothing."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.harness import BIN, Server, cli, env_for, wait_for

HELLO = "name: hello\nsteps:\n  a:\n    run: echo hi\n"


def _in(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``lockstep ARGS`` run in ``cwd`` with no LOCKSTEP_HOME, as a user in a project would."""
    full = env_for(cwd / "unused", **env)
    if "LOCKSTEP_HOME" not in env:
        del full["LOCKSTEP_HOME"]
    return subprocess.run(
        [str(BIN), *args], env=full, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_every_subfolder_of_a_project_sees_its_runs(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "jobs").mkdir(parents=True)
    (project / "docs" / "deep").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / "jobs" / "workflow.yaml").write_text(HELLO)

    ran = _in(project / "jobs", "run", "workflow.yaml", "--json")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["id"]
    # the first run in a git work tree makes the home at its top, not in the subfolder
    assert (project / ".lockstep" / "lockstep.db").exists()
    assert not (project / "jobs" / ".lockstep").exists()

    listed = _in(project / "docs" / "deep", "runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    assert not (project / "docs" / "deep" / ".lockstep").exists()
    # an explicit LOCKSTEP_HOME still wins
    other = _in(project / "docs", "runs", "list", LOCKSTEP_HOME=str(tmp_path / "elsewhere"))
    assert "no runs yet" in other.stdout


def test_reads_on_a_fresh_directory_create_nothing_and_start_no_engine(tmp_path: Path) -> None:
    fresh, scratch = tmp_path / "fresh", tmp_path / "tmp"
    fresh.mkdir()
    scratch.mkdir()
    listed = _in(fresh, "runs", "list", TMPDIR=str(scratch))
    assert listed.returncode == 0, listed.stderr
    assert "no runs yet" in listed.stdout
    shown = _in(fresh, "runs", "show", "r-unknown", TMPDIR=str(scratch))
    assert shown.returncode == 1
    assert "not found" in shown.stderr and len(shown.stderr.strip().splitlines()) == 1
    assert os.listdir(fresh) == []  # no home made to read it
    assert os.listdir(scratch) == []  # and nothing left behind, no engine history anywhere


def test_login_makes_a_context_that_plain_commands_use_until_logout(
    server: Server, home: Path, tmp_path: Path
) -> None:
    run_id = server.run_and_wait(HELLO)["id"]
    cfg = {"LOCKSTEP_CONFIG_DIR": str(tmp_path / "cfg")}
    login = cli(home, "login", server.url, input=server.token + "\n", **cfg)
    assert login.returncode == 0, login.stderr
    assert "logout" in login.stderr

    shown = cli(home, "runs", "show", run_id, "--json", **cfg)  # no LOCKSTEP_URL, no token
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == run_id
    assert server.url in cli(home, "context", "show", **cfg).stdout
    assert not (home / "lockstep.db").exists()  # nothing went to the local home
    refused = cli(home, "runs", "list", LOCKSTEP_TOKEN="lst_wrong", **cfg)
    assert refused.returncode == 1
    assert server.url in refused.stderr  # an error says which server answered

    out = cli(home, "logout", **cfg)
    assert out.returncode == 0, out.stderr
    local = cli(home, "runs", "show", run_id, **cfg)
    assert local.returncode == 1 and "not found" in local.stderr
    assert "local" in cli(home, "context", "show", **cfg).stdout
    use = cli(home, "context", "use", server.url, **cfg)  # the token was forgotten
    assert use.returncode == 2 and f"lockstep login {server.url}" in use.stderr


def test_lockstep_url_of_the_homes_own_server_needs_no_token(server: Server) -> None:
    run_id = server.run_and_wait(HELLO)["id"]
    for url in (server.url, server.url.replace("127.0.0.1", "localhost")):
        shown = cli(server.home, "runs", "show", run_id, LOCKSTEP_URL=url)
        assert shown.returncode == 0, shown.stderr


def _gated(tmp_path: Path, name: str) -> tuple[Path, Path]:
    gate = tmp_path / f"{name}.gate"
    wf = tmp_path / f"{name}.yaml"
    wf.write_text(
        f"name: {name}\nsteps:\n  a:\n    run: while [ ! -e {gate} ]; do sleep 0.1; done\n"
    )
    return wf, gate


def _start(home: Path, wf: Path, out: Path) -> subprocess.Popen[str]:
    with out.open("w") as sink:
        return subprocess.Popen(
            [str(BIN), "run", str(wf), "--no-watch"],
            env=env_for(home),
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )


def test_two_runs_at_once_share_one_engine(home: Path, tmp_path: Path) -> None:
    (wf1, gate1), (wf2, gate2) = _gated(tmp_path, "first"), _gated(tmp_path, "second")
    out1, out2 = tmp_path / "first.out", tmp_path / "second.out"
    first = _start(home, wf1, out1)
    second = None
    try:
        wait_for(lambda: (home / "api.sock").exists(), timeout=60, what="the first run's engine")
        second = _start(home, wf2, out2)
        wait_for(lambda: "started" in _text(out2), timeout=60, what="the second run joins")
        gate1.touch()  # the first run ends while the second's is still going
        wait_for(lambda: "waiting for 1 run" in _text(out1), timeout=60, what="first serves on")
        assert first.poll() is None
        gate2.touch()
        assert second.wait(60) == 0, _text(out2)
        assert first.wait(60) == 0, _text(out1)
    finally:
        gate1.touch()
        gate2.touch()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert not (home / "api.sock").exists()
    runs = json.loads(cli(home, "runs", "list", "--json").stdout)
    assert sorted(r["workflow"] for r in runs) == ["first", "second"]
    assert {r["status"] for r in runs} == {"succeeded"}


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
