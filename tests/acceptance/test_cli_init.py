"""`lockstep init` as a user types it: every starter is written, validates and runs as written
(the embedded engine; the container one on Podman; the approval one on a server, approved
from the CLI), and an existing workflow.yaml is never overwritten without --force."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from lockstep.cli.init import TEMPLATES
from tests.harness import Server, cli
from tests.podman import Podman

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "src/lockstep/templates"


def _init(home: Path, where: Path, *args: str) -> Path:
    done = cli(home, "init", *args, str(where))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {where / 'workflow.yaml'}")
    validated = cli(home, "validate", "workflow.yaml", cwd=where)
    assert validated.returncode == 0 and ": ok (" in validated.stdout, validated.stderr
    return where / "workflow.yaml"


def _run(home: Path, where: Path, **env: str) -> dict[str, Any]:
    done = cli(home, "run", "workflow.yaml", "--json", cwd=where, **env)
    assert done.returncode == 0, done.stdout + done.stderr
    run: dict[str, Any] = json.loads(done.stdout)
    assert run["status"] == "succeeded", run["steps"]
    return run


def test_list_names_every_starter_with_what_it_shows(home: Path) -> None:
    listed = cli(home, "init", "--list")
    assert listed.returncode == 0, listed.stderr
    rows = dict(line.split(maxsplit=1) for line in listed.stdout.splitlines())
    assert set(rows) == {"chain", "fan-out", "container", "scheduled", "approval"}
    assert rows["chain"].endswith("(default)")
    # every shipped file is a listed starter, and every starter has its file
    assert {p.stem for p in TEMPLATE_DIR.glob("*.yaml")} == set(TEMPLATES)


def test_the_default_starter_is_a_chain_named_after_its_directory(
    home: Path, tmp_path: Path
) -> None:
    wf = _init(home, tmp_path / "nightly-etl")
    text = wf.read_text()
    assert re.search(r"^name: nightly-etl$", text, re.MULTILINE)
    assert text.startswith("# A chain")  # commented for a reader
    run = _run(home, wf.parent)
    assert run["outputs"] == {"message": "hello, world"}
    assert run["steps"]["fetch"]["outputs"] == {"result": {"greeting": "hello", "count": 3}}


@pytest.mark.parametrize(
    ("template", "outputs"),
    [
        ("fan-out", {"shouted": ["0:PARIS", "1:LIMA", "2:OSLO"]}),
        ("scheduled", {}),  # its trigger only counts on a server; a plain run runs it now
    ],
)
def test_a_starter_runs_as_written(
    home: Path, tmp_path: Path, template: str, outputs: dict[str, Any]
) -> None:
    wf = _init(home, tmp_path / "Not A Name!", "--template", template)
    assert re.search(rf"^name: {template}$", wf.read_text(), re.MULTILINE)  # kept
    run = _run(home, wf.parent)
    assert run["outputs"] == outputs
    assert all(step["status"] == "succeeded" for step in run["steps"].values())


@pytest.fixture
def template_image(podman: Podman) -> Iterator[str]:
    """The container starter's image, as no registry is reachable here: the test image under
    that name, unless Podman has a real one already (then that one runs)."""
    name = re.search(r"image: (\S+)", (TEMPLATE_DIR / "container.yaml").read_text())
    assert name is not None
    image = name.group(1)
    client = docker.DockerClient(base_url=podman.socket)
    try:
        tagged = False
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            repository, tag = image.rsplit(":", 1)
            assert client.api.tag(podman.image, repository, tag)
            tagged = True
        yield image
        if tagged:
            client.api.remove_image(image)
    finally:
        client.close()


def test_the_container_starter_runs_on_podman(
    home: Path, tmp_path: Path, podman: Podman, template_image: str
) -> None:
    wf = _init(home, tmp_path / "boxed", "-t", "container")
    assert f"image: {template_image}" in wf.read_text()
    run = _run(home, wf.parent, LOCKSTEP_CONTAINER_HOST=podman.socket)
    assert run["outputs"] == {"kernel": "Linux"}
    assert run["steps"]["measure"]["outputs"]["result"]["files"] == 1  # workflow.yaml


def test_the_approval_starter_waits_and_is_approved_from_the_cli(
    server: Server, home: Path, tmp_path: Path
) -> None:
    wf = _init(home, tmp_path / "gate", "-t", "approval")
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}
    started = cli(home, "run", "workflow.yaml", "--detach", cwd=wf.parent, **env)
    assert started.returncode == 0, started.stderr
    run_id = started.stdout.strip()
    waiting = server.wait(run_id, until=lambda r: r["steps"]["release"]["status"] == "waiting")
    assert waiting["status"] == "running"
    bad = cli(home, "approvals", "approve", run_id, "release", "-p", "percent=0", **env)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1, bad.stderr
    ok = cli(home, "approvals", "approve", run_id, "release", "-p", "percent=25", **env)
    assert ok.returncode == 0, ok.stderr
    run = server.wait(run_id)
    assert run["status"] == "succeeded", run["steps"]
    lines = [ln["text"] for ln in server.logs(run_id, "ship") if ln["stream"] == "out"]
    assert lines == ["shipping v1.2.3 to 25%"]


def test_init_never_overwrites_without_force(home: Path, tmp_path: Path) -> None:
    wf = tmp_path / "workflow.yaml"
    wf.write_text("name: mine\nsteps:\n  a: {run: echo mine}\n")
    refused = cli(home, "init", "-t", "fan-out", str(tmp_path))
    assert refused.returncode == 1
    assert refused.stderr == f"error: {wf} already exists; pass --force to overwrite it\n"
    assert wf.read_text().startswith("name: mine")  # untouched
    forced = cli(home, "init", "-t", "fan-out", "--force", str(tmp_path))
    assert forced.returncode == 0, forced.stderr
    assert "for_each:" in wf.read_text()


def test_an_unknown_template_is_one_line(home: Path, tmp_path: Path) -> None:
    done = cli(home, "init", "-t", "dag", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr == (
        "error: no template 'dag'; choose one of: chain, fan-out, container, scheduled, "
        "approval (lockstep init --list)\n"
    )
    assert not (tmp_path / "workflow.yaml").exists()


def test_init_writes_into_the_current_directory_by_default(home: Path, tmp_path: Path) -> None:
    done = cli(home, "init", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "workflow.yaml").is_file()
