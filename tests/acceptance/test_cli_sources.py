"""`lockstep run` with `sources:` on the embedded engine: the server's URL policy decides."""

from __future__ import annotations

import json
from pathlib import Path

from tests.gitrepo import Repo
from tests.harness import cli


def test_file_sources_need_the_server_setting(home: Path, tmp_path: Path) -> None:
    lib = Repo(tmp_path / "lib")
    sha = lib.commit({"lib.txt": "from-lib"})
    lib.push("main")
    work = tmp_path / "wf"
    work.mkdir()
    (work / "workflow.yaml").write_text(
        "name: cli-sources\n"
        f"sources:\n  - {{repo: '{lib.url}', ref: main, path: lib}}\n"
        'steps:\n  read:\n    run: echo "lib=$(cat lib/lib.txt)" >> "$LOCKSTEP_OUTPUTS"\n'
    )
    refused = cli(home, "run", str(work / "workflow.yaml"))
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "uses file://, which is disabled" in lines[0], refused.stderr

    allowed = cli(home, "run", str(work / "workflow.yaml"), "--json", LOCKSTEP_GIT_ALLOW_FILE="1")
    assert allowed.returncode == 0, allowed.stderr
    run = json.loads(allowed.stdout)
    assert run["steps"]["read"]["outputs"] == {"lib": "from-lib"}
    assert run["sources"] == [{"repo": lib.url, "ref": "main", "sha": sha, "path": "lib"}]
