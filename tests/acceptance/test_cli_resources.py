"""`lockstep resources …` as a user types it against a running server: create with a schema,
write versions from a file or stdin, list, show, history and diff; a workflow that reads one
and writes another, `runs show` saying which versions it read and wrote, and `runs rerun`
reading the same versions (`--latest`: the newest); each mistake one line with its exit code."""

from __future__ import annotations

import json
from pathlib import Path

from tests.harness import Server, cli

SCHEMA = """\
type: object
properties:
  tag: {type: string, pattern: "^v[0-9]+$"}
  registry: {type: string}
required: [tag]
"""
WORKFLOW = """\
name: cli-release
resources: {image: cli-image}
steps:
  build:
    run: echo "notes=built ${{ resources.image.data.tag }}" >> "$LOCKSTEP_OUTPUTS"
    writes:
      cli-notes: {text: "${{ steps.build.outputs.notes }}", image: "${{ resources.image.version }}"}
outputs:
  notes: ${{ steps.build.outputs.notes }}
"""


def test_resources_from_the_cli(home: Path, server: Server, tmp_path: Path) -> None:
    env = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    (tmp_path / "v1.json").write_text('{"tag": "v1", "registry": "r.example"}')

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        proc = cli(home, *args, input=stdin, cwd=tmp_path, **env)
        return proc.returncode, proc.stdout, proc.stderr

    code, _, said = run(
        "resources", "create", "cli-image", "--schema", "schema.yaml", "--data", "v1.json",
        "-m", "first image",
    )  # fmt: skip
    assert code == 0 and said.strip() == "resource cli-image created: version 1", said
    code, _, said = run("resources", "write", "cli-image", "--data", "-", stdin='{"tag": "v2"}')
    assert code == 0 and said.strip() == "resource cli-image: version 2 written", said
    assert run("resources", "create", "cli-notes", "--data", "-", stdin="text: none\n")[0] == 0

    listed = json.loads(run("resources", "list", "--json")[1])
    latest = {r["name"]: r["latest"] for r in listed}
    assert (latest["cli-image"], latest["cli-notes"]) == (2, 1)
    code, shown, _ = run("resources", "show", "cli-image")
    assert code == 0 and "resource cli-image version 2 of 2" in shown
    assert "written by admin" in shown and '"tag": "v2"' in shown
    older = json.loads(run("resources", "show", "cli-image", "--version", "1", "--json")[1])
    assert older["version"]["data"] == {"tag": "v1", "registry": "r.example"}
    assert older["version"]["message"] == "first image"
    history = json.loads(run("resources", "history", "cli-image", "--json")[1])
    assert [v["version"] for v in history] == [2, 1]
    code, diff, _ = run("resources", "diff", "cli-image", "1", "2")
    assert code == 0 and diff.splitlines() == ['- /registry: "r.example"', '~ /tag: "v1" -> "v2"']

    (tmp_path / "workflow.yaml").write_text(WORKFLOW)
    code, out, said = run("run", "workflow.yaml", "--json")
    assert code == 0, said
    first = json.loads(out)
    assert first["outputs"] == {"notes": "built v2"}
    code, shown, _ = run("runs", "show", first["id"])
    assert "reads resource cli-image@2 as image" in shown
    assert "wrote resource cli-notes@2 (step build)" in shown
    notes = json.loads(run("resources", "show", "cli-notes", "--json")[1])["version"]
    assert notes["data"] == {"text": "built v2", "image": 2}
    assert (notes["run_id"], notes["step"]) == (first["id"], "build")

    assert run("resources", "write", "cli-image", "--data", "-", stdin='{"tag": "v3"}')[0] == 0
    code, out, said = run("runs", "rerun", first["id"], "--json")
    assert code == 0, said
    assert json.loads(out)["outputs"] == {"notes": "built v2"}  # the versions it ran with
    code, out, said = run("runs", "rerun", first["id"], "--latest", "--json")
    assert code == 0, said
    assert json.loads(out)["outputs"] == {"notes": "built v3"}

    # mistakes: one line each, the exit code of its kind, nothing changed
    (tmp_path / "bad.json").write_text('{"tag": "nightly"}')
    for args, exit_code, line in [
        (("resources", "show", "cli-nope"), 1, "error: resource 'cli-nope' not found"),
        (("resources", "show", "cli-image", "-v", "9"), 1, "error: resource 'cli-image' has no version 9"),
        (("resources", "create", "Cli_Bad", "--data", "v1.json"), 2, "error: invalid resource name 'Cli_Bad'"),
        (("resources", "write", "cli-image", "--data", "bad.json"), 2, "error: resource 'cli-image' data /tag: must match the pattern"),
        (("resources", "write", "cli-image", "--data", "missing.json"), 2, "error: cannot read data missing.json"),
        (("resources", "diff", "cli-image", "1", "7"), 1, "error: resource 'cli-image' has no version 7"),
    ]:  # fmt: skip
        code, _, said = run(*args)
        assert code == exit_code and said.startswith(line) and said.count("\n") == 1, (args, said)
    assert [
        v["version"] for v in json.loads(run("resources", "history", "cli-image", "--json")[1])
    ] == [3, 2, 1]
