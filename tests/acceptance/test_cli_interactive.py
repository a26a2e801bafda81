"""What a person at a terminal sees: the live view, and Ctrl-C of an embedded run."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
from pathlib import Path

from tests.harness import BIN, cli, env_for, pid_alive, wait_for


def test_watch_shows_each_step_with_status_and_attempts_on_a_terminal(
    home: Path, tmp_path: Path
) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text(
        "name: watched\nsteps:\n"
        "  first: {run: 'echo one'}\n"
        "  second: {needs: [first], run: '[ $LOCKSTEP_ATTEMPT -ge 2 ]', retry: {attempts: 2, backoff: 0.1s}}\n"
    )
    # a pseudo-terminal, so lockstep picks the live view by itself as it would for a person
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN), "run", str(wf)],
        env=env_for(home, COLUMNS="120"),
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    assert proc.wait(60) == 0
    os.close(leader)
    text = screen.decode(errors="replace")
    assert "watched" in text
    for expected in ("first", "second", "succeeded"):
        assert expected in text
    assert "lockstep runs logs" in text


def test_ctrl_c_cancels_an_embedded_run_and_kills_its_step(home: Path, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    wf = tmp_path / "workflow.yaml"
    wf.write_text(
        f"name: interrupted\nsteps:\n  long:\n    run: echo $$ > {pidfile}; sleep 300\n"
        "finally:\n  note:\n    run: echo cleaned\n"
    )
    proc = subprocess.Popen(
        [str(BIN), "run", str(wf), "--no-watch"],
        env=env_for(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(
        lambda: pidfile.exists() and pidfile.read_text().strip(),
        timeout=60,
        what="the step to start",
    )
    step_pid = int(pidfile.read_text())
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "cancelling run" in err
    assert not pid_alive(step_pid)
    runs = json.loads(cli(home, "runs", "list", "--json").stdout)
    assert [r["status"] for r in runs] == ["cancelled"]
    shown = json.loads(cli(home, "runs", "show", runs[0]["id"], "--json").stdout)
    assert shown["steps"]["long"]["status"] == "cancelled"
    assert shown["steps"]["note"]["status"] == "succeeded"
