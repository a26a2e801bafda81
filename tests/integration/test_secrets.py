"""Secrets reach a step's environment and nowhere else: not the engine, not the DB, not any
response, log line, output or audit entry."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx

from tests.harness import Server, cli

VALUE = "s3cr3t-Value-xyz"
MULTI = "line-one-AAAA\nline-two-BBBB"
SPEC = """
name: uses-secrets
steps:
  leak:
    env:
      TOKEN: ${{ secrets.API_TOKEN }}
      PEM: ${{ secrets.MULTI_LINE }}
    run: |
      echo "plain: $TOKEN"
      printf '%s' "$TOKEN" | base64
      printf '%s\\n' "$PEM"
      echo "token=$TOKEN" >> "$LOCKSTEP_OUTPUTS"
      test "$(printf '%s' "$TOKEN" | sha256sum | cut -c1-16)" = dc9c472db04f1790
"""


def _everything_readable(server: Server, run_id: str) -> str:
    texts = [
        server.http.get(f"/runs/{run_id}").text,
        server.http.get(f"/runs/{run_id}/steps").text,
        server.http.get(f"/runs/{run_id}/logs").text,
        server.http.get("/secrets").text,
        server.http.get("/audit", params={"limit": 1000}).text,
    ]
    for path in (server.home / "logs").rglob("*.log"):
        texts.append(path.read_text())
    return "\n".join(texts)


def test_a_step_gets_its_secrets_and_every_trace_of_them_is_masked(server: Server) -> None:
    for name, value in (("API_TOKEN", VALUE), ("MULTI_LINE", MULTI)):
        resp = server.http.put(f"/secrets/{name}", json={"value": value})
        assert resp.status_code in (200, 201), resp.text
        assert value not in resp.text
    run = server.run_and_wait(SPEC)
    assert run["status"] == "succeeded", run  # the step saw the exact value
    assert run["steps"]["leak"]["outputs"] == {"token": "***"}
    lines = [l["text"] for l in server.logs(run["id"], "leak") if l["stream"] == "out"]
    # plain, base64, then the two-line value: one masked block or two masked lines,
    # depending on whether both lines arrived in one read
    assert lines[0] == "plain: ***"
    assert lines[1:] in (["***"] * 2, ["***"] * 3)
    readable = _everything_readable(server, run["id"])
    for needle in (
        VALUE,
        base64.b64encode(VALUE.encode()).decode(),
        "line-one-AAAA",
        "line-two-BBBB",
    ):
        assert needle not in readable
    # nor at rest: the metadata DB holds ciphertext only, and the engine only names
    for db in [*server.home.glob("lockstep.db*"), *server.home.glob("temporal.db*")]:
        raw = db.read_bytes()
        assert VALUE.encode() not in raw, db
        assert b"line-one-AAAA" not in raw, db
    assert (server.home / "secret.key").stat().st_mode & 0o077 == 0


def test_a_run_naming_a_missing_secret_is_rejected_before_start(server: Server) -> None:
    spec = "name: needs-secret\nsteps:\n  a:\n    env: {X: '${{ secrets.NOT_SET_ANYWHERE }}'}\n    run: 'true'\n"
    resp = server.http.post("/runs", json={"spec": spec})
    assert resp.status_code == 400
    assert "missing secrets in project 'default': NOT_SET_ANYWHERE" in resp.json()["detail"]
    made = server.http.get("/runs", params={"workflow": "needs-secret", "limit": 500})
    assert made.json()["items"] == []


def test_secrets_may_only_be_whole_env_values(server: Server) -> None:
    spec = "name: s\nsteps:\n  a:\n    run: echo ${{ secrets.API_TOKEN }}\n"
    resp = server.http.post("/runs", json={"spec": spec})
    assert resp.status_code == 422
    assert "a secret can only be a whole env value" in resp.text


def test_secret_names_are_validated(server: Server) -> None:
    for name in ("lower", "WITH-DASH", "..", "A%2FB"):
        resp = server.http.put(f"/secrets/{name}", json={"value": "x" * 8})
        assert resp.status_code in (404, 405, 422), (name, resp.status_code)
    names = [s["name"] for s in server.http.get("/secrets").json()]
    assert not {"lower", "WITH-DASH", "..", "A%2FB", "A/B"} & set(names)
    assert server.http.put("/secrets/OK_NAME", json={"value": ""}).status_code == 422


def test_cli_sets_secrets_from_stdin_and_never_shows_them(
    server: Server, home: Path, tmp_path: Path
) -> None:
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}
    proc = cli(home, "secrets", "set", "FROM_CLI", input="cli-value-123\n", **env)
    assert proc.returncode == 0, proc.stderr
    listed = cli(home, "secrets", "list", "--json", **env)
    assert "FROM_CLI" in listed.stdout and "cli-value-123" not in listed.stdout
    wf = tmp_path / "workflow.yaml"
    wf.write_text(
        "name: cli-secret\nsteps:\n  a:\n    env: {V: '${{ secrets.FROM_CLI }}'}\n"
        '    run: test "$V" = cli-value-123 && echo "got $V"\n'
    )
    ran = cli(home, "run", str(wf), "--json", **env)
    assert ran.returncode == 0, ran.stderr
    logs = cli(home, "runs", "logs", __import__("json").loads(ran.stdout)["id"], **env)
    assert "got ***" in logs.stdout and "cli-value-123" not in logs.stdout
    assert httpx.get(server.url + "/api/v1/health").status_code == 200
