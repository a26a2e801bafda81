"""schemathesis against the live OpenAPI document: no 5xx, no response outside its schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import Server

pytestmark = pytest.mark.slow
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def test_the_api_survives_generated_requests(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home)  # its own server: generated calls create projects, users, tokens
    server.start()
    try:
        proc = subprocess.run(
            [
                str(SCHEMATHESIS),
                "run",
                f"{server.url}/api/v1/openapi.json",
                "--header",
                f"Authorization: Bearer {server.token}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                # every operation, 3 generated requests each (~110 operations)
                "--max-examples",
                "3",
                # per-operation phases only: the whole run stays under two minutes here
                "--phases",
                "examples,fuzzing",
                "--seed",
                "1",
                "--request-timeout",
                "30",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,  # its cache stays out of the working tree
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SCHEMATHESIS_HOOKS": ""},
        )
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        # and the server is still healthy afterwards (the fuzzer may have revoked the admin's
        # own token through DELETE /tokens/{id}, which is its right)
        assert server.api.get("/health").json()["status"] == "ok"
    finally:
        server.stop()
