"""``lockstep projects|members|tokens|audit|login``: administration through the API."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from typing import Annotated, Any

import httpx
import typer
from rich.markup import escape
from rich.table import Table

from lockstep.cli import context, credentials
from lockstep.cli.client import ApiClient, connect
from lockstep.cli.output import OK, err, fail, out, print_json, visible
from lockstep.errors import InvalidRequest, LockstepError, Unauthenticated

AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]
projects = typer.Typer(help="Projects: the tenancy boundary.", no_args_is_help=True)
members = typer.Typer(help="Who may do what in a project.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens.", no_args_is_help=True)
secrets = typer.Typer(help="Project secrets (write-only).", no_args_is_help=True)


def go(fn: Any, *, engine: bool = False) -> None:
    """Run ``fn`` with a client; ``engine``: it submits runs, so without a server the embedded
    engine must run while it waits."""

    async def main() -> int:
        async with connect(context.settings(), engine=engine) as client:
            await fn(client)
        return OK

    try:
        asyncio.run(main())
    except LockstepError as exc:
        fail(exc)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> Table:
    table = Table()
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(escape(visible(_cell(row.get(c)))) for c in cols))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def show(data: Any, cols: list[str], as_json: bool) -> None:
    if as_json:
        print_json(data)
    else:
        out.print(_table(data if isinstance(data, list) else [data], cols))


@projects.command("list")
def projects_list(as_json: AsJson = False) -> None:
    """Projects you can see, with your role in each."""

    async def run(c: ApiClient) -> None:
        show(await c.call("GET", "/projects"), ["name", "role"], as_json)

    go(run)


@projects.command("create")
def projects_create(name: str) -> None:
    """Create a project (server administrators); you become its admin."""

    async def run(c: ApiClient) -> None:
        await c.call("POST", "/projects", json={"name": name})
        err.print(f"project {name} created")

    go(run)


@members.command("list")
def members_list(as_json: AsJson = False) -> None:
    """Members of the project (--project) and their roles."""

    async def run(c: ApiClient) -> None:
        show(await c.call("GET", f"/projects/{c.project}/members"), ["user", "role"], as_json)

    go(run)


@members.command("add")
def members_add(
    user: str, role: Annotated[str, typer.Argument(help="viewer|operator|maintainer|admin")]
) -> None:
    """Add a user to the project with a role (or change their role)."""

    async def run(c: ApiClient) -> None:
        await c.call("PUT", f"/projects/{c.project}/members", json={"user": user, "role": role})
        err.print(f"{user} is {role} in {c.project}")

    go(run)


@members.command("remove")
def members_remove(user: str) -> None:
    """Remove a user from the project."""

    async def run(c: ApiClient) -> None:
        await c.call("DELETE", f"/projects/{c.project}/members/{user}")
        err.print(f"{user} removed from {c.project}")

    go(run)


@tokens.command("create")
def tokens_create(
    name: str,
    expires_in_days: Annotated[int | None, typer.Option(min=1, max=3650)] = None,
    user: Annotated[str | None, typer.Option(help="for another user (administrators)")] = None,
) -> None:
    """Create a token; it is printed once and cannot be shown again."""

    async def run(c: ApiClient) -> None:
        body = {"name": name, "expires_in_days": expires_in_days, "user": user}
        print_new_token(await c.call("POST", "/tokens", json={k: v for k, v in body.items() if v}))

    go(run)


def print_new_token(data: dict[str, Any]) -> None:
    """A token just created: what it is on stderr, the secret alone on stdout (pipeable)."""
    err.print(f"token {data['id']} for {data['user']} (shown once):")
    sys.stdout.write(data["token"] + "\n")


@tokens.command("list")
def tokens_list(as_json: AsJson = False) -> None:
    """Your tokens (all tokens for administrators); never the secret part."""

    async def run(c: ApiClient) -> None:
        cols = ["id", "name", "user", "prefix", "created_at", "expires_at", "revoked_at"]
        show(await c.call("GET", "/tokens"), cols, as_json)

    go(run)


@tokens.command("revoke")
def tokens_revoke(token_id: str) -> None:
    """Revoke a token; it stops working on the next request."""

    async def run(c: ApiClient) -> None:
        await c.call("DELETE", f"/tokens/{token_id}")
        err.print(f"token {token_id} revoked")

    go(run)


@secrets.command("set")
def secrets_set(name: str) -> None:
    """Set a secret; the value is read from standard input (never from the command line)."""
    value = getpass.getpass("value: ") if sys.stdin.isatty() else sys.stdin.read()
    value = value.removesuffix("\n")
    if not value:
        fail(
            InvalidRequest(
                f"the value of secret {name} is empty; pipe it in "
                f'(printf %s "$VALUE" | lockstep secrets set {name}) or type it at the prompt'
            )
        )

    async def run(c: ApiClient) -> None:
        await c.call("PUT", f"/projects/{c.project}/secrets/{name}", json={"value": value})
        err.print(f"secret {name} set in {c.project}")

    go(run)


@secrets.command("list")
def secrets_list(as_json: AsJson = False) -> None:
    """Secret names in the project (values are never shown)."""

    async def run(c: ApiClient) -> None:
        cols = ["name", "updated_at", "updated_by"]
        show(await c.call("GET", f"/projects/{c.project}/secrets"), cols, as_json)

    go(run)


@secrets.command("delete")
def secrets_delete(name: str) -> None:
    """Delete a secret."""

    async def run(c: ApiClient) -> None:
        await c.call("DELETE", f"/projects/{c.project}/secrets/{name}")
        err.print(f"secret {name} deleted from {c.project}")

    go(run)


def audit_command(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    all_projects: Annotated[bool, typer.Option("--all", help="the whole server")] = False,
    as_json: AsJson = False,
) -> None:
    """The audit log of the project (admins), newest first."""

    async def run(c: ApiClient) -> None:
        path = "/audit" if all_projects else f"/projects/{c.project}/audit"
        cols = ["at", "project", "user", "action", "status", "address", "detail"]
        show(await c.call("GET", path, params={"limit": limit}), cols, as_json)

    go(run)


def login_command(
    url: Annotated[str, typer.Argument(help="the server, e.g. http://host:8080")],
) -> None:
    """Store a token for URL and make it the current context: plain commands go there until
    `lockstep logout`. The token is read from standard input (or a hidden prompt)."""
    token = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    settings = context.settings()

    async def check() -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            client = ApiClient(http, url, embedded=False, project=settings.project)
            http.headers["authorization"] = f"Bearer {token}"
            data: dict[str, Any] = await client.call("GET", "/me")
            return data

    try:
        if not token:
            raise Unauthenticated("no token given on standard input")
        me = asyncio.run(check())
    except LockstepError as exc:
        fail(exc)
    path = credentials.save(settings.config_dir, url, token)
    credentials.use(settings.config_dir, url)
    err.print(
        f"logged in to {url} as {me['user']} (saved in {path}); commands now go there until "
        "`lockstep logout`"
    )
