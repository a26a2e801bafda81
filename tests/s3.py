"""A real S3 API server for tests: moto's server on loopback, with a bucket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx

from tests.harness import wait_for

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "lockstep-test",
    "AWS_SECRET_ACCESS_KEY": "lockstep-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    def keys(self) -> list[str]:
        client = boto3.client("s3", endpoint_url=self.endpoint, **_creds())
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]


def _creds() -> dict[str, str]:
    return {
        "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "region_name": CREDENTIALS["AWS_DEFAULT_REGION"],
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _up(endpoint: str) -> bool:
    try:
        return httpx.get(endpoint, timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


@contextmanager
def s3_server(workdir: Path) -> Iterator[S3]:
    """moto_server on a free loopback port; fails (never skips) if it cannot start."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = Path(sys.executable).parent / "moto_server"
    with (workdir / "moto.log").open("wb") as log:
        proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **CREDENTIALS},
            start_new_session=True,
        )
    try:
        wait_for(lambda: proc.poll() is None and _up(endpoint), timeout=30)
        boto3.client("s3", endpoint_url=endpoint, **_creds()).create_bucket(Bucket="artifacts")
        yield S3(endpoint=endpoint, bucket="artifacts")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
