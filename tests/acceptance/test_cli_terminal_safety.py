"""What a step prints never drives the user's terminal: escape sequences (window title, clear
screen, OSC 52 clipboard writes, links), C1 controls and direction marks are spelled out in
human output; `--raw` and `--json` keep the bytes for those who ask."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import cli

# OSC 0 title, CSI clear screen, OSC 52 clipboard write, OSC 8 link, C1 CSI, RLO, BEL
HOSTILE = (
    "\x1b]0;owned\x07 \x1b[2J\x1b[H \x1b]52;c;ZWNobyBwd25lZA==\x07 "
    "\x1b]8;;http://evil.example/\x1b\\link\x1b]8;;\x1b\\ \x9b31m \u202eevil"
)
RAW_MARKS = ("\x1b", "\x07", "\x9b", "\u202e")


def _hostile_run(home: Path, tmp_path: Path) -> str:
    wf = tmp_path / "workflow.yaml"
    wf.write_text(
        "name: noisy\n"
        "steps:\n"
        "  noisy:\n"
        "    run: [python3, -c, 'import sys; t = sys.argv[1]; print(t); "
        'print(t, file=sys.stderr); open(__import__("os").environ["LOCKSTEP_OUTPUTS"], "w")'
        '.write(__import__("json").dumps({"shown": t})); sys.exit(3)\', '
        f"{json.dumps(HOSTILE)}]\n"
    )
    proc = cli(home, "run", str(wf), "--no-watch")
    assert proc.returncode == 1, proc.stderr
    assert not any(m in proc.stdout + proc.stderr for m in RAW_MARKS), repr(proc.stdout)
    listed = json.loads(cli(home, "runs", "list", "--json").stdout)
    return str(listed[0]["id"])


def test_logs_and_records_spell_out_control_characters(home: Path, tmp_path: Path) -> None:
    run_id = _hostile_run(home, tmp_path)
    for args in (
        ["runs", "logs", run_id],
        ["runs", "logs", run_id, "noisy"],
        ["runs", "show", run_id],
    ):
        proc = cli(home, *args)
        assert proc.returncode == 0, proc.stderr
        shown = proc.stdout + proc.stderr
        assert not any(m in shown for m in RAW_MARKS), (args, repr(shown))
        assert "\\x1b]52;c;ZWNobyBwd25lZA==" in shown and "\\u202eevil" in shown, (args, shown)
    logs = cli(home, "runs", "logs", run_id, "noisy").stdout
    assert logs.count("\\x1b]0;owned\\x07") == 2  # stdout and stderr, both spelled out

    raw = cli(home, "runs", "logs", run_id, "noisy", "--raw").stdout
    assert raw.count(HOSTILE) == 2
    as_json = cli(home, "runs", "logs", run_id, "noisy", "--json").stdout.splitlines()
    assert [json.loads(line)["text"] for line in as_json if "owned" in line] == [HOSTILE] * 2
