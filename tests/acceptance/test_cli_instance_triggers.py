"""An instance's own triggers from the CLI: given at `instances create --triggers FILE`,
listed with their instance by `triggers list`, paused by their `INSTANCE/ID`, replaced by
`instances triggers NAME FILE` (refused whole, in one line, when one is wrong), removed by an
empty mapping."""

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
"""


def _rows(home: Path) -> dict[str, list[str]]:
    table = cli(home, "triggers", "list", COLUMNS="200")
    assert table.returncode == 0, table.stderr
    rows = [line.split("│")[1:-1] for line in table.stdout.splitlines() if "nightly" in line]
    return {cols[2].strip(): [c.strip() for c in cols] for cols in rows}


def test_instance_triggers_from_the_cli(home: Path, tmp_path: Path) -> None:
    server = Server(home)
    server.start()
    try:
        file = tmp_path / "nightly.yaml"
        file.write_text(SPEC)
        assert cli(home, "publish", str(file)).returncode == 0
        assert cli(home, "tags", "set", "nightly", "$LIVE", "1").returncode == 0
        own = tmp_path / "own.yaml"
        own.write_text("early:\n  cron: '0 3 * * *'\nbuild:\n  enabled: false\n")
        made = cli(
            home, "instances", "create", "night", "--definition", "nightly", "--ref", "$LIVE",
            "--triggers", str(own),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr

        rows = _rows(home)  # definition │ instance │ trigger │ version │ fires │ state …
        assert rows["build"][1:6] == ["-", "build", "1", "cron 30 2 * * *", "active"]
        assert rows["night/early"][1:6] == ["night", "night/early", "1", "cron 0 3 * * *", "active"]
        # the file's build, inherited and switched off for this instance alone
        assert rows["night/build"][1:6] == ["night", "night/build", "1", "cron 30 2 * * *", "disabled"]  # fmt: skip

        paused = cli(home, "triggers", "pause", "night/early")
        assert paused.returncode == 0, paused.stderr
        assert "trigger night/early of nightly: paused by user:admin" in paused.stderr

        bad = tmp_path / "bad.yaml"
        bad.write_text("early:\n  cron: '0 25 * * *'\n")
        refused = cli(home, "instances", "triggers", "night", str(bad))
        assert refused.returncode != 0
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert "instance 'night': triggers.early.cron: cron of trigger 'early'" in refused.stderr
        listed = json.loads(cli(home, "instances", "list", "--json").stdout)
        assert listed[0]["triggers"] == {
            "early": {"cron": "0 3 * * *"},
            "build": {"enabled": False},
        }
        other = cli(
            home, "instances", "create", "other", "--definition", "nightly", "--ref", "$LIVE",
            "--triggers", str(bad),
        )  # fmt: skip
        assert other.returncode != 0 and "triggers.early.cron" in other.stderr
        assert [i["name"] for i in json.loads(cli(home, "instances", "list", "--json").stdout)] == [
            "night"
        ]

        empty = tmp_path / "empty.yaml"
        empty.write_text("{}\n")
        removed = cli(home, "instances", "triggers", "night", str(empty))
        assert removed.returncode == 0 and "instance night: triggers none" in removed.stderr
        assert set(_rows_plain(home)) == {"build"}
    finally:
        server.stop()


def _rows_plain(home: Path) -> list[str]:
    """The trigger ids listed (no instance column once no instance has triggers)."""
    got = json.loads(cli(home, "triggers", "list", "--json").stdout)
    return [str(r["trigger"]) for r in got]
