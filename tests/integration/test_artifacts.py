"""Artifacts: stored after a step succeeds, placed where they were for the steps that ask for
them, listed with size and SHA-256, downloaded as a stream; nothing escapes the workspace."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from tests.harness import Server, cli

PRODUCE = """\
name: produce
steps:
  make:
    run: |
      mkdir -p out reports/deep logs
      printf '{"score": 7}' > out/result.json
      echo "summary" > reports/summary.md
      echo "deep" > reports/deep/more.md
      echo a > logs/a.txt; echo b > logs/b.txt; echo skip > logs/c.log
    artifacts:
      result: out/result.json
      reports: reports
      txts: "logs/*.txt"
  use:
    needs: [make]
    inputs: {artifacts: [make.result, make.reports, make.txts]}
    run: |
      echo "score=$(cat out/result.json)" >> "$LOCKSTEP_OUTPUTS"
      echo "deep=$(cat reports/deep/more.md)" >> "$LOCKSTEP_OUTPUTS"
      echo "txts=$(ls logs | tr '\\n' ' ')" >> "$LOCKSTEP_OUTPUTS"
"""


def test_artifacts_flow_downstream_and_download_exactly(server: Server, tmp_path: Path) -> None:
    run = server.run_and_wait(PRODUCE)
    assert run["status"] == "succeeded", run["steps"]
    assert run["steps"]["use"]["outputs"] == {
        "score": '{"score": 7}',  # a key=value line is the text as written
        "deep": "deep",
        "txts": "a.txt b.txt ",
    }
    listed = {a["name"]: a for a in server.http.get(f"/runs/{run['id']}/artifacts").json()}
    assert set(listed) == {"result", "reports", "txts"}
    assert listed["result"]["kind"] == "file" and listed["result"]["paths"] == ["out/result.json"]
    assert listed["txts"]["paths"] == ["logs/a.txt", "logs/b.txt"]
    body = server.http.get(f"/runs/{run['id']}/artifacts/make/result")
    assert body.content == b'{"score": 7}'
    assert hashlib.sha256(body.content).hexdigest() == listed["result"]["sha256"]
    assert body.headers["x-lockstep-sha256"] == listed["result"]["sha256"]
    tar = server.http.get(f"/runs/{run['id']}/artifacts/make/reports")
    assert len(tar.content) == listed["reports"]["size"]
    with tarfile.open(fileobj=io.BytesIO(tar.content), mode="r:gz") as archive:
        assert "reports/deep/more.md" in archive.getnames()
    # and from the CLI
    shown = cli(server.home, "runs", "artifacts", run["id"])
    assert "reports" in shown.stdout and listed["result"]["sha256"][:12] in shown.stdout
    got = cli(
        server.home, "runs", "download", run["id"], "make", "result", "-o", str(tmp_path / "r.json")
    )
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "r.json").read_bytes() == b'{"score": 7}'


@pytest.mark.parametrize(
    ("step", "says"),
    [
        (
            "    run: 'true'\n    artifacts: {gone: missing/file.txt}\n",
            "nothing matches 'missing/file.txt'",
        ),
        (
            "    run: ln -s /etc/passwd leak\n    artifacts: {leak: leak}\n",
            "'leak' is a link pointing outside",
        ),
        (
            "    run: mkdir d && ln -s /etc d/passwd\n    artifacts: {dir: d}\n",
            "'d/passwd' is a link pointing outside",
        ),
    ],
)
def test_a_bad_artifact_fails_the_step_and_stores_nothing(
    server: Server, step: str, says: str
) -> None:
    run = server.run_and_wait("name: badart\nsteps:\n  a:\n" + step)
    assert run["status"] == "failed"
    assert says in run["steps"]["a"]["error"]
    assert server.http.get(f"/runs/{run['id']}/artifacts").json() == []


@pytest.mark.parametrize(
    ("fragment", "says"),
    [
        ("    artifacts: {x: ../../etc/passwd}\n", "contains '..'"),
        ("    artifacts: {x: /etc/passwd}\n", "must be relative"),
        ("    artifacts: {x: '%2e%2e%2fetc'}\n", "contains '%'"),
        ("    artifacts: {'../x': out}\n", "artifacts"),
    ],
)
def test_hostile_artifact_paths_are_refused_at_validation(
    server: Server, fragment: str, says: str
) -> None:
    spec = "name: hostile\nsteps:\n  a:\n    run: 'true'\n" + fragment
    resp = server.http.post("/runs", json={"spec": spec})
    assert resp.status_code == 422 and says in resp.text


def test_a_consumer_must_name_a_declared_upstream_artifact(server: Server) -> None:
    spec = (
        "name: refs\nsteps:\n  a:\n    run: 'true'\n    artifacts: {report: r.txt}\n"
        "  b:\n    needs: [a]\n    inputs: {artifacts: [a.reprot]}\n    run: 'true'\n"
        "  c:\n    inputs: {artifacts: [a.report]}\n    run: 'true'\n"
    )
    resp = server.http.post("/runs", json={"spec": spec})
    assert resp.status_code == 422
    detail = " ".join(d["message"] for d in resp.json()["diagnostics"])
    assert "declares no artifact 'reprot'; did you mean 'report'?" in detail
    assert "step 'a' must be upstream of 'c'" in detail


@pytest.mark.parametrize("name", ["..%2f..%2fetc%2fpasswd", "%2e%2e", "a%00b"])
def test_download_names_cannot_traverse(server: Server, name: str) -> None:
    run = server.run_and_wait(PRODUCE)
    resp = server.http.get(f"/runs/{run['id']}/artifacts/make/{name}")
    assert resp.status_code in (404, 422)
