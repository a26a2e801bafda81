"""`lockstep approvals list|show|approve|reject` as a user types them, against a running
server: a run waits at an approval, the CLI shows it, approves it with typed input, and a
second run is rejected with a comment."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import Server, cli, wait_for

SPEC = """\
name: release
steps:
  gate:
    approval:
      message: "Ship it?"
      input:
        type: object
        properties: {percent: {type: integer}, note: {type: string}}
  ship:
    needs: [gate]
    run: echo "shipping ${{ steps.gate.outputs.percent }}"
"""


def _waiting(home: Path) -> list[dict[str, object]]:
    listed = cli(home, "approvals", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, object]] = json.loads(listed.stdout)
    return rows


def test_approve_and_reject_from_the_cli(home: Path, tmp_path: Path) -> None:
    server = Server(home)
    server.start()
    try:
        file = tmp_path / "release.yaml"
        file.write_text(SPEC)
        first = server.submit(SPEC)["id"]
        wait_for(lambda: len(_waiting(home)) == 1, what="the approval to wait")
        table = cli(home, "approvals", "list", COLUMNS="200")
        assert first in table.stdout and "0/1" in table.stdout and "role:operator" in table.stdout

        shown = cli(home, "approvals", "show", first, "gate")
        assert shown.returncode == 0 and "Ship it?" in shown.stdout, shown.stdout

        early = cli(home, "approvals", "approve", first, "ship", "-p", "percent=5")
        assert early.returncode != 0 and early.stderr.count("\n") == 1, early.stderr
        assert f"step 'ship' of run {first} is not waiting for approval: it is pending" in (
            early.stderr
        )
        bad = cli(home, "approvals", "approve", first, "gate", "-p", "percent=lots")
        assert bad.returncode != 0 and bad.stderr.count("\n") == 1, bad.stderr
        ok = cli(home, "approvals", "approve", first, "gate", "-p", "percent=25", "-m", "go")
        assert ok.returncode == 0, ok.stderr
        assert f"gate of run {first}: approved" in ok.stderr
        run = server.wait(first)
        assert run["status"] == "succeeded" and run["steps"]["gate"]["outputs"] == {"percent": 25}
        # the decision, with its input, in `approvals show` and in the run's record
        at = run["steps"]["gate"]["decisions"][0]["at"]
        line = f'admin approved at {at}: go; input {{"percent": 25}}'
        decided = cli(home, "approvals", "show", first, "gate", COLUMNS="200")
        assert line in decided.stdout, decided.stdout
        record = cli(home, "runs", "show", first, COLUMNS="200")
        assert record.returncode == 0 and f"gate {line}" in record.stdout, record.stdout

        second = server.submit(SPEC)["id"]
        wait_for(lambda: len(_waiting(home)) == 1, what="the second approval to wait")
        no = cli(home, "approvals", "reject", second, "gate", "-m", "not on a friday")
        assert no.returncode == 0 and "rejected" in no.stderr, no.stderr
        assert server.wait(second)["steps"]["gate"]["error"] == "rejected by admin: not on a friday"

        again = cli(home, "approvals", "approve", second, "gate")
        assert again.returncode != 0 and "it is rejected" in again.stderr
        assert again.stderr.count("\n") == 1
        everything = json.loads(cli(home, "approvals", "list", "--all", "--json").stdout)
        assert {(r["run_id"], r["status"]) for r in everything} == {
            (first, "approved"),
            (second, "rejected"),
        }
    finally:
        server.stop()
