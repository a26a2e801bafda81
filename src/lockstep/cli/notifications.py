"""``lockstep notifications …``: channels, subscriptions, and the delivery log."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import err

notifications = typer.Typer(
    help="Notifications: channels (webhook, Slack, email) and the events they are told of.",
    no_args_is_help=True,
)
channels = typer.Typer(help="Where notifications go.", no_args_is_help=True)
notifications.add_typer(channels, name="channels")
Opt = typer.Option


@channels.command("add")
def channels_add(
    name: Annotated[str, typer.Argument(help="the channel's name, e.g. ops")],
    kind: Annotated[str, typer.Argument(help="webhook, slack or email")],
    url: Annotated[str | None, Opt(help="webhook and slack: where to POST")] = None,
    url_secret: Annotated[
        str | None, Opt(help="slack: the project secret holding the URL instead (its name)")
    ] = None,
    secret: Annotated[
        str | None, Opt(help="webhook: the project secret that signs each body (its name)")
    ] = None,
    host: Annotated[str | None, Opt(help="email: the SMTP server (STARTTLS)")] = None,
    port: Annotated[int | None, Opt(help="email: its port (587)")] = None,
    sender: Annotated[str | None, Opt("--from", help="email: the From address")] = None,
    to: Annotated[list[str] | None, Opt(help="email: a recipient (repeat for more)")] = None,
    username: Annotated[str | None, Opt(help="email: the SMTP user")] = None,
    password: Annotated[
        str | None, Opt(help="email: the project secret holding the password (its name)")
    ] = None,
) -> None:
    """Add a channel. Secrets are named, never given: set them first with `lockstep secrets
    set NAME`."""
    given = {
        "url": url,
        "url_secret": url_secret,
        "secret": secret,
        "host": host,
        "port": port,
        "from": sender,
        "to": to,
        "username": username,
        "password": password,
    }
    settings = {k: v for k, v in given.items() if v is not None}

    async def run(c: ApiClient) -> None:
        body = {"name": name, "kind": kind, "settings": settings}
        row = await c.call("POST", f"/projects/{c.project}/notifications/channels", json=body)
        err.print(f"channel {row['name']} ({row['kind']}) added")

    go(run)


@channels.command("list")
def channels_list(as_json: AsJson = False) -> None:
    """The project's channels and their settings (secrets by name)."""

    async def run(c: ApiClient) -> None:
        rows = await c.call("GET", f"/projects/{c.project}/notifications/channels")
        if not as_json:
            rows = [{**r, "settings": _settings(r["settings"])} for r in rows]
        show(rows, ["name", "kind", "settings", "created_by"], as_json)

    go(run)


@channels.command("remove")
def channels_remove(name: str) -> None:
    """Remove a channel and its subscriptions."""

    async def run(c: ApiClient) -> None:
        at = f"/projects/{c.project}/notifications/channels/{quote(name, safe='')}"
        row = await c.call("DELETE", at)
        err.print(f"channel {name} removed ({row['subscriptions']} subscriptions with it)")

    go(run)


@notifications.command("subscribe")
def subscribe(
    channel: Annotated[str, typer.Argument(help="the channel told")],
    on: Annotated[
        list[str], Opt("--on", help="an event, e.g. run.failed (repeat, or comma-separate)")
    ],
    definition: Annotated[str | None, Opt(help="only this definition's")] = None,
    instance: Annotated[str | None, Opt(help="only this instance's")] = None,
    status: Annotated[str | None, Opt(help="only with this status")] = None,
) -> None:
    """Tell a channel of events: run.started|succeeded|failed|cancelled,
    approval.requested|decided|timed_out, trigger.failed, schedule.missed."""
    events = [e.strip() for part in on for e in part.split(",") if e.strip()]
    body = {
        "channel": channel,
        "events": events,
        "definition": definition,
        "instance": instance,
        "status": status,
    }

    async def run(c: ApiClient) -> None:
        row = await c.call("POST", f"/projects/{c.project}/notifications/subscriptions", json=body)
        err.print(f"subscription {row['id']}: {', '.join(row['events'])} -> {row['channel']}")

    go(run)


@notifications.command("unsubscribe")
def unsubscribe(
    subscription: Annotated[str, typer.Argument(help="its id (subscriptions)")],
) -> None:
    async def run(c: ApiClient) -> None:
        at = f"/projects/{c.project}/notifications/subscriptions/{quote(subscription, safe='')}"
        await c.call("DELETE", at)
        err.print(f"subscription {subscription} removed")

    go(run)


@notifications.command("subscriptions")
def subscriptions(as_json: AsJson = False) -> None:
    """Which events go to which channel, with their filters."""

    async def run(c: ApiClient) -> None:
        rows = await c.call("GET", f"/projects/{c.project}/notifications/subscriptions")
        if not as_json:
            rows = [{**r, "events": ", ".join(r["events"])} for r in rows]
        cols = ["id", "channel", "events", "definition", "instance", "status"]
        show(rows, cols, as_json)

    go(run)


@notifications.command("deliveries")
def deliveries(
    as_json: AsJson = False,
    status: Annotated[str | None, Opt(help="pending, delivered or failed")] = None,
    limit: Annotated[int, Opt(help="at most this many, newest first")] = 50,
) -> None:
    """The delivery log: what was sent where, attempts, and the last error."""

    async def run(c: ApiClient) -> None:
        params: dict[str, Any] = {"limit": limit} | ({"status": status} if status else {})
        at = f"/projects/{c.project}/notifications/deliveries"
        rows = await c.call("GET", at, params=params)
        cols = ["id", "channel", "event", "run_id", "status", "attempts", "next_attempt_at"]
        show(rows, [*cols, "last_error"], as_json)

    go(run)


def _settings(settings: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in settings.items()
        if v is not None
    )
