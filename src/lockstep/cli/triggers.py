"""``lockstep triggers …``: the registered triggers of a project, paused and resumed."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import err

triggers = typer.Typer(
    help="Triggers: what starts runs by itself (registered when $LIVE moves).",
    no_args_is_help=True,
)
Definition = Annotated[str, typer.Argument(help="the definition the trigger belongs to")]
TriggerId = Annotated[str, typer.Argument(help="the trigger's id in its workflow.yaml")]


@triggers.command("list")
def triggers_list(
    definition: Annotated[
        str | None, typer.Option("--definition", "-d", help="only this definition's")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Registered triggers: definition, id, kind, the version they run, when they fire,
    whether each is active, paused (by whom) or disabled by its version, and their next and
    last fire times (UTC)."""

    async def run(c: ApiClient) -> None:
        params = {"definition": definition} if definition else {}
        rows = await c.call("GET", f"/projects/{c.project}/triggers", params=params)
        if not as_json:
            rows = [{**row, **_shown(row)} for row in rows]
        cols = ["definition", "trigger", "version", "fires", "state", "next_fire", "last_fire"]
        show(rows, cols, as_json)

    go(run)


@triggers.command("pause")
def triggers_pause(definition: Definition, trigger: TriggerId) -> None:
    """No fires until resumed, whatever versions go live meanwhile."""
    _set(definition, trigger, "pause")


@triggers.command("resume")
def triggers_resume(definition: Definition, trigger: TriggerId) -> None:
    """Fire again (a trigger its version disables with `enabled: false` stays still)."""
    _set(definition, trigger, "resume")


def _set(definition: str, trigger: str, action: str) -> None:
    async def run(c: ApiClient) -> None:
        at = (
            f"/projects/{c.project}/triggers/{quote(definition, safe='')}/{quote(trigger, safe='')}"
        )
        row = await c.call("POST", f"{at}/{action}")
        err.print(f"trigger {row['trigger']} of {row['definition']}: {_shown(row)['state']}")

    go(run)


def _shown(row: dict[str, Any]) -> dict[str, str]:
    spec = row["spec"]
    every = spec.get("every") or 0
    when = f"cron {spec['cron']}" if spec.get("cron") else f"every {every:g}s"
    if spec.get("timezone", "UTC") != "UTC":
        when += f" ({spec['timezone']})"
    if row.get("paused_by"):
        state = f"paused by {row['paused_by']}"
    elif spec.get("enabled") is False:
        state = "disabled"  # by its version: enabled: false
    else:
        state = "active"
    # a paused Schedule still computes its next times: shown, they would read as a promise
    nxt = row.get("next_fire") if state == "active" else None
    return {
        "fires": when,
        "state": state,
        "next_fire": nxt or "-",
        "last_fire": row.get("last_fire") or "-",
    }
