"""The README's first command: `make demo` runs the bundled example and exits cleanly."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_demo_prints_outputs_and_where_to_look_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    demo_home = tmp_path / "demo-home"
    proc = subprocess.run(
        ["make", "--no-print-directory", "demo", f"DEMO_HOME={demo_home}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in proc.stdout
    assert "verdict = ok" in proc.stdout
    assert "drift = " in proc.stdout
    assert "Look again:" in proc.stdout and "lockstep runs logs" in proc.stdout
    left = subprocess.run(["pgrep", "-f", str(demo_home)], capture_output=True)
    assert left.returncode == 1, left.stdout
