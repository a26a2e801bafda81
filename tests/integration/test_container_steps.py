"""Container steps through the whole engine, on a real Podman: the checkout at /workspace,
outputs, env and secrets inside, honest failures, digests, and no container left behind."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from lockstep.executors.container_runtime import MANAGED_LABEL
from tests.harness import BIN, Server, env_for, wait_for
from tests.podman import Podman


@pytest.fixture(scope="module")
def boxed(tmp_path_factory: pytest.TempPathFactory, podman: Podman) -> Iterator[Server]:
    """A server whose worker runs containers on the test Podman."""
    srv = Server(
        tmp_path_factory.mktemp("boxed-home"),
        heartbeat_timeout=5,
        LOCKSTEP_CONTAINER_HOST=podman.socket,
    )
    srv.start()
    yield srv
    srv.stop()


def _ours(podman: Podman, **labels: str) -> list[dict[str, Any]]:
    client = docker.DockerClient(base_url=podman.socket)
    try:
        wanted = [f"{MANAGED_LABEL}=1"] + [f"lockstep.{k}={v}" for k, v in labels.items()]
        found: list[dict[str, Any]] = client.api.containers(all=True, filters={"label": wanted})
        return found
    finally:
        client.close()


def test_a_container_step_sees_the_workspace_env_and_secrets(
    boxed: Server, podman: Podman, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_text("from the checkout\n")
    assert boxed.http.put("/secrets/BOX_TOKEN", json={"value": "s3cr3t-box"}).status_code in (
        200,
        201,
        204,
    )
    spec = f"""
name: boxed
params:
  type: object
  properties: {{who: {{type: string, default: "a b; $(id)"}}}}
steps:
  inside:
    image: {podman.image}
    env:
      WHO: ${{{{ params.who }}}}
      TOKEN: ${{{{ secrets.BOX_TOKEN }}}}
    network: none
    run: |
      echo "read=$(cat in.txt)" >> "$LOCKSTEP_OUTPUTS"
      echo "who=$WHO" >> "$LOCKSTEP_OUTPUTS"
      echo "pwd=$(pwd)" >> "$LOCKSTEP_OUTPUTS"
      echo "nets=$(ls /sys/class/net | tr '\\n' ' ')" >> "$LOCKSTEP_OUTPUTS"
      echo "token is $TOKEN"
      echo to-stderr >&2
      echo made > made.txt
  argv:
    image: {podman.image}
    needs: [inside]
    run: [sh, -c, 'echo "n=$#" >> "$LOCKSTEP_OUTPUTS"', x, "${{{{ params.who }}}}"]
"""
    run = boxed.run_and_wait(spec, workdir=tmp_path)
    assert run["status"] == "succeeded", run["steps"]
    out = run["steps"]["inside"]["outputs"]
    assert out["read"] == "from the checkout"
    assert out["who"] == "a b; $(id)"  # exact bytes, no shell parsed them
    assert out["pwd"] == "/workspace"
    assert out["nets"].split() == ["lo"]  # network: none
    assert run["steps"]["argv"]["outputs"] == {"n": "1"}
    attempt = run["steps"]["inside"]["history"][0]
    assert attempt["image_digest"].startswith("sha256:")
    lines = boxed.logs(run["id"], "inside")
    texts = [(line["stream"], line["text"]) for line in lines]
    assert ("out", "token is ***") in texts and ("err", "to-stderr") in texts
    assert not (tmp_path / "made.txt").exists()  # the attempt had its own copy
    assert _ours(podman, run=run["id"]) == []


def test_a_container_steps_stdout_is_its_result(boxed: Server, podman: Podman) -> None:
    spec = f"""
name: boxed-result
steps:
  measure:
    image: {podman.image}
    run: |
      echo "starting" >&2
      echo "{{\\"pwd\\": \\"$(pwd)\\", \\"n\\": $(echo 1 2 3 | wc -w)}}"
    result: json
  report:
    needs: [measure]
    image: {podman.image}
    run: echo "n was ${{{{ steps.measure.outputs.result.n }}}}"
    result: text
  broken:
    image: {podman.image}
    run: echo "[1, 2"
    result: json
    continue_on_error: true
"""
    run = boxed.run_and_wait(spec)
    assert run["status"] == "succeeded", run["steps"]
    assert run["steps"]["measure"]["outputs"] == {"result": {"pwd": "/workspace", "n": 3}}
    assert run["steps"]["report"]["outputs"] == {"result": "n was 3"}
    assert run["steps"]["broken"]["status"] == "failed"
    assert run["steps"]["broken"]["error"] == (
        "step 'broken' declares 'result: json' and its stdout is not JSON (line 2 column 1: "
        "Expecting ',' delimiter); print one JSON value, and log to stderr"
    )
    lines = [(line["stream"], line["text"]) for line in boxed.logs(run["id"], "measure")]
    assert ("err", "starting") in lines and ("out", '{"pwd": "/workspace", "n": 3}') in lines
    assert _ours(podman, run=run["id"]) == []


def test_container_steps_run_as_a_non_root_user_unless_the_step_names_one(
    boxed: Server, podman: Podman, tmp_path: Path
) -> None:
    (tmp_path / "in.txt").write_text("from the checkout\n")
    spec = f"""
name: users
steps:
  default:
    image: {podman.image}
    run: |
      echo "uid=$(id -u)" >> "$LOCKSTEP_OUTPUTS"
      echo changed >> in.txt && echo "wrote=$(tail -n 1 in.txt)" >> "$LOCKSTEP_OUTPUTS"
    artifacts: {{changed: in.txt}}
  imaged:
    image: {podman.user_image}
    run: echo "uid=$(id -u)" >> "$LOCKSTEP_OUTPUTS"
  explicit:
    image: {podman.image}
    user: "1000:1000"
    run: echo "uid=$(id -u)" >> "$LOCKSTEP_OUTPUTS"
"""
    run = boxed.run_and_wait(spec, workdir=tmp_path)
    assert run["status"] == "succeeded", run["steps"]
    assert run["steps"]["default"]["outputs"] == {"uid": "65534", "wrote": "changed"}
    assert run["steps"]["imaged"]["outputs"] == {"uid": "4321"}
    assert run["steps"]["explicit"]["outputs"] == {"uid": "1000"}
    body = boxed.http.get(f"/runs/{run['id']}/artifacts/default/changed")
    assert body.status_code == 200 and body.text == "from the checkout\nchanged\n"


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (
            "    image: {image}\n    resources: {{memory: 32Mi}}\n    run: tail /dev/zero\n",
            "killed: out of memory (limit 32Mi",
        ),
        (
            "    image: localhost/lockstep-test/nope:1\n    pull: never\n    run: 'true'\n",
            "image not found: localhost/lockstep-test/nope:1 (pull policy never)",
        ),
        ("    image: {image}\n    run: exit 3\n", "exited with code 3"),
        (
            "    image: {image}\n    timeout: 1s\n    run: trap '' TERM; sleep 60\n",
            "timed out after 1s",
        ),
    ],
)
def test_container_failures_are_honest_and_leave_nothing(
    boxed: Server, podman: Podman, step: str, error: str
) -> None:
    spec = "name: boxfail\nsteps:\n  a:\n" + step.format(image=podman.image)
    run = boxed.run_and_wait(spec, timeout=120)
    assert run["status"] == "failed"
    assert error in run["steps"]["a"]["error"], run["steps"]["a"]
    assert _ours(podman, run=run["id"]) == []


def test_cancel_stops_and_removes_the_container(boxed: Server, podman: Podman) -> None:
    spec = f"name: boxcancel\nsteps:\n  a:\n    image: {podman.image}\n    run: sleep 300\n"
    run_id = boxed.submit(spec)["id"]
    wait_for(lambda: len(_ours(podman, run=run_id)) == 1, timeout=60)
    assert boxed.http.post(f"/runs/{run_id}/cancel").status_code == 200
    run = boxed.wait(run_id, timeout=60)
    assert run["status"] == "cancelled"
    assert _ours(podman, run=run_id) == []


def test_a_moved_image_tag_is_reported_on_the_next_run(boxed: Server, podman: Podman) -> None:
    tag = "localhost/lockstep-test/moving:1"
    subprocess.run(["podman", "tag", podman.image, tag], check=True)
    spec = f"name: moving\nsteps:\n  a:\n    image: {tag}\n    run: ['true']\n"
    first = boxed.run_and_wait(spec)["steps"]["a"]["history"][0]
    subprocess.run(["podman", "tag", podman.entrypoint_image, tag], check=True)
    second = boxed.run_and_wait(spec)["steps"]["a"]["history"][0]
    assert first["image_digest"] != second["image_digest"]
    assert second["image_changed_from"] == first["image_digest"]
    third = boxed.run_and_wait(spec)["steps"]["a"]["history"][0]
    assert third["image_changed_from"] is None


def test_a_worker_removes_what_a_dead_worker_left(
    boxed: Server, podman: Podman, tmp_path: Path
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    client = docker.DockerClient(base_url=podman.socket)
    try:
        labels = {
            MANAGED_LABEL: "1",
            "lockstep.host": socket.gethostname(),
            "lockstep.pid": str(dead.pid),
            "lockstep.run": "left-behind",
        }
        container = client.containers.run(
            podman.image, ["sleep", "300"], labels=labels, detach=True
        )
    finally:
        client.close()
    assert len(_ours(podman, run="left-behind")) == 1
    worker = subprocess.Popen(
        [str(BIN), "worker", "--pool", "reaper"],
        env=env_for(boxed.home, LOCKSTEP_CONTAINER_HOST=podman.socket),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: _ours(podman, run="left-behind") == [], timeout=60)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    assert container.id


@pytest.mark.slow
def test_fifty_steps_with_failures_timeouts_and_cancels_leak_no_container(
    boxed: Server, podman: Podman
) -> None:
    kinds = ["'true'", "exit 1", "trap '' TERM; sleep 60", "sleep 60"]
    steps = "".join(
        f"  s{i}:\n    image: {podman.image}\n    continue_on_error: true\n"
        + ("    timeout: 1s\n" if i % 4 == 2 else "")
        + f"    run: {kinds[i % 4]}\n"
        for i in range(25)
    )
    spec = "name: leaks\nsteps:\n" + steps
    finished = boxed.submit(spec)["id"]
    cancelled = boxed.submit(spec)["id"]
    wait_for(lambda: len(_ours(podman, run=cancelled)) >= 3, timeout=120)
    boxed.http.post(f"/runs/{cancelled}/cancel")
    assert boxed.wait(cancelled, timeout=180)["status"] == "cancelled"
    boxed.http.post(f"/runs/{finished}/cancel")  # its sleepers would take a minute
    boxed.wait(finished, timeout=180)
    # an attempt the engine gave up on a loaded machine (no heartbeat in time) removes its
    # container when its lease says so, a moment after the run is over: none may stay
    wait_for(
        lambda: _ours(podman, run=cancelled) == [] and _ours(podman, run=finished) == [],
        timeout=60,
        what="every container of both runs removed",
    )


@pytest.mark.slow
def test_a_worker_killed_mid_container_step_is_replaced_and_its_container_reaped(
    tmp_path: Path, podman: Podman
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, worker=False, heartbeat_timeout=3, LOCKSTEP_CONTAINER_HOST=podman.socket)
    server.start()

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(BIN), "worker", "--pool", "default"],
            env=env_for(
                home, LOCKSTEP_CONTAINER_HOST=podman.socket, LOCKSTEP_HEARTBEAT_TIMEOUT="3"
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    first, second = worker(), None
    try:
        spec = (
            f"name: boxed-loss\nsteps:\n  long:\n    image: {podman.image}\n    run: |\n"
            '      echo "begin $LOCKSTEP_ATTEMPT"\n'
            '      if [ "$LOCKSTEP_ATTEMPT" = 1 ]; then sleep 300; fi\n'
            '      echo "done=$LOCKSTEP_ATTEMPT" >> "$LOCKSTEP_OUTPUTS"\n'
        )
        run_id = server.submit(spec)["id"]
        wait_for(
            lambda: any(line["text"] == "begin 1" for line in server.logs(run_id, "long")),
            timeout=60,
            what="the container step to run",
        )
        first.send_signal(signal.SIGKILL)
        first.wait()
        # the dead worker's watchdog kills and removes its container at once
        wait_for(
            lambda: _ours(podman, run=run_id, attempt="1") == [],
            timeout=30,
            what="the dead worker's container to be removed",
        )
        second = worker()
        run = server.wait(run_id, timeout=90)
        assert run["status"] == "succeeded", run["steps"]
        lost, redo = run["steps"]["long"]["history"]
        assert lost["error"] == "worker lost: no heartbeat for 3s"
        assert redo["status"] == "succeeded" and run["steps"]["long"]["outputs"] == {"done": "2"}
        wait_for(lambda: _ours(podman, run=run_id) == [], timeout=60)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(30)
        server.stop()
