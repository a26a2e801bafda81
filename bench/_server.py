"""A real `lockstep server` for the benchmarks, and one timed run through its API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent / "lockstep"


def start_server(home: Path, **env: str) -> tuple[subprocess.Popen[bytes], httpx.Client, dict]:
    """Start a server on ``home``; returns it, a client for project 'default' with the admin
    token, and its server.json (url, temporal address)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSTEP_")}
    environ.update(LOCKSTEP_HOME=str(home), **env)
    server = subprocess.Popen(
        [str(BIN), "server", "--port", "0"],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    info, token = home / "server.json", home / "admin.token"
    deadline = time.monotonic() + 60
    while not (info.exists() and token.exists()):
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("lockstep server did not start")
        time.sleep(0.05)
    meta = json.loads(info.read_text())
    http = httpx.Client(
        base_url=f"{meta['url']}/api/v1/projects/default",
        headers={"authorization": f"Bearer {token.read_text().strip()}"},
        timeout=60,
    )
    return server, http, meta


def timed_run(http: httpx.Client, spec: str, poll_s: float = 0.01) -> float:
    """Submit ``spec`` and wait; seconds from the run's creation to its recorded finish."""
    run_id = http.post("/runs", json={"spec": spec}).raise_for_status().json()["id"]
    while True:
        run = http.get(f"/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(poll_s)
    if run["status"] != "succeeded":
        raise SystemExit(f"bench run {run_id} {run['status']}: {run['error']}")
    created = datetime.fromisoformat(run["created_at"])
    return (datetime.fromisoformat(run["finished_at"]) - created).total_seconds()
