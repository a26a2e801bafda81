"""`lockstep triggers list|pause|resume` as a user types them, against a running server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import Server, cli

SPEC = """\
name: nightly
steps:
  a:
    run: "true"
triggers:
  build:
    cron: '30 2 * * *'
    timezone: Europe/Paris
  tidy:
    every: 1h
    enabled: false
"""


def test_list_pause_and_resume_triggers_from_the_cli(home: Path, tmp_path: Path) -> None:
    server = Server(home)
    server.start()
    try:
        file = tmp_path / "nightly.yaml"
        file.write_text(SPEC)
        assert cli(home, "publish", str(file)).returncode == 0
        assert cli(home, "tags", "set", "nightly", "$LIVE", "1").returncode == 0

        table = cli(home, "triggers", "list")
        assert table.returncode == 0, table.stderr
        rows = [line.split("│")[1:-1] for line in table.stdout.splitlines() if "nightly" in line]
        cells = {cols[1].strip(): [c.strip() for c in cols] for cols in rows}
        assert cells["build"][2:] == ["schedule", "1", "cron 30 2 * * *", "active"]
        assert cells["tidy"][2:] == ["schedule", "1", "every 3600s", "disabled"]
        assert "(Europe/Paris)" in table.stdout

        paused = cli(home, "triggers", "pause", "nightly", "build")
        assert paused.returncode == 0, paused.stderr
        assert "trigger build of nightly: paused by user:admin" in paused.stderr
        rows = json.loads(cli(home, "triggers", "list", "-d", "nightly", "--json").stdout)
        assert {r["trigger"]: r["paused_by"] for r in rows} == {"build": "user:admin", "tidy": None}
        resumed = cli(home, "triggers", "resume", "nightly", "build")
        assert resumed.returncode == 0 and "nightly: active" in resumed.stderr

        unknown = cli(home, "triggers", "pause", "nightly", "weekly")
        assert unknown.returncode != 0
        assert unknown.stderr.count("\n") == 1 and "'weekly' of 'nightly' is not registered" in (
            unknown.stderr
        )
    finally:
        server.stop()
