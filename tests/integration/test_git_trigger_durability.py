"""Git triggers across crashes: a push made while the server is down (killed -9) is seen by the
first poll after the restart and runs the instance once at that commit; later restarts and
scans never run it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.gitrepo import Repo
from tests.harness import Server, wait_for

SPEC = """name: durable-push
steps:
  a:
    run: echo "sha=${{ run.sha }}" >> "$LOCKSTEP_OUTPUTS"
triggers:
  on-push:
    kind: git
    branches: [main]
"""


def _fired(server: Server) -> list[dict[str, Any]]:
    resp = server.http.get("/runs", params={"trigger": "on-push", "workflow": "durable-push"})
    assert resp.status_code == 200, resp.text
    return list(resp.json()["items"])


def test_a_push_while_the_server_is_down_runs_once_after_the_restart(
    home: Path, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "durable")
    repo.commit({"workflow.yaml": SPEC})
    repo.push("main")
    server = Server(home, LOCKSTEP_GIT_ALLOW_FILE="true")
    server.start()
    try:
        resp = server.http.post(
            "/repositories", json={"url": repo.url, "name": "durable", "poll_s": 5}
        )
        assert resp.status_code == 201, resp.text
        assert server.http.post("/repositories/durable/scan").status_code == 200
        live = server.http.put("/definitions/durable-push/tags/$LIVE", json={"version": 1})
        assert live.status_code == 200, live.text
        made = server.http.post(
            "/instances", json={"name": "tip", "definition": "durable-push", "ref": "main"}
        )
        assert made.status_code == 201, made.text

        server.kill9()
        pushed = repo.commit({"data.txt": "while down"})
        repo.push("main")
        server.start()
        [run] = wait_for(lambda: _fired(server), timeout=60, what="the poll after the restart")
        done = server.wait(run["id"])
        assert (done["status"], done["sha"], done["instance"]) == ("succeeded", pushed, "tip")
        assert done["steps"]["a"]["outputs"] == {"sha": pushed}

        server.kill9()
        server.start()
        assert server.http.post("/repositories/durable/scan").status_code == 200
        assert [r["id"] for r in _fired(server)] == [run["id"]]
        history = server.http.get("/triggers/durable-push/on-push/history").json()
        assert [(f["status"], f["event"]["commit"]) for f in history] == [("fired", pushed)]
    finally:
        server.stop()
