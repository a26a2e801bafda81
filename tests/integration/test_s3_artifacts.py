"""Artifacts in an S3-compatible store (a real S3 API server on loopback): stored there,
placed for consumers and downloaded from there; a store that is down fails the step clearly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Server
from tests.s3 import CREDENTIALS, S3, free_port

SPEC = """\
name: to-s3
steps:
  make:
    run: |
      mkdir -p out && echo "hello s3" > out/a.txt && echo more > out/b.txt
      echo "big=$(head -c 70000 /dev/zero | tr '\\0' z)" >> "$LOCKSTEP_OUTPUTS"
    artifacts: {one: out/a.txt, all: out}
  use:
    needs: [make]
    inputs: {artifacts: [make.one]}
    run: echo "got=$(cat out/a.txt)" >> "$LOCKSTEP_OUTPUTS"
"""


@pytest.fixture(scope="module")
def s3_server_home(tmp_path_factory: pytest.TempPathFactory, s3: S3) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("s3-home"),
        LOCKSTEP_ARTIFACTS=f"s3://{s3.bucket}/runs",
        LOCKSTEP_S3_ENDPOINT=s3.endpoint,
        **CREDENTIALS,
    )
    srv.start()
    yield srv
    srv.stop()


def test_artifacts_live_in_s3(s3_server_home: Server, s3: S3) -> None:
    server = s3_server_home
    run = server.run_and_wait(SPEC)
    assert run["status"] == "succeeded", run["steps"]
    assert run["steps"]["use"]["outputs"] == {"got": "hello s3"}
    keys = s3.keys()
    for name in ("one", "all"):
        assert f"runs/artifacts/default/{run['id']}/make/1/{name}" in keys
    # an output stored by reference lives there too
    assert f"runs/outputs/default/{run['id']}/make/1/0.json" in keys
    assert not (server.home / "blobs" / "artifacts").exists()  # nothing kept locally
    assert not (server.home / "blobs" / "outputs").exists()
    body = server.http.get(f"/runs/{run['id']}/artifacts/make/one")
    assert body.content == b"hello s3\n"


def test_a_store_that_is_down_fails_the_step_clearly(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    server = Server(
        tmp_path / "home",
        LOCKSTEP_ARTIFACTS="s3://artifacts/runs",
        LOCKSTEP_S3_ENDPOINT=dead,
        **CREDENTIALS,
    )
    (tmp_path / "home").mkdir()
    server.start()
    try:
        run = server.run_and_wait(SPEC, timeout=120)  # bounded retries, not a hang
        assert run["status"] == "failed"
        error = run["steps"]["make"]["error"]
        assert error.startswith("artifact store s3://artifacts/runs failed storing")
        assert "retry the run once it is back" in error
        assert run["steps"]["use"]["status"] == "upstream_failed"
    finally:
        server.stop()
