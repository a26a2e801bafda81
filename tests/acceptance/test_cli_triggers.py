"""`lockstep triggers list|pause|resume` as a user types them, against a running server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

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

        table = cli(home, "triggers", "list", COLUMNS="200")
        assert table.returncode == 0, table.stderr
        rows = [line.split("│")[1:-1] for line in table.stdout.splitlines() if "nightly" in line]
        cells = {cols[1].strip(): [c.strip() for c in cols] for cols in rows}
        # the cron is read in its time zone: the next 02:30 in Paris, shown in UTC
        paris = ZoneInfo("Europe/Paris")
        now = datetime.now(paris)
        at = now.replace(hour=2, minute=30, second=0, microsecond=0)
        at = at if at > now else (at + timedelta(days=1)).replace(hour=2, minute=30)
        expected = f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
        assert cells["build"][2:] == [
            "1", "cron 30 2 * * * (Europe/Paris)", "active", expected, "-", "-"
        ]  # fmt: skip
        assert cells["tidy"][2:] == ["1", "every 3600s", "disabled", "-", "-", "-"]

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
