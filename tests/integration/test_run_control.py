"""Cancel, retry, logs, idempotency and immutability of run records."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Server, pid_alive, wait_for


def test_cancel_kills_the_running_step_and_runs_finally(server: Server, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    spec = f"""
name: cancellable
steps:
  long:
    run: echo $$ > {pidfile}; sleep 300
  after:
    needs: [long]
    run: echo never
finally:
  cleanup:
    run: echo "cleanup after ${{{{ run.status }}}}"
"""
    run_id = server.submit(spec)["id"]
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="step to start")
    pid = int(pidfile.read_text())
    resp = server.http.post(f"/runs/{run_id}/cancel")
    assert resp.status_code == 200, resp.text
    run = server.wait(run_id, timeout=30)
    assert run["status"] == "cancelled"
    assert run["steps"]["long"]["status"] == "cancelled"
    assert run["steps"]["after"]["status"] == "cancelled"
    assert run["steps"]["cleanup"]["status"] == "succeeded"
    assert not pid_alive(pid)
    text = [l["text"] for l in server.logs(run_id, "cleanup") if l["stream"] == "out"]
    assert text == ["cleanup after cancelled"]
    # a finished run cannot be cancelled again
    again = server.http.post(f"/runs/{run_id}/cancel")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


def test_retry_reuses_succeeded_steps_and_reruns_the_rest(server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "fixed"
    spec = f"""
name: retry-me
steps:
  first:
    run: echo "n=$RANDOM" >> "$LOCKSTEP_OUTPUTS"
  second:
    needs: [first]
    run: test -e {marker} && echo "got=${{{{ steps.first.outputs.n }}}}" >> "$LOCKSTEP_OUTPUTS"
  third:
    needs: [second]
    run: "true"
  side:
    run: "true"
"""
    failed = server.run_and_wait(spec)
    assert failed["status"] == "failed"
    marker.touch()
    resp = server.http.post(f"/runs/{failed['id']}/retry")
    assert resp.status_code == 201, resp.text
    retried = server.wait(resp.json()["id"])
    assert retried["status"] == "succeeded"
    assert retried["retry_of"] == failed["id"]
    steps = retried["steps"]
    assert steps["first"]["reused_from"] == failed["id"]
    assert steps["first"]["attempts"] == 0
    assert steps["side"]["reused_from"] == failed["id"]
    assert steps["second"]["attempts"] == 1 and steps["second"]["reused_from"] is None
    # the reused output flowed into the re-executed step
    n = failed["steps"]["first"]["outputs"]["n"]
    assert steps["second"]["outputs"] == {"got": n}
    # retrying a succeeded run is refused
    assert server.http.post(f"/runs/{retried['id']}/retry").status_code == 409


def test_idempotency_key_creates_one_run(server: Server) -> None:
    spec = "name: once\nsteps:\n  a:\n    run: 'true'\n"

    def submit(_: int) -> str:
        resp = server.http.post("/runs", json={"spec": spec, "idempotency_key": "deploy-42"})
        assert resp.status_code in (200, 201), resp.text
        return str(resp.json()["id"])

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(submit, range(8)))
    assert len(ids) == 1
    run = server.wait(ids.pop())
    assert run["status"] == "succeeded"
    listed = server.http.get("/runs", params={"workflow": "once", "limit": 100}).json()["items"]
    assert len(listed) == 1


def test_twenty_runs_at_once_all_finish_without_database_errors(server: Server) -> None:
    spec = """
name: burst
steps:
  a: {run: "echo a"}
  b: {needs: [a], run: "echo b"}
  c: {needs: [a], run: "echo c"}
"""
    with ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(lambda _: server.submit(spec)["id"], range(20)))
    runs = [server.wait(i, timeout=120) for i in ids]
    assert [r["status"] for r in runs] == ["succeeded"] * 20
    log = (server.home / "server.out").read_text()
    assert "database is locked" not in log


def test_finished_runs_are_immutable_even_to_direct_sql(server: Server) -> None:
    run = server.run_and_wait("name: frozen\nsteps:\n  a:\n    run: 'true'\n")
    db = sqlite3.connect(server.home / "lockstep.db")
    for sql in (
        "UPDATE runs SET status = 'failed' WHERE id = ?",
        "DELETE FROM runs WHERE id = ?",
        "UPDATE step_states SET status = 'failed' WHERE run_id = ?",
        "UPDATE step_attempts SET exit_code = 9 WHERE run_id = ?",
        "DELETE FROM step_attempts WHERE run_id = ?",
    ):
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            db.execute(sql, (run["id"],))
    db.close()
    assert server.run(run["id"])["status"] == "succeeded"


def test_list_filters_and_paginates(server: Server) -> None:
    for _ in range(3):
        server.run_and_wait("name: paged\nsteps:\n  a:\n    run: 'true'\n")
    first = server.http.get("/runs", params={"workflow": "paged", "limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = server.http.get(
        "/runs", params={"workflow": "paged", "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    ids = [r["id"] for r in first["items"] + second["items"]]
    assert len(ids) == len(set(ids)) == 3
    assert second["next_cursor"] is None
    bad = server.http.get("/runs", params={"cursor": "!!!"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (
            {"spec": "name: x\nsteps: {a: {run: 'true'}}\n", "params": {"nope": 1}},
            422,
            "this workflow declares no params",
        ),
        ({"spec": "name: x\nsteps:\n  a: {rnu: 'true'}\n"}, 422, "did you mean 'run'?"),
        ({"spec": "name: x\nsteps: {a: {run: 'true'}}\n", "surprise": 1}, 422, "surprise"),
        (
            {
                "spec": "name: x\nsteps: {a: {run: 'true'}}\n",
                "snapshot": "snapshots/default/" + "0" * 64 + ".tar.gz",
            },
            400,
            "not found",
        ),
    ],
)
def test_rejected_submissions_create_no_run(
    server: Server, body: dict[str, object], status: int, detail: str
) -> None:
    before = len(server.http.get("/runs", params={"limit": 500}).json()["items"])
    resp = server.http.post("/runs", json=body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert detail in resp.text
    after = len(server.http.get("/runs", params={"limit": 500}).json()["items"])
    assert after == before


def test_unknown_run_is_a_clean_404(server: Server) -> None:
    resp = server.http.get("/runs/rdoesnotexist")
    assert resp.status_code == 404
    assert resp.json()["detail"].startswith("run 'rdoesnotexist' not found")


def test_oversized_body_is_refused_before_work(server: Server) -> None:
    resp = server.http.post(
        "/runs",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 413


def test_malformed_json_and_hostile_path_parameters_change_nothing(server: Server) -> None:
    before = _manual_runs(server)
    bad = server.http.post(
        "/runs", content=b'{"spec": ', headers={"content-type": "application/json"}
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    for path in ("/runs/%00", "/runs/a%2F..%2Fb", "/runs/..%2F..%2Fetc", "/runs/" + "x" * 300):
        resp = server.http.get(path)
        assert resp.status_code in (404, 422), (path, resp.status_code)
        assert "Traceback" not in resp.text
    assert _manual_runs(server) == before


def _manual_runs(server: Server) -> list[dict[str, Any]]:
    """The runs people started (a schedule of another test on this server may fire meanwhile)."""
    runs = server.http.get("/runs", params={"limit": 500}).json()["items"]
    return [r for r in runs if r["cause"]["kind"] == "manual"]
