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
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._server import start_server, timed_run  # noqa: E402
from tests.podman import podman_service  # noqa: E402 - the tests' recipe for Podman


def lockstep_once(http: httpx.Client, image: str) -> float:
    spec = f"name: bench-box\nsteps:\n  a:\n    image: {image}\n    run: ['true']\n"
    return timed_run(http, spec)


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
            (work / "home").mkdir()
            server, http, _ = start_server(work / "home", LOCKSTEP_CONTAINER_HOST=podman.socket)
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
