"""Blueprints as a user meets them: a file used twice under two aliases runs, `validate
--expand` shows the graph that runs, and a version keeps the expansion it was made with."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.gitrepo import Repo
from tests.harness import Server, cli

ETL = """\
name: etl
params:
  type: object
  properties:
    table: {type: string}
    done: {type: string, description: a file the audit step creates}
  required: [table, done]
steps:
  extract:
    run: echo "rows=${{ params.table }}-rows" >> "$LOCKSTEP_OUTPUTS"
  load:
    needs: [extract]
    run: echo "loaded=${{ steps.extract.outputs.rows }}" >> "$LOCKSTEP_OUTPUTS"
  audit:
    needs: [extract]
    run: touch "${{ params.done }}"
outputs:
  loaded: ${{ steps.load.outputs.loaded }}
"""

CALLER = """\
name: two-etls
steps:
  users:
    uses: ./blueprints/etl.yaml
    with: {{table: users, done: {dir}/users-audit}}
  orders:
    uses: ./blueprints/etl.yaml
    needs: [users]
    with:
      table: ${{{{ steps.users.outputs.loaded }}}}
      done: {dir}/orders-audit
  report:
    needs: [orders]
    run: test -f {dir}/orders-audit && echo "report=${{{{ steps.orders.outputs.loaded }}}}" >> "$LOCKSTEP_OUTPUTS"
"""


def _env(server: Server) -> dict[str, str]:
    return {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}


def test_a_blueprint_used_twice_runs_and_validate_expand_prints_it(
    server: Server, home: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "blueprints").mkdir(parents=True)
    (work / ".git").mkdir()  # the repository root: blueprints are read inside it
    (work / "blueprints" / "etl.yaml").write_text(ETL)
    wf = work / "workflow.yaml"
    wf.write_text(CALLER.format(dir=tmp_path))

    shown = cli(home, "validate", "--expand", str(wf))
    assert shown.returncode == 0, shown.stderr
    expanded = yaml.safe_load(shown.stdout)
    assert list(expanded["steps"]) == [
        *("users__extract", "users__load", "users__audit", "users"),
        *("orders__extract", "orders__load", "orders__audit", "orders"),
        "report",
    ]
    assert "# blueprint orders: blueprints/etl.yaml sha256:" in shown.stdout
    assert "ok (9 steps)" in shown.stderr

    proc = cli(home, "run", str(wf), "--json", **_env(server))
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)
    steps = run["steps"]
    assert all(s["status"] == "succeeded" for s in steps.values()), steps
    # outputs flow through both uses; the report ran after the audit (an exit step that
    # nothing reads) of the alias it needs
    assert steps["users"]["outputs"] == {"loaded": "users-rows"}
    assert steps["orders__extract"]["outputs"] == {"rows": "users-rows-rows"}
    assert steps["report"]["outputs"] == {"report": "users-rows-rows"}


def test_a_blueprint_edit_is_a_new_version_and_a_rerun_keeps_the_old_expansion(
    server: Server, home: Path, tmp_path: Path
) -> None:
    blueprint = "name: say\nsteps:\n  say:\n    run: echo 'said={word}' >> \"$LOCKSTEP_OUTPUTS\"\n"
    caller = "name: bp-versions\nsteps:\n  greet:\n    uses: ./lib/say.yaml\n"
    repo = Repo(tmp_path / "repo")
    repo.commit({"workflow.yaml": caller, "lib/say.yaml": blueprint.format(word="one")})
    repo.push("main")
    env = _env(server)
    assert cli(home, "repos", "add", repo.url, "--name", "bp-repo", **env).returncode == 0
    assert cli(home, "repos", "scan", "bp-repo", **env).returncode == 0
    first = json.loads(cli(home, "run", "bp-versions@main", "--json", **env).stdout)
    assert first["steps"]["greet__say"]["outputs"] == {"said": "one"}

    repo.commit({"lib/say.yaml": blueprint.format(word="two")})  # the caller is unchanged
    repo.push("main")
    assert cli(home, "repos", "scan", "bp-repo", **env).returncode == 0
    listed = json.loads(cli(home, "versions", "list", "bp-versions", "--json", **env).stdout)
    assert [v["number"] for v in listed] == [1, 2]
    old = cli(home, "versions", "show", "bp-versions@1", **env).stdout
    new = cli(home, "versions", "show", "bp-versions@2", **env).stdout
    assert "said=one" in old and "said=two" in new
    assert "# blueprint greet: lib/say.yaml sha256:" in new

    latest = json.loads(cli(home, "run", "bp-versions@main", "--json", **env).stdout)
    assert (latest["version"], latest["steps"]["greet__say"]["outputs"]) == (2, {"said": "two"})
    proc = cli(home, "runs", "rerun", first["id"], "--json", **env)
    assert proc.returncode == 0, proc.stderr
    again = json.loads(proc.stdout)
    assert (again["version"], again["steps"]["greet__say"]["outputs"]) == (1, {"said": "one"})


def test_a_file_using_a_published_blueprint_is_expanded_by_the_server(
    server: Server, home: Path, tmp_path: Path
) -> None:
    greet = 'name: cli-greet\nsteps:\n  hi:\n    run: echo "hi=published" >> "$LOCKSTEP_OUTPUTS"\n'
    assert server.http.post("/definitions", json={"name": "cli-greet"}).status_code == 201
    draft = server.http.put(
        "/definitions/cli-greet/draft", content=greet, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    assert server.http.post("/definitions/cli-greet/publish", json={}).status_code == 201
    work = tmp_path / "work"
    (work / "blueprints").mkdir(parents=True)
    (work / ".git").mkdir()
    (work / "blueprints" / "etl.yaml").write_text(ETL)
    wf = work / "workflow.yaml"
    wf.write_text(
        CALLER.format(dir=tmp_path) + "  greet:\n    uses: cli-greet\n    needs: [report]\n"
    )

    # locally the file's own blueprints expand; the published one is left for the server
    shown = cli(home, "validate", "--expand", str(wf))
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout)["steps"]["greet"]["uses"] == "cli-greet"
    assert (
        "note: step 'greet' uses the published blueprint 'cli-greet', left as written: the "
        "server expands it when the workflow is run or published"
    ) in shown.stderr

    proc = cli(home, "run", str(wf), "--json", **_env(server))
    assert proc.returncode == 0, proc.stderr
    steps = json.loads(proc.stdout)["steps"]
    assert steps["greet__hi"]["outputs"] == {"hi": "published"}
    assert steps["report"]["status"] == steps["greet"]["status"] == "succeeded"

    wf.write_text("name: lonely\nsteps:\n  x:\n    uses: cli-nothing@2\n")
    refused = cli(home, "run", str(wf), **_env(server))
    assert refused.returncode == 2, refused.stderr
    assert "cannot use blueprint 'cli-nothing@2': definition 'cli-nothing' not found" in (
        refused.stderr
    )
