"""Steps that attack the worker through the files they control, as process steps and as
container steps on a real Podman: links, FIFOs and committed symlinks never make the worker
read, quote or write anything outside the step's own directories."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitrepo import Repo
from tests.harness import Server
from tests.podman import Podman


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, podman: Podman) -> Iterator[Server]:
    """A server whose worker runs both process steps and containers."""
    srv = Server(
        tmp_path_factory.mktemp("hostile-home"),
        heartbeat_timeout=5,
        LOCKSTEP_CONTAINER_HOST=podman.socket,
        LOCKSTEP_GIT_ALLOW_FILE="true",
    )
    srv.start()
    yield srv
    srv.stop()


class Canaries:
    """Files outside every workspace that no step may get the worker to read or change."""

    def __init__(self, root: Path, home: Path) -> None:
        self.canary = root / "canary.txt"
        self.canary.write_text(f"CANARY-{secrets.token_hex(8)}")
        self.outside = root / "outside"
        self.outside.mkdir()
        (self.outside / "x.txt").write_text(self.canary.read_text())
        self.key = home / "secret.key"
        self.before = {p: p.read_bytes() for p in (self.canary, self.key, self.outside / "x.txt")}

    def words(self) -> list[str]:
        """What must never show up in a record, an error or a log."""
        key = self.key.read_text().strip()
        return [self.canary.read_text(), key, key[:20]]

    def untouched(self) -> bool:
        now = {p: p.read_bytes() for p in self.before}
        return now == self.before and sorted(self.outside.iterdir()) == [self.outside / "x.txt"]


@pytest.fixture
def canaries(worker: Server, tmp_path: Path) -> Canaries:
    # a secret makes sure the home's key exists
    assert worker.http.put("/secrets/HOSTILE", json={"value": "v"}).status_code in (200, 201, 204)
    assert (worker.home / "secret.key").is_file()
    return Canaries(tmp_path, worker.home)


def _leaks(worker: Server, run: dict[str, object], canaries: Canaries) -> list[str]:
    """Every canary word found in the run's record, its logs or its artifacts list."""
    seen = json.dumps(run) + json.dumps(worker.logs(str(run["id"])))
    seen += worker.http.get(f"/runs/{run['id']}/artifacts").text
    return [w for w in canaries.words() if w in seen]


def _box(kind: str, podman: Podman) -> str:
    return f"    image: {podman.image}\n" if kind == "container" else ""


@pytest.mark.parametrize("kind", ["process", "container"])
def test_links_and_fifos_in_a_steps_files_reach_nothing_outside(
    worker: Server, podman: Podman, canaries: Canaries, kind: str
) -> None:
    box = _box(kind, podman)
    far = "../" * 30  # more than enough to climb from the outputs directory to /
    attacks = {
        "out-abs": f'ln -sf {canaries.canary} "$LOCKSTEP_OUTPUTS"',
        "out-key": f'ln -sf {canaries.key} "$LOCKSTEP_OUTPUTS"',
        "out-rel": f'ln -sf {far}{str(canaries.key).lstrip("/")} "$LOCKSTEP_OUTPUTS"',
        "out-fifo": 'rm -f "$LOCKSTEP_OUTPUTS" && mkfifo "$LOCKSTEP_OUTPUTS"',
        "art-file": f"ln -s {canaries.canary} leak",
        "art-dir": f"ln -s {canaries.outside} d",
        "art-glob": f"ln -s {canaries.outside} d",
        "art-rel": f"ln -s {far}{str(canaries.outside).lstrip('/')} d",
    }
    declared = {
        "art-file": "{leak: leak}",
        "art-dir": "{d: d}",
        "art-glob": '{g: "d/*"}',
        "art-rel": "{g: d/x.txt}",
    }
    if kind == "process":  # a container does not see the canary to link it
        attacks["out-hard"] = f'rm "$LOCKSTEP_OUTPUTS" && ln {canaries.canary} "$LOCKSTEP_OUTPUTS"'
    spec = f"name: hostile-{kind}\nsteps:\n"
    for step, script in attacks.items():
        spec += f"  {step}:\n{box}    run: {json.dumps(script)}\n"
        if step in declared:
            spec += f"    artifacts: {declared[step]}\n"
    spec += (
        f"  in-link:\n{box}    with: {{a: 1}}\n"
        f"    run: {json.dumps(f'ln -sf {canaries.canary} $LOCKSTEP_INPUT && echo ok=1 > $LOCKSTEP_OUTPUTS')}\n"
    )
    run = worker.run_and_wait(spec, timeout=180)
    steps = run["steps"]
    for step in [s for s in attacks if s.startswith("out-")]:
        assert steps[step]["status"] == "failed", (step, steps[step])
        assert "$LOCKSTEP_OUTPUTS must be a regular file" in steps[step]["error"], step
    for step in ("art-file", "art-dir", "art-glob", "art-rel"):
        assert steps[step]["status"] == "failed", (step, steps[step])
        assert "is a link pointing outside" in steps[step]["error"], (step, steps[step]["error"])
    # the worker never wrote through the step's link to the input file
    assert steps["in-link"]["status"] == "succeeded", steps["in-link"]
    assert steps["in-link"]["outputs"] == {"ok": "1"}
    assert _leaks(worker, run, canaries) == []
    assert worker.http.get(f"/runs/{run['id']}/artifacts").json() == []
    assert canaries.untouched()


@pytest.mark.parametrize("kind", ["process", "container"])
def test_an_artifact_is_never_placed_through_a_committed_symlink(
    worker: Server, podman: Podman, canaries: Canaries, tmp_path: Path, kind: str
) -> None:
    linked = Repo(tmp_path / "linked")
    (linked.work / "out").symlink_to(canaries.outside)  # committed: a link out of the repo
    linked.commit({"README": "vendored"})
    linked.push("main")
    box = _box(kind, podman)
    spec = f"""
name: through-{kind}
sources:
  - {{repo: "{linked.url}", ref: main, path: vendor}}
steps:
  make:
{box}    run: rm vendor/out && mkdir vendor/out && echo pwned > vendor/out/x.txt
    artifacts: {{f: vendor/out/x.txt, d: vendor/out}}
  use-file:
{box}    needs: [make]
    inputs: {{artifacts: [make.f]}}
    run: cat vendor/out/x.txt
  use-dir:
{box}    needs: [make]
    inputs: {{artifacts: [make.d]}}
    run: cat vendor/out/x.txt
"""
    run = worker.run_and_wait(spec, timeout=180)
    steps = run["steps"]
    assert steps["make"]["status"] == "succeeded", steps["make"]
    for step in ("use-file", "use-dir"):
        assert steps[step]["status"] == "failed", steps[step]
        assert "would land outside the workspace" in steps[step]["error"], steps[step]
        assert (
            "'vendor/out" in steps[step]["error"] and "goes through a link" in steps[step]["error"]
        )
    assert canaries.untouched()  # no pwned.txt, no x.txt rewritten
