"""A failed run tells the user which step failed and why, without a second command: each step
under its own status, and the last lines the failing step wrote to stderr, made safe for a
terminal."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.harness import cli

SPEC = r"""
name: failing
steps:
  E:
    run: |
      for i in $(seq 1 14); do echo "problem $i of 14" >&2; done
      echo "ordinary output"
      printf 'hostile \033[2J\033]0;pwned\007 \302\233 end\n' >&2
      exit 3
  F:
    run: echo fine
  G:
    needs: [E]
    run: echo never
"""


def _assert_summary(text: str) -> None:
    assert "failed: E; upstream_failed: G" in text
    assert "E stderr, last lines:" in text
    # the last ten stderr lines, in order: problems 6..14 and the hostile one
    shown = re.findall(r"problem (\d+) of 14", text)
    assert shown == [str(i) for i in range(6, 15)], text
    assert "ordinary output" not in text  # stdout is not part of it
    # the step's escape sequences are spelled out, never sent to the terminal
    assert "hostile \\x1b[2J\\x1b]0;pwned\\x07 \\x9b end" in text
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text


def test_a_failed_run_names_each_step_with_its_status_and_shows_the_stderr_tail(
    home: Path, tmp_path: Path
) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text(SPEC)
    proc = cli(home, "run", str(wf), "--no-watch")
    assert proc.returncode == 1, proc.stderr
    _assert_summary(proc.stdout)

    run_id = json.loads(cli(home, "runs", "list", "--json").stdout)[0]["id"]
    shown = cli(home, "runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    _assert_summary(shown.stdout)
    record = json.loads(cli(home, "runs", "show", run_id, "--json").stdout)
    assert record["error"] == "failed: E; upstream_failed: G"
    assert record["steps"]["E"]["stderr_tail"][-1] == "hostile \x1b[2J\x1b]0;pwned\x07 \x9b end"
    assert record["steps"]["G"]["stderr_tail"] == []
