"""Pipeline blueprints as a user meets them: `validate --expand` prints the imported nodes, a
published pipeline plans them (`etl__read`…), a version keeps the graph it was published with
after the blueprint file changes, and a blueprint alone is not deployable."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.harness import Server, cli

ETL = """\
kind: pipeline
name: etl
params:
  type: object
  properties:
    table: {type: string}
  required: [table]
nodes:
  read:
    kind: transform
    run: python3 read.py ${{ params.table }}
  write:
    kind: transform
    group: work
    run: python3 write.py
    from: [read]
inputs: {in: read}
outputs: {out: write}
replicas: {work: 2}
"""

PIPELINE = """\
kind: pipeline
name: pb-orders
nodes:
  src: {kind: source, run: gen}
  etl:
    uses: ./blueprints/etl.yaml
    with: {table: orders}
    from: [src]
  sink: {kind: sink, run: cat, from: [etl.out]}
"""


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


def _planned(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return re.findall(r"^  \+ (\S+): create", _ok(proc).stdout, flags=re.MULTILINE)


def test_a_published_pipeline_with_a_blueprint_plans_the_expanded_nodes(
    server: Server, home: Path, tmp_path: Path
) -> None:
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}
    work = tmp_path / "work"
    (work / "blueprints").mkdir(parents=True)
    (work / ".git").mkdir()  # the repository root: blueprints are read inside it
    blueprint = work / "blueprints" / "etl.yaml"
    blueprint.write_text(ETL)
    file = work / "pipeline.yaml"
    file.write_text(PIPELINE)

    shown = _ok(cli(home, "validate", "--expand", str(file)))
    assert list(yaml.safe_load(shown.stdout)["nodes"]) == ["src", "etl__read", "etl__write", "sink"]
    assert "# blueprint etl: blueprints/etl.yaml sha256:" in shown.stdout
    assert "ok (4 nodes)" in shown.stderr

    _ok(cli(home, "publish", str(file), **env))
    first = cli(home, "plan", "pb-prod", "--version", "pb-orders@1", **env)
    assert _planned(first) == ["src", "etl__read", "etl__write", "sink"], first.stdout
    assert "  + etl__write: create on pool default, 2 replicas" in first.stdout

    # the blueprint file changes: a new version; version 1 keeps the graph it was made with
    blueprint.write_text(ETL.replace("outputs: {out: write}", "outputs: {out: read}"))
    _ok(cli(home, "publish", str(file), **env))
    old = _ok(cli(home, "versions", "show", "pb-orders@1", **env)).stdout
    new = _ok(cli(home, "versions", "show", "pb-orders@2", **env)).stdout
    assert "- etl__write.out" in old and "- etl__read.out" in new
    again = cli(home, "plan", "pb-prod", "--version", "pb-orders@1", **env)
    assert _planned(again) == _planned(first)

    # a blueprint published alone is not a deployment: one line saying what to do
    _ok(cli(home, "publish", str(blueprint), **env))
    refused = cli(home, "plan", "pb-prod", "--version", "etl@1", **env)
    assert refused.returncode != 0 and refused.stderr.count("\n") == 1, refused.stderr
    assert "etl@1 is a pipeline blueprint" in refused.stderr
