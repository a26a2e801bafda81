"""A container step through lockstep against a bare `podman run --rm` of the same image and
command (the floor), in one invocation, on one Podman.

Starts its own `podman system service` on a private socket (building the busybox test image
if missing, as the tests do) and a real `lockstep server` whose worker uses it, then times:
  * `podman run --rm IMAGE true`, N times (the floor: the podman CLI and its runtime);
  * a one-step lockstep run of `image: IMAGE, run: [true]`, N times, from submit to the
    run's recorded finish (API, engine, recorder, workspace and container included);
and prints medians and the ratio.

    python bench/container_step.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.podman import podman_service  # noqa: E402 - the tests' recipe for Podman

BIN = Path(sys.executable).parent / "lockstep"


def start_server(home: Path, socket_url: str) -> tuple[subprocess.Popen[bytes], httpx.Client]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKSTEP_")}
    env.update(LOCKSTEP_HOME=str(home), LOCKSTEP_CONTAINER_HOST=socket_url)
    server = subprocess.Popen(
        [str(BIN), "server", "--port", "0"],
        env=env,
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
    url = json.loads(info.read_text())["url"]
    http = httpx.Client(
        base_url=f"{url}/api/v1/projects/default",
        headers={"authorization": f"Bearer {token.read_text().strip()}"},
        timeout=60,
    )
    return server, http


def lockstep_once(http: httpx.Client, image: str) -> float:
    spec = f"name: bench-box\nsteps:\n  a:\n    image: {image}\n    run: ['true']\n"
    run_id = http.post("/runs", json={"spec": spec}).raise_for_status().json()["id"]
    while True:
        run = http.get(f"/runs/{run_id}").json()
        if run["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.01)
    if run["status"] != "succeeded":
        raise SystemExit(f"bench run {run_id} {run['status']}: {run['error']}")
    created = datetime.fromisoformat(run["created_at"])
    return (datetime.fromisoformat(run["finished_at"]) - created).total_seconds()


def podman_once(socket_url: str, image: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        ["podman", "--url", socket_url, "run", "--rm", image, "true"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lockstep-bench-box-"))
    try:
        (work / "podman").mkdir()
        with podman_service(work / "podman") as podman:
            server, http = start_server(work / "home", podman.socket)
            try:
                lockstep_once(http, podman.image)  # warm-up: imports, sandbox, image lookup
                podman_once(podman.socket, podman.image)
                floor = [podman_once(podman.socket, podman.image) for _ in range(args.runs)]
                ours = [lockstep_once(http, podman.image) for _ in range(args.runs)]
            finally:
                http.close()
                server.send_signal(signal.SIGINT)
                server.wait(60)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    f, o = statistics.median(floor), statistics.median(ours)
    print(f"\n{args.runs} runs each of `true` in {podman.image}")
    print(f"{'what':<40}{'median':>9}{'min':>9}{'max':>9}")
    for name, median, times in (
        ("podman run --rm (floor)", f, floor),
        ("lockstep container step (end to end)", o, ours),
    ):
        print(f"{name:<40}{median:>8.3f}s{min(times):>8.3f}s{max(times):>8.3f}s")
    print(f"{'ratio (lockstep / floor)':<40}{o / f:>8.2f}x")


if __name__ == "__main__":
    main()
