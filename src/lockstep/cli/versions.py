"""``lockstep publish``, ``lockstep versions …`` and ``lockstep tags …``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import EXIT_CODES, err, fail, out, print_json
from lockstep.errors import InvalidRequest, NotFound, SpecError

versions = typer.Typer(help="Immutable versions of definitions.", no_args_is_help=True)
tags = typer.Typer(help="Tags ($LIVE, $STAGING, …) pointing at versions.", no_args_is_help=True)


def _defs(c: ApiClient, name: str, *rest: str) -> str:
    tail = "".join("/" + quote(part, safe="$") for part in rest)
    return f"/projects/{c.project}/definitions/{quote(name, safe='')}{tail}"


def publish_command(
    file: Annotated[Path, typer.Argument(help="the workflow to publish (YAML or JSON)")],
    definition: Annotated[
        str | None, typer.Option("--definition", "-d", help="defaults to the workflow's name")
    ] = None,
    message: Annotated[str | None, typer.Option("-m", "--message", help="why")] = None,
    as_json: AsJson = False,
) -> None:
    """Publish a workflow as the next version of a definition (created when new); prints the
    version number. Identical content gives back the existing version."""
    from lockstep.spec.documents import load_workflow_file, spec_name  # not at start-up

    try:
        loaded = load_workflow_file(file)  # blueprints expanded from the file's repository
    except SpecError as exc:
        fail(exc)
    text, name = loaded.text, definition or spec_name(loaded)

    async def run(c: ApiClient) -> None:
        try:
            await c.call("GET", _defs(c, name))
        except NotFound:
            await c.call("POST", f"/projects/{c.project}/definitions", json={"name": name})
            err.print(f"definition {name} created")
        draft = await c.call(
            "PUT",
            _defs(c, name, "draft"),
            content=text.encode(),
            headers={"content-type": "application/yaml"},
        )
        if not draft["valid"]:  # saved as a draft, not published
            for problem in draft["errors"]:
                err.print(f"[red]error[/]: {escape(problem)}")
            raise SystemExit(EXIT_CODES[SpecError])  # the server found the spec invalid
        version = await c.call("POST", _defs(c, name, "publish"), json={"message": message})
        if as_json:
            print_json(version)
            return
        state = "published" if version["created"] else "unchanged: already"
        err.print(f"{name}: {state} version {version['number']}")
        sys.stdout.write(f"{version['number']}\n")

    go(run)


@versions.command("list")
def versions_list(
    definition: str,
    archived: Annotated[bool, typer.Option("--archived", help="include archived ones")] = False,
    as_json: AsJson = False,
) -> None:
    """Versions of a definition: number, origin, tags, who published it."""

    async def run(c: ApiClient) -> None:
        rows = await c.call(
            "GET", _defs(c, definition, "versions"), params={"archived": str(archived).lower()}
        )
        for row in rows:
            row["tags"] = ",".join(row["tags"])
            row["commit"] = row["sources"][-1]["sha"][:12] if row["sources"] else ""
        cols = ["number", "origin", "tags", "created_at", "publisher", "commit", "message"]
        show(rows, cols, as_json)

    go(run)


@versions.command("show")
def versions_show(
    selector: Annotated[str, typer.Argument(help="D@7, D@$LIVE, D@main, D@<sha> or D")],
    as_json: AsJson = False,
) -> None:
    """What a selector names now, with its spec."""

    async def run(c: ApiClient) -> None:
        data = await c.call("GET", f"/projects/{c.project}/resolve", params={"selector": selector})
        if as_json:
            print_json(data)
            return
        tagged = f" [{', '.join(data['tags'])}]" if data["tags"] else ""
        out.print(f"[bold]{escape(data['definition'])}[/] version {data['number']}{tagged}")
        if data.get("sha"):
            out.print(f"commit {data['sha']}")
        sys.stdout.write(data["spec"])

    go(run)


@versions.command("diff")
def versions_diff(
    old: Annotated[str, typer.Argument(help="e.g. build@6")],
    new: Annotated[str, typer.Argument(help="e.g. build@7")],
    as_json: AsJson = False,
) -> None:
    """What changed between two versions, per step; breaking param changes are flagged."""

    async def run(c: ApiClient) -> None:
        data = await c.call("GET", f"/projects/{c.project}/diff", params={"from": old, "to": new})
        if as_json:
            print_json(data)
            return
        _print_diff(data)

    go(run)


def _print_diff(data: dict[str, Any]) -> None:
    for line in data.get("lines", []):
        out.print(escape(line))
    out.print(escape(data["summary"]))


@versions.command("archive")
def versions_archive(definition: str, number: int) -> None:
    """Hide a version from listings; runs keep it and D@N still runs it."""

    async def run(c: ApiClient) -> None:
        await c.call("POST", _defs(c, definition, "versions", str(number), "archive"))
        err.print(f"{definition} version {number} archived")

    go(run)


@tags.command("set")
def tags_set(
    definition: str,
    tag: Annotated[str, typer.Argument(help="e.g. '$LIVE' (quote it in the shell)")],
    version: int,
    expect: Annotated[
        int | None, typer.Option(help="move only if the tag points at this version now")
    ] = None,
    reason: Annotated[str | None, typer.Option("-m", "--reason", help="why")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show the diff; move nothing")] = False,
    as_json: AsJson = False,
) -> None:
    """Move a tag to a version atomically (promote, or roll back to an older one)."""
    if not tag:  # an unquoted $LIVE: the shell replaced it with an unset variable
        fail(InvalidRequest("the tag is empty: write it in single quotes, like '$LIVE'"))

    async def run(c: ApiClient) -> None:
        body = {"version": version, "expect": expect, "reason": reason, "dry_run": dry_run}
        data = await c.call("PUT", _defs(c, definition, "tags", tag), json=body)
        if as_json:
            print_json(data)
            return
        if data["diff"]:
            _print_diff(data["diff"])
        was = "unset" if data["from"] is None else f"version {data['from']}"
        if data["dry_run"]:
            err.print(f"dry run: {tag} would move from {was} to version {version}")
        elif data["moved"]:
            err.print(f"{tag} of {definition}: {was} -> version {version}")
        else:
            err.print(f"{tag} of {definition} already points at version {version}")

    go(run)


@tags.command("list")
def tags_list(definition: str, as_json: AsJson = False) -> None:
    """Tags of a definition and the version each points at."""

    async def run(c: ApiClient) -> None:
        show(
            await c.call("GET", _defs(c, definition, "tags")),
            ["tag", "version", "moved_at", "moved_by"],
            as_json,
        )

    go(run)


@tags.command("history")
def tags_history(
    definition: str,
    tag: Annotated[str | None, typer.Argument(help="one tag, e.g. '$LIVE'")] = None,
    as_json: AsJson = False,
) -> None:
    """Every move: from, to, who, when, why."""

    async def run(c: ApiClient) -> None:
        params = {"tag": tag} if tag else {}
        rows = await c.call("GET", _defs(c, definition, "history"), params=params)
        show(rows, ["tag", "from", "to", "by", "at", "reason"], as_json)

    go(run)
