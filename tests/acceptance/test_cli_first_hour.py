"""What a new user runs into in the first hour: each mistake is one line saying what to do
(exit 2), ids are whole and can be shortened, scripts can wait for a run, and a fan-out's
items have their own logs. All against the session's server, as `lockstep` is typed."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from lockstep import __version__
from tests.gitrepo import Repo
from tests.harness import BIN, Server, cli, env_for, pid_alive, wait_for

FAN = """\
name: first-hour-fan
steps:
  sim:
    for_each: [a, b, c]
    run: echo "sim of ${{ item }}"; echo "warn ${{ item }}" >&2
"""
FAILS = "name: first-hour-fails\nsteps:\n  boom:\n    run: echo nope; exit 3\n"
PASSES = "name: first-hour-passes\nsteps:\n  fine:\n    run: echo fine\n"


def _env(server: Server) -> dict[str, str]:
    return {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a refused command, which leaks no internals."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for leak in ("Traceback", "String should", "pattern", "^", "unexpected", "please report"):
        assert leak not in lines[0], lines[0]
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "stdin", "says"),
    [
        (
            ["runs", "list", "--status", "bogus"],
            None,
            "unknown run status 'bogus'; use one of: queued, running, succeeded, failed, cancelled",
        ),
        (["tags", "set", "some-def", "LIVE", "1"], None, "like $LIVE; in a shell write it in "),
        (["secrets", "set", "EMPTY"], "", "the value of secret EMPTY is empty; pipe it in"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    server: Server, home: Path, args: list[str], stdin: str | None, says: str
) -> None:
    proc = cli(home, *args, input=stdin, **_env(server))
    assert proc.returncode == 2, proc.stderr
    assert says in _one_line(proc)


def test_messages_name_the_setting_or_package_to_fix(server: Server, home: Path) -> None:
    cased = cli(home, "runs", "list", "--status", "Failed", "--json", **_env(server))
    assert cased.returncode == 0, cased.stderr
    assert all(r["status"] == "failed" for r in json.loads(cased.stdout))
    plain = cli(home, "repos", "add", "http://example.com/x.git", "--name", "plain", **_env(server))
    assert "LOCKSTEP_GIT_ALLOW_HTTP=1 for the server and every worker" in _one_line(plain)
    # no server: the embedded control plane opens the database named in the environment
    pg = cli(home, "runs", "list", LOCKSTEP_DATABASE_URL="postgresql://u:p@127.0.0.1:1/db")
    assert pg.returncode == 1 and pg.stderr.count("\n") == 1
    assert "cannot open the metadata database (connection failed:" in pg.stderr
    assert "check LOCKSTEP_DATABASE_URL and that its server is running" in pg.stderr
    # a database whose driver is not installed: the package to install is named
    my = cli(home, "runs", "list", LOCKSTEP_DATABASE_URL="mysql://u:p@127.0.0.1:1/db")
    assert my.returncode == 1
    assert "names a mysql database, but its driver is missing" in _one_line(my)


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        (("runs", "list"), "LOCKSTEP_CONTAINER_USER", "bad user!"),
        (("worker", "--pool", "p"), "LOCKSTEP_HEARTBEAT_TIMEOUT", "soon"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    home: Path, command: tuple[str, ...], variable: str, value: str
) -> None:
    proc = cli(home, *command, **{variable: value})
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"{variable} is invalid:" in proc.stderr and "fix or unset it" in proc.stderr
    assert "pydantic" not in proc.stderr and "please report" not in proc.stderr


def test_version_and_shell_completion(home: Path) -> None:
    version = cli(home, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"lockstep {__version__}"
    # named, not guessed from the process tree (there may be no shell above this process)
    script = cli(home, "completion", "bash")
    assert script.returncode == 0 and "_lockstep_completion" in script.stdout
    assert "complete -o default -F _lockstep_completion lockstep" in script.stdout
    wrong = cli(home, "completion", "tcsh")
    assert wrong.returncode == 2 and "tcsh" in wrong.stderr


def test_ids_never_wrap_and_a_unique_prefix_names_a_run(server: Server, home: Path) -> None:
    ran = server.run_and_wait(PASSES)
    listed = cli(home, "runs", "list", "--limit", "5", COLUMNS="80", **_env(server))
    assert listed.returncode == 0, listed.stderr
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80, listed.stdout
    assert ran["id"] in listed.stdout  # whole, on one line

    prefix = ran["id"][:-3]
    shown = cli(home, "runs", "show", prefix, "--json", **_env(server))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == ran["id"]
    logs = cli(home, "runs", "logs", prefix, "fine", **_env(server))
    assert logs.returncode == 0 and "fine" in logs.stdout

    server.run_and_wait(PASSES)  # at least two runs start with 'r'
    ambiguous = cli(home, "runs", "show", "r", **_env(server))
    assert ambiguous.returncode == 2
    assert "run id 'r' is ambiguous" in _one_line(ambiguous)

    # a prefix never reaches into another project
    assert server.api.post("/projects", json={"name": "first-hour-other"}).status_code == 201
    theirs = server.api.post("/projects/first-hour-other/runs", json={"spec": PASSES}).json()
    unknown = cli(home, "runs", "show", theirs["id"][:-3], **_env(server))
    assert unknown.returncode == 1
    assert f"run '{theirs['id'][:-3]}' not found" in _one_line(unknown)


def test_runs_wait_and_logs_follow_exit_with_the_outcome(
    server: Server, home: Path, tmp_path: Path
) -> None:
    codes = {}
    for name, spec in (("fails", FAILS), ("passes", PASSES)):
        wf = tmp_path / name / "workflow.yaml"
        wf.parent.mkdir()
        wf.write_text(spec)
        started = cli(home, "run", str(wf), "--detach", **_env(server))
        assert started.returncode == 0, started.stderr
        run_id = started.stdout.strip()
        waited = cli(home, "runs", "wait", run_id, **_env(server))
        followed = cli(home, "runs", "logs", "-f", run_id, **_env(server))
        codes[name] = (waited.returncode, waited.stdout.split(), followed.returncode)
    assert codes["fails"][0] == 1 and codes["fails"][1][1] == "failed"
    assert codes["passes"][0] == 0 and codes["passes"][1][1] == "succeeded"
    assert codes["fails"][2] == 1 and codes["passes"][2] == 0


def test_fan_out_items_have_their_logs_labelled(server: Server, home: Path) -> None:
    run = server.run_and_wait(FAN)
    assert run["status"] == "succeeded", run["error"]
    every = cli(home, "runs", "logs", run["id"], **_env(server))
    assert every.returncode == 0, every.stderr
    for i, item in enumerate("abc"):
        assert f"sim[{i}]  sim of {item}" in every.stdout
        assert f"sim[{i}] !warn {item}" in every.stdout  # stderr lines are marked '!'
    one_step = cli(home, "runs", "logs", run["id"], "sim", **_env(server))
    assert one_step.stdout == every.stdout
    streamed = cli(home, "runs", "logs", "-f", run["id"], **_env(server))  # the SSE stream
    assert streamed.returncode == 0 and streamed.stdout == every.stdout
    one_item = cli(home, "runs", "logs", run["id"], "sim[1]", "--json", **_env(server))
    lines = [json.loads(line) for line in one_item.stdout.splitlines()]  # JSON Lines
    said = {(ln["step"], ln["stream"], ln["text"]) for ln in lines if ln["stream"] != "sys"}
    assert said == {
        ("sim[1]", "out", "sim of b"),
        ("sim[1]", "err", "warn b"),
    }


def test_instances_run_refuses_bad_params_like_run(
    server: Server, home: Path, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "hour")
    repo.commit(
        {
            "workflow.yaml": "name: hour\nparams:\n  type: object\n  properties:\n"
            "    n: {type: integer, default: 1}\nsteps:\n  a:\n    run: 'true'\n"
        }
    )
    repo.push("main")
    env = _env(server)
    assert cli(home, "repos", "add", repo.url, "--name", "hour", **env).returncode == 0
    assert cli(home, "repos", "scan", "hour", **env).returncode == 0
    made = cli(
        home, "instances", "create", "hour-main", "--definition", "hour", "--ref", "main", **env
    )
    assert made.returncode == 0, made.stderr
    via_instances = cli(home, "instances", "run", "hour-main", "-p", "n=lots", **env)
    via_run = cli(home, "run", "hour-main", "-p", "n=lots", **env)
    assert via_instances.returncode == via_run.returncode == 2
    assert _one_line(via_instances) == _one_line(via_run)


def test_ctrl_c_with_a_server_cancels_the_run_too(server: Server, tmp_path: Path) -> None:
    pidfile, said = tmp_path / "pid", tmp_path / "stderr"
    wf = tmp_path / "wf" / "workflow.yaml"
    wf.parent.mkdir()
    wf.write_text(
        f"name: first-hour-ctrl-c\nsteps:\n  long:\n    run: echo $$ > {pidfile}; sleep 300\n"
    )
    with said.open("w") as stderr:
        proc = subprocess.Popen(
            [str(BIN), "run", str(wf), "--no-watch"],
            env=env_for(tmp_path, **_env(server)),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        # the step runs and the command knows its run: Ctrl-C now is what a user does
        wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=60, what="step")
        wait_for(lambda: "started" in said.read_text(), timeout=60, what="the run's id")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, said.read_text()
    assert "cancelling run" in said.read_text()
    assert "cancelled" in out
    step_pid = int(pidfile.read_text())
    wait_for(lambda: not pid_alive(step_pid), timeout=30, what="the step to be killed")
