"""`lockstep server --temporal HOST:PORT --namespace NS` on a Temporal of its own: runs land
in that namespace, no embedded Temporal starts, and a wrong namespace, address or TLS set-up
is one line — also through a real TLS terminator in front of the engine."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BIN, Server, cli, env_for, wait_for
from tests.integration.test_engine_outage import _free_port, _listening
from tests.tls_proxy import Pki, make_ca, tls_proxy

pytestmark = pytest.mark.slow

TEMPORAL = BIN.parent / "temporal"
NAMESPACE = "team-a"
SPEC = """name: two-steps
steps:
  a:
    run: echo "n=21" >> "$LOCKSTEP_OUTPUTS"
  b:
    needs: [a]
    run: echo "got=${{ steps.a.outputs.n }}" >> "$LOCKSTEP_OUTPUTS"
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A standalone Temporal dev server with namespace team-a; yields its port."""
    root = tmp_path_factory.mktemp("external-temporal")
    port = _free_port()
    args = [str(TEMPORAL), "server", "start-dev", "--headless", "--ip", "127.0.0.1"]
    args += ["--port", str(port), "--namespace", NAMESPACE, "--log-level", "error"]
    args += ["--db-filename", str(root / "temporal.db")]
    with (root / "temporal.log").open("ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
    wait_for(lambda: _listening(port), timeout=60, what="temporal to listen")
    yield port
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_ca(tmp_path_factory.mktemp("pki"))


def _external(home: Path, address: str, *, worker: bool = True, **env: str) -> Server:
    """A `lockstep server --temporal ADDR --namespace NS` process (no embedded engine)."""
    return Server(
        home, worker=worker, args=("--temporal", address, "--namespace", NAMESPACE), **env
    )


def _workflows(port: int, namespace: str) -> str:
    args = [str(TEMPORAL), "workflow", "list", "--namespace", namespace]
    listed = subprocess.run(
        [*args, "--address", f"127.0.0.1:{port}", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def _children(pid: int) -> list[str]:
    out = subprocess.run(["pgrep", "-a", "-P", str(pid)], capture_output=True, text=True)
    return out.stdout.splitlines()


def _runs_a_workflow(srv: Server) -> str:
    run = srv.run_and_wait(SPEC, timeout=120)
    assert run["status"] == "succeeded", run
    return str(run["id"])


def test_a_server_on_an_external_temporal_runs_in_its_namespace(
    engine: int, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # no worker in the server: a remote worker told only the server's URL runs every step, so
    # it must have taken the namespace from the server
    srv = _external(home, f"127.0.0.1:{engine}", worker=False)
    srv.start()
    env = env_for(tmp_path / "worker-home", LOCKSTEP_URL=srv.url, LOCKSTEP_TOKEN=srv.token)
    with (tmp_path / "worker.out").open("w") as sink:
        worker = subprocess.Popen(
            [str(BIN), "worker"], env=env, stdout=sink, stderr=subprocess.STDOUT, text=True
        )
    try:
        run_id = _runs_a_workflow(srv)
        assert run_id in _workflows(engine, NAMESPACE)
        assert run_id not in _workflows(engine, "default")
        # no embedded Temporal: no history file in the home, no temporal child process
        assert not (home / "temporal.db").exists()
        assert srv.proc is not None
        assert not [c for c in _children(srv.proc.pid) if "start-dev" in c]
        assert srv.temporal_pid is None
        doctor = cli(home, "doctor")
        assert f"Temporal at 127.0.0.1:{engine}, namespace '{NAMESPACE}'" in doctor.stdout
        assert "plain gRPC, API key not set" in doctor.stdout
    finally:
        worker.terminate()
        worker.wait(30)
        srv.stop()
    assert f"via 127.0.0.1:{engine}" in (tmp_path / "worker.out").read_text()


def test_a_worker_beside_the_server_serves_its_engine_and_namespace(
    engine: int, tmp_path: Path
) -> None:
    """A `lockstep worker` given only the server's home finds the engine and namespace the
    server runs on (from the home, no embedded engine there); one pointed at another
    metadata database is refused in one line instead of serving with the wrong one."""
    home = tmp_path / "home"
    home.mkdir()
    srv = _external(home, f"127.0.0.1:{engine}", worker=False)
    srv.start()
    try:
        wrong = cli(
            home,
            "worker",
            "--pool",
            "side",
            LOCKSTEP_DATABASE_URL=f"sqlite:///{tmp_path / 'other.db'}",
            timeout=60,
        )
        assert wrong.returncode != 0
        assert wrong.stderr.strip().splitlines() == [
            f"error: the server on {home} uses another metadata database than this worker; give "
            "the worker the server's LOCKSTEP_DATABASE_URL (or LOCKSTEP_URL and a worker token)"
        ]
        with (tmp_path / "worker.out").open("w") as sink:
            worker = subprocess.Popen(
                [str(BIN), "worker"], env=env_for(home), stdout=sink, stderr=subprocess.STDOUT
            )
        try:
            run_id = _runs_a_workflow(srv)
        finally:
            worker.terminate()
            worker.wait(30)
    finally:
        srv.stop()
    assert run_id in _workflows(engine, NAMESPACE)
    assert f"via 127.0.0.1:{engine}" in (tmp_path / "worker.out").read_text()


def _one_line_failure(home: Path, address: str, says: str, *args: str, **env: str) -> None:
    done = cli(home, "server", "--port", "0", "--temporal", address, *args, **env, timeout=90)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and says in lines[0], done.stderr
    assert not (home / "temporal.db").exists()


@pytest.mark.parametrize("command", ["server", "worker"])
def test_a_namespace_the_engine_lacks_is_one_line(
    engine: int, tmp_path: Path, command: str
) -> None:
    _one_line_failure(
        tmp_path,
        f"127.0.0.1:{engine}",
        f"Temporal at 127.0.0.1:{engine} has no namespace nope; create it with "
        "`temporal operator namespace create nope` or pass --namespace",
        "--namespace",
        "nope",
        command=command,
    )


def test_an_unreachable_engine_is_one_line(tmp_path: Path) -> None:
    port = _free_port()
    _one_line_failure(
        tmp_path, f"127.0.0.1:{port}", f"cannot reach Temporal at 127.0.0.1:{port}: connection"
    )


def test_a_server_reaches_temporal_through_tls_with_its_ca(
    engine: int, pki: Pki, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with tls_proxy(pki, engine) as port:
        srv = _external(home, f"127.0.0.1:{port}", LOCKSTEP_TEMPORAL_TLS_CA=str(pki.ca))
        srv.start()
        try:
            run_id = _runs_a_workflow(srv)
        finally:
            srv.stop()
    assert run_id in _workflows(engine, NAMESPACE)


def test_a_server_and_a_worker_reach_temporal_through_mtls_with_their_certificate(
    engine: int, pki: Pki, tmp_path: Path
) -> None:
    """The engine's side asks for a client certificate its CA signed (mTLS); the server and a
    remote worker present theirs (LOCKSTEP_TEMPORAL_TLS_CERT/_KEY) and runs go through."""
    home = tmp_path / "home"
    home.mkdir()
    mtls = {
        "LOCKSTEP_TEMPORAL_TLS_CA": str(pki.ca),
        "LOCKSTEP_TEMPORAL_TLS_CERT": str(pki.client_cert),
        "LOCKSTEP_TEMPORAL_TLS_KEY": str(pki.client_key),
    }
    with tls_proxy(pki, engine, clients=pki.ca) as port:
        srv = _external(home, f"127.0.0.1:{port}", worker=False, **mtls)
        srv.start()
        env = env_for(tmp_path / "w", LOCKSTEP_URL=srv.url, LOCKSTEP_TOKEN=srv.token, **mtls)
        with (tmp_path / "worker.out").open("w") as sink:
            worker = subprocess.Popen(
                [str(BIN), "worker"], env=env, stdout=sink, stderr=subprocess.STDOUT, text=True
            )
        try:
            run_id = _runs_a_workflow(srv)
            doctor = cli(home, "doctor", **mtls)
        finally:
            worker.terminate()
            worker.wait(30)
            srv.stop()
    assert run_id in _workflows(engine, NAMESPACE)
    assert "(TLS (own CA), client certificate, API key not set) answers" in doctor.stdout


@pytest.mark.parametrize("certificate", ["none", "another CA's"])
def test_a_server_without_an_accepted_client_certificate_fails_in_one_line(
    engine: int, pki: Pki, tmp_path: Path, certificate: str
) -> None:
    env = {"LOCKSTEP_TEMPORAL_TLS_CA": str(pki.ca)}
    says = "the server asks for a client certificate"
    if certificate != "none":
        other = make_ca(tmp_path / "other", "other-ca")
        env |= {
            "LOCKSTEP_TEMPORAL_TLS_CERT": str(other.client_cert),
            "LOCKSTEP_TEMPORAL_TLS_KEY": str(other.client_key),
        }
        says = "the server does not trust the client certificate's CA"
    with tls_proxy(pki, engine, clients=pki.ca) as port:
        done = cli(tmp_path, "server", "--port", "0", "--temporal", f"127.0.0.1:{port}", **env)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    # TLS 1.3 checks the client's certificate after the handshake: the server's alert names
    # the reason, unless the client saw the connection close first (about 1 in 30 here);
    # either way the line points at the client certificate's settings
    assert says in lines[0] or "after the TLS handshake" in lines[0], lines[0]
    assert "LOCKSTEP_TEMPORAL_TLS_CERT" in lines[0]
    assert not (tmp_path / "temporal.db").exists()


@pytest.mark.parametrize("ca", ["system", "wrong"])
def test_a_server_without_the_right_ca_fails_the_tls_handshake_in_one_line(
    engine: int, pki: Pki, tmp_path: Path, ca: str
) -> None:
    env = {"LOCKSTEP_TEMPORAL_TLS": "true"}
    if ca == "wrong":
        env["LOCKSTEP_TEMPORAL_TLS_CA"] = str(make_ca(tmp_path / "other", "other-ca").ca)
    with tls_proxy(pki, engine) as port:
        _one_line_failure(
            tmp_path,
            f"127.0.0.1:{port}",
            f"Temporal at 127.0.0.1:{port}: TLS handshake failed: the server's certificate is "
            "not signed by a CA this client trusts; check LOCKSTEP_TEMPORAL_TLS_CA",
            **env,
        )


def test_tls_settings_without_an_external_temporal_start_no_embedded_one(tmp_path: Path) -> None:
    done = cli(tmp_path, "server", "--port", "0", LOCKSTEP_TEMPORAL_API_KEY="k-123", timeout=90)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "error: LOCKSTEP_TEMPORAL_TLS* or LOCKSTEP_TEMPORAL_API_KEY is set without a Temporal "
        "address: the embedded Temporal speaks plain gRPC; pass --temporal HOST:PORT"
    ]
    assert "k-123" not in done.stderr + done.stdout
    assert not (tmp_path / "temporal.db").exists()
