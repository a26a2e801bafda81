"""The README's first command: `make demo` on a fresh copy of the project runs the bundled
example, exits cleanly and leaves nothing behind that git would pick up."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def _fresh_copy(dest: Path) -> Path:
    """The project as a newcomer's clone would hold it: the files git knows of (committed or
    not yet, minus ignored ones), in a repository of their own with one commit."""
    listed = _git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        src = ROOT / name
        if not src.is_file():  # deleted in the work tree, not yet committed
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "fresh")
    return dest


def test_make_demo_in_a_fresh_copy_prints_outputs_and_leaves_a_clean_tree(
    tmp_path: Path,
) -> None:
    clone = _fresh_copy(tmp_path / "clone")
    proc = subprocess.run(
        ["make", "--no-print-directory", "demo"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "succeeded" in proc.stdout
    assert "verdict = ok" in proc.stdout
    assert "drift = " in proc.stdout
    assert "Look again:" in proc.stdout and "lockstep runs logs" in proc.stdout
    # the demo's home (database, Temporal history, logs, the secret key) is ignored
    home = clone / ".lockstep-demo"
    assert (home / "lockstep.db").exists() and (home / "secret.key").exists()
    assert _git(clone, "status", "--porcelain", "--untracked-files=all") == ""
    left = subprocess.run(["pgrep", "-f", str(clone)], capture_output=True)
    assert left.returncode == 1, left.stdout
