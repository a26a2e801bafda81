"""``lockstep resources …``: a project's named, versioned configuration."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import err, fail, out, print_json, visible
from lockstep.errors import InvalidRequest, LockstepError

resources = typer.Typer(
    help="Resources: named, versioned configuration that runs read, write and react to.",
    no_args_is_help=True,
)
Opt = typer.Option
DataFile = Annotated[
    str, Opt("--data", "-d", help="a JSON or YAML file holding an object, or - for stdin")
]
Message = Annotated[str | None, Opt("--message", "-m", help="why this version")]


def _read(source: str, what: str) -> Any:
    """A JSON or YAML document from a file or stdin (``-``), parsed safely."""
    from lockstep.spec.yamlsafe import load_yaml

    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        raise InvalidRequest(f"cannot read {what} {source}: {exc.strerror}") from None
    return load_yaml(raw, "stdin" if source == "-" else source).data


def _path(c: ApiClient, name: str, tail: str = "") -> str:
    return f"/projects/{c.project}/resources/{quote(name, safe='')}{tail}"


def _load(source: str, what: str) -> Any:
    try:
        return _read(source, what)
    except LockstepError as exc:
        fail(exc)


@resources.command("create")
def create(
    name: str,
    data: DataFile,
    schema: Annotated[
        str | None, Opt(help="a JSON Schema (JSON or YAML file) every version must satisfy")
    ] = None,
    description: Annotated[str | None, Opt(help="what the resource is for")] = None,
    message: Message = None,
) -> None:
    """Create a resource with its version 1."""
    body: dict[str, Any] = {"name": name, "data": _load(data, "data")}
    if schema is not None:
        body["schema"] = _load(schema, "schema")
    if description is not None:
        body["description"] = description
    if message is not None:
        body["message"] = message

    async def run(c: ApiClient) -> None:
        made = await c.call("POST", f"/projects/{c.project}/resources", json=body)
        err.print(f"resource {escape(made['resource'])} created: version {made['version']}")

    go(run)


@resources.command("write")
def write(name: str, data: DataFile, message: Message = None) -> None:
    """Write the next version of a resource."""
    body: dict[str, Any] = {"data": _load(data, "data")}
    if message is not None:
        body["message"] = message

    async def run(c: ApiClient) -> None:
        made = await c.call("POST", _path(c, name, "/versions"), json=body)
        err.print(f"resource {escape(made['resource'])}: version {made['version']} written")

    go(run)


@resources.command("list")
def list_(as_json: AsJson = False) -> None:
    """The project's resources and their latest version numbers."""

    async def run(c: ApiClient) -> None:
        rows = await c.call("GET", f"/projects/{c.project}/resources")
        show(rows, ["name", "latest", "description", "created_by"], as_json)

    go(run)


def _writer(v: dict[str, Any]) -> str:
    if v.get("run_id"):
        return f"run {v['run_id']} step {v.get('step')} (attempt {v.get('attempt')})"
    return f"{v.get('author') or '?'}"


@resources.command("show")
def show_(
    name: str,
    version: Annotated[
        int | None, Opt("--version", "-v", help="this version, not the latest")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """A resource's data at its latest version (or --version N), and who wrote it."""

    async def run(c: ApiClient) -> None:
        query = {} if version is None else {"version": version}
        got = await c.call("GET", _path(c, name), params=query)
        if as_json:
            print_json(got)
            return
        v, r = got["version"], got["resource"]
        out.print(f"resource {escape(r['name'])} version {v['version']} of {r['latest']}")
        out.print(f"written by {escape(visible(_writer(v)))} at {v['created_at']}")
        if v.get("message"):
            out.print(f"message: {escape(visible(v['message']))}")
        out.print(f"sha256 {v['digest']}")
        for line in json.dumps(v["data"], indent=2, ensure_ascii=False).splitlines():
            out.print(escape(visible(line)), soft_wrap=True)

    go(run)


@resources.command("history")
def history(name: str, as_json: AsJson = False) -> None:
    """Every version of a resource, newest first."""

    async def run(c: ApiClient) -> None:
        rows = await c.call("GET", _path(c, name, "/versions"))
        if as_json:
            print_json(rows)
            return
        table = [{**r, "by": _writer(r), "sha256": r["digest"][:12]} for r in rows]
        show(table, ["version", "created_at", "by", "message", "sha256"], False)

    go(run)


@resources.command("diff")
def diff(name: str, old: int, new: int, as_json: AsJson = False) -> None:
    """What changed in a resource's data from version OLD to version NEW."""

    async def run(c: ApiClient) -> None:
        got = await c.call("GET", _path(c, name, "/diff"), params={"old": old, "new": new})
        if as_json:
            print_json(got)
            return
        if not got["changes"]:
            out.print(f"versions {old} and {new} of {escape(name)} hold the same data")
        for ch in got["changes"]:
            was, now = json.dumps(ch["old"]), json.dumps(ch["new"])
            line = {"added": f"+ {ch['path']}: {now}", "removed": f"- {ch['path']}: {was}"}.get(
                ch["op"], f"~ {ch['path']}: {was} -> {now}"
            )
            out.print(escape(visible(line)), soft_wrap=True)

    go(run)
