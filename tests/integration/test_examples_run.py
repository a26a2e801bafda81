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


def test_the_readme_has_runnable_snippets() -> None:
    assert len(README_SNIPPETS) >= 2  # the first workflow, fan-out


@pytest.mark.parametrize(
    "snippet", README_SNIPPETS, ids=lambda s: s.split("name: ", 1)[1].split()[0]
)
def test_readme_snippet_runs(server: Server, snippet: str) -> None:
    params = {"who": "readme"} if "who:" in snippet else {}
    run = server.run_and_wait(snippet, params)
    assert run["status"] == "succeeded", run
    if "greeting" in snippet:
        assert run["outputs"] == {"greeting": "hello readme"}
