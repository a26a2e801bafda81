"""`lockstep publish`, `tags`, `versions` and `run D@SELECTOR` as a user types them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import Server, cli

SPEC = """\
name: greet
params:
  type: object
  properties:
    who: {{type: string, default: {default}{extra}}}
steps:
  hello:
    run: echo "said=v{n} ${{{{ params.who }}}}" >> "$LOCKSTEP_OUTPUTS"
"""


def test_publish_promote_run_and_roll_back_from_the_cli(home: Path, tmp_path: Path) -> None:
    # a running server in the home: every command below talks to it (no engine start each)
    server = Server(home)
    server.start()
    try:
        _scenario(home, tmp_path)
    finally:
        server.stop()


def _scenario(home: Path, tmp_path: Path) -> None:
    file = tmp_path / "greet.yaml"
    file.write_text(SPEC.format(n=1, extra="", default="world"))
    first = cli(home, "publish", str(file), "-m", "first")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "1" and "definition greet created" in first.stderr
    again = cli(home, "publish", str(file))
    assert again.stdout.strip() == "1" and "already version 1" in again.stderr
    assert cli(home, "tags", "set", "greet", "$LIVE", "1").returncode == 0

    file.write_text(SPEC.format(n=2, extra=", maxLength: 3", default="bob"))
    assert cli(home, "publish", str(file)).stdout.strip() == "2"
    dry = cli(home, "tags", "set", "greet", "$LIVE", "2", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "breaking" in dry.stdout and "would move from version 1" in dry.stderr
    stale = cli(home, "tags", "set", "greet", "$LIVE", "2", "--expect", "2")
    assert stale.returncode == 1 and "points at version 1" in stale.stderr
    assert cli(home, "tags", "set", "greet", "$LIVE", "2", "--expect", "1").returncode == 0

    run = cli(home, "run", "greet@$LIVE", "-p", "who=bob", "--json")
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert (record["version"], record["selector"]) == (2, "greet@$LIVE")
    assert record["steps"]["hello"]["outputs"] == {"said": "v2 bob"}
    too_long = cli(home, "run", "greet", "-p", "who=alice")  # breaking: maxLength 3 now
    assert too_long.returncode == 2 and "who" in too_long.stderr

    assert cli(home, "tags", "set", "greet", "$LIVE", "1", "-m", "roll back").returncode == 0
    back = json.loads(cli(home, "run", "greet", "-p", "who=alice", "--json").stdout)
    assert back["version"] == 1 and back["steps"]["hello"]["outputs"] == {"said": "v1 alice"}

    history = json.loads(cli(home, "tags", "history", "greet", "--json").stdout)
    assert [(h["from"], h["to"]) for h in history] == [(None, 1), (1, 2), (2, 1)]
    assert history[-1]["reason"] == "roll back"
    diff = cli(home, "versions", "diff", "greet@1", "greet@2")
    assert "who" in diff.stdout and "1 step changed" in diff.stdout
    listed = json.loads(cli(home, "versions", "list", "greet", "--json").stdout)
    assert [(v["number"], v["tags"]) for v in listed] == [(1, "$LIVE"), (2, "")]
    shown = cli(home, "versions", "show", "greet@$LIVE")
    assert "greet version 1 [$LIVE]" in shown.stdout and "said=v1" in shown.stdout
    bad = cli(home, "run", "greet@../x")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
