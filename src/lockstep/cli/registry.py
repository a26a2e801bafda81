"""``lockstep repos …`` and ``lockstep definitions …``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import err, out, print_json, run_exit

repos = typer.Typer(help="Connected Git repositories.", no_args_is_help=True)
definitions = typer.Typer(help="Workflows discovered in repositories.", no_args_is_help=True)


def _split(value: str | None) -> list[str] | None:
    return [p.strip() for p in value.split(",") if p.strip()] if value else None


@repos.command("add")
def repos_add(
    url: str,
    name: Annotated[str | None, typer.Option(help="defaults to the URL's last segment")] = None,
    branches: Annotated[str, typer.Option(help="comma-separated patterns")] = "main",
    tags: Annotated[str | None, typer.Option(help="comma-separated patterns, e.g. 'v*'")] = None,
    credentials: Annotated[
        str | None, typer.Option(help="a project secret: token or user:token")
    ] = None,
    poll: Annotated[int, typer.Option(min=5, max=86400, help="seconds between polls")] = 60,
) -> None:
    """Connect a repository; its workflow files appear as definitions after a scan."""

    async def run(c: ApiClient) -> None:
        body: dict[str, Any] = {
            "url": url,
            "branches": _split(branches) or [],
            "tags": _split(tags) or [],
            "poll_s": poll,
        }
        if name:
            body["name"] = name
        if credentials:
            body["credentials"] = credentials
        row = await c.call("POST", f"/projects/{c.project}/repositories", json=body)
        err.print(f"repository {row['name']} connected ({row['url']})")
        err.print(f"push webhook: POST {c.where}{row['webhook_url']}, signed with (shown once):")
        sys.stdout.write(row["webhook_secret"] + "\n")

    go(run)


@repos.command("list")
def repos_list(as_json: AsJson = False) -> None:
    """Connected repositories, with their last scan and error."""

    async def run(c: ApiClient) -> None:
        cols = ["name", "url", "branches", "tags", "scanned_at", "error"]
        show(await c.call("GET", f"/projects/{c.project}/repositories"), cols, as_json)

    go(run)


@repos.command("scan")
def repos_scan(name: str, as_json: AsJson = False) -> None:
    """Scan a repository now."""

    async def run(c: ApiClient) -> None:
        data = await c.call("POST", f"/projects/{c.project}/repositories/{name}/scan")
        if as_json:
            print_json(data)
            return
        repo = data["repository"]
        if repo["error"]:
            err.print(f"[red]scan failed[/]: {escape(repo['error'])}")
            raise SystemExit(1)
        err.print(f"scanned {name}: {data['files']} workflow files")

    go(run)


@repos.command("remove")
def repos_remove(name: str) -> None:
    """Disconnect a repository; its definitions are archived, runs keep their history."""

    async def run(c: ApiClient) -> None:
        await c.call("DELETE", f"/projects/{c.project}/repositories/{name}")
        err.print(f"repository {name} removed")

    go(run)


@definitions.command("list")
def definitions_list(as_json: AsJson = False) -> None:
    """Definitions with their latest version and per-ref status."""

    async def run(c: ApiClient) -> None:
        data = await c.call("GET", f"/projects/{c.project}/definitions")
        if as_json:
            print_json(data)
            return
        rows = [
            {**d, "refs": ", ".join(f"{r['ref']}:{r['status']}" for r in d["refs"])} for d in data
        ]
        show(rows, ["name", "repository", "path", "latest_version", "refs"], False)

    go(run)


@definitions.command("show")
def definitionsshow(name: str, as_json: AsJson = False) -> None:
    """One definition: each watched ref's commit, status and every validation error."""

    async def run(c: ApiClient) -> None:
        data = await c.call("GET", f"/projects/{c.project}/definitions/{name}")
        if as_json:
            print_json(data)
            return
        out.print(
            f"[bold]{escape(data['name'])}[/] ({escape(str(data['repository']))}:"
            f"{escape(data['path'])}) latest version {data['latest_version']}"
        )
        for ref in data["refs"]:
            out.print(
                f"  {escape(ref['ref'])} @ {ref['sha'][:12]}: {ref['status']}"
                + (f" → version {ref['version']}" if ref["version"] else "")
            )
            for line in ref["errors"]:
                out.print(f"    [red]{escape(line)}[/]")

    go(run)


instances = typer.Typer(
    help="Saved configurations: a definition pinned to a ref.", no_args_is_help=True
)
Params = Annotated[list[str] | None, typer.Option("-p", "--param", help="key=value")]


@instances.command("create")
def instances_create(
    name: str,
    definition: Annotated[str, typer.Option(help="the definition to run")],
    ref: Annotated[str, typer.Option(help="branch (follows it), git tag or commit SHA (pinned)")],
    param: Params = None,
    pool: Annotated[
        str | None, typer.Option(help="worker pool for the steps that do not name one")
    ] = None,
    triggers_file: Annotated[
        Path | None,
        typer.Option(
            "--triggers",
            metavar="FILE.yaml",
            help="the instance's own triggers: a mapping of id to trigger, as workflow.yaml's "
            "`triggers:` (an id the file has inherits its fields); they run this instance",
        ),
    ] = None,
) -> None:
    """Create an instance; a branch instance follows the branch, a tag/SHA one never moves."""
    own = _read_triggers(triggers_file) if triggers_file else {}

    async def run(c: ApiClient) -> None:
        body = {
            "name": name,
            "definition": definition,
            "ref": ref,
            "params": param or [],
            "pool": pool,
            "triggers": own,
        }
        await c.call("POST", f"/projects/{c.project}/instances", json=body)
        err.print(f"instance {name}: {definition}@{ref}")

    go(run)


@instances.command("list")
def instances_list(as_json: AsJson = False) -> None:
    """Instances of the project (`triggers`: the ids of their own triggers)."""

    async def run(c: ApiClient) -> None:
        rows = await c.call("GET", f"/projects/{c.project}/instances")
        if not as_json:
            rows = [{**r, "triggers": ",".join(r.get("triggers") or {}) or "-"} for r in rows]
        show(rows, ["name", "definition", "ref", "params", "pool", "triggers"], as_json)

    go(run)


@instances.command("triggers")
def instances_triggers(
    name: str,
    triggers_file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE.yaml",
            help="the instance's own triggers, whole (a mapping of id to trigger; an empty "
            "mapping removes them)",
        ),
    ],
) -> None:
    """Replace an instance's own triggers and register them (its Schedules are made, changed
    or removed); nothing changes when one is wrong."""
    own = _read_triggers(triggers_file)

    async def run(c: ApiClient) -> None:
        got = await c.call(
            "PUT", f"/projects/{c.project}/instances/{name}/triggers", json={"triggers": own}
        )
        ids = ", ".join(got.get("triggers") or {}) or "none"
        err.print(f"instance {escape(name)}: triggers {escape(ids)}")

    go(run)


def _read_triggers(path: Path) -> dict[str, Any]:
    """A triggers file's mapping (empty: none), as JSON-ready data."""
    from lockstep.cli.output import fail
    from lockstep.errors import InvalidRequest, SpecError
    from lockstep.spec.yamlsafe import load_yaml

    try:
        data = load_yaml(path.read_bytes(), str(path)).data
    except OSError as exc:
        fail(InvalidRequest(f"cannot read {path}: {exc.strerror or exc}"))
    except SpecError as exc:
        fail(exc)
    if data is None:
        return {}
    if not isinstance(data, dict):
        fail(
            InvalidRequest(
                f"{path}: triggers must be a mapping of trigger id to trigger, e.g. "
                "'nightly: {cron: \"0 2 * * *\"}'"
            )
        )
    # a time YAML read (start_at) travels as its ISO text
    return dict(json.loads(json.dumps(data, default=_iso)))


def _iso(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@instances.command("run")
def instances_run(
    name: str,
    param: Params = None,
    watch_: Annotated[bool, typer.Option("--watch/--no-watch")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Run an instance: its ref is resolved now to a commit and version, and locked."""
    from lockstep.cli import watch
    from lockstep.cli.render import print_run
    from lockstep.records import RunRecord

    result: dict[str, Any] = {}

    async def run(c: ApiClient) -> None:
        data = await c.call(
            "POST", f"/projects/{c.project}/instances/{name}/runs", json={"params": param or []}
        )
        record = RunRecord.model_validate(data)
        if not as_json:
            err.print(
                f"run [bold]{record.id}[/]: {record.definition} version {record.version} "
                f"at {str(record.sha)[:12]}"
            )
        result["run"] = await watch.wait(c, record.id, live=watch_)

    go(run, engine=True)
    final: RunRecord = result["run"]
    if as_json:
        print_json(final.model_dump(mode="json"))
    else:
        print_run(final)
    raise typer.Exit(run_exit(final.status))
