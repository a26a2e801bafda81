"""Every bundled example and every workflow snippet in the README actually runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.harness import Server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*/workflow.yaml"))
README_SNIPPETS = [
    block
    for block in re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    if block.lstrip().startswith(("# workflow.yaml", "name:"))
]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_bundled_example_runs(server: Server, path: Path) -> None:
    run = server.run_and_wait(path.read_text(), workdir=path.parent, timeout=120)
    assert run["status"] == "succeeded", run


def test_the_readme_has_runnable_snippets(server: Server) -> None:
    assert README_SNIPPETS
    for snippet in README_SNIPPETS:
        run = server.run_and_wait(snippet, {"who": "readme"})
        assert run["status"] == "succeeded", run
        assert run["outputs"] == {"greeting": "hello readme"}
