"""``lockstep triggers …`` and ``lockstep schedules backfill``: the registered triggers of a
project, paused, resumed and fired by a person, their history, and a schedule's missed times
run again. A trigger is named ``DEFINITION ID``, or ``ID`` alone when one definition has it;
an instance's own trigger's id is ``INSTANCE/ID``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.markup import escape

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import FAILED, err, fail, out, print_json, visible
from lockstep.errors import InvalidRequest, NotFound

triggers = typer.Typer(
    help="Triggers: what starts runs by itself (registered when $LIVE moves).",
    no_args_is_help=True,
)
schedules = typer.Typer(help="Schedule triggers: run missed fire times.", no_args_is_help=True)
First = Annotated[
    str,
    typer.Argument(
        metavar="[DEFINITION] ID",
        help="the trigger's id in its workflow.yaml, after its definition unless the id is "
        "unique in the project",
    ),
]
Second = Annotated[str | None, typer.Argument(hidden=True)]
#: the longest last error a table shows (--json has it whole)
ERROR_SHOWN = 80


@triggers.command("list")
def triggers_list(
    definition: Annotated[
        str | None, typer.Option("--definition", "-d", help="only this definition's")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Registered triggers: definition, id, the version they run, when they fire, whether each
    is active, paused (by whom) or disabled by its version, the next fire time of a schedule,
    the last run fired and the last failed fire (UTC)."""

    async def run(c: ApiClient) -> None:
        params = {"definition": definition} if definition else {}
        rows = await c.call("GET", f"/projects/{c.project}/triggers", params=params)
        if not as_json:
            rows = [{**row, **_shown(row), "instance": row.get("instance") or "-"} for row in rows]
        cols = ["definition", "trigger", "version", "fires", "state", "next_fire", "last_fire"]
        if any(row.get("instance") not in (None, "-") for row in rows):
            # an instance's own trigger (`<instance>/<id>`) runs it; the file's, the definition
            cols.insert(1, "instance")
        show(rows, [*cols, "last_error"], as_json)

    go(run)


@triggers.command("pause")
def triggers_pause(first: First, second: Second = None) -> None:
    """No fires until resumed, whatever versions go live meanwhile."""
    _set(first, second, "pause")


@triggers.command("resume")
def triggers_resume(first: First, second: Second = None) -> None:
    """Fire again (a trigger its version disables with `enabled: false` stays still)."""
    _set(first, second, "resume")


@triggers.command("fire")
def triggers_fire(
    first: First,
    second: Second = None,
    param: Annotated[
        list[str] | None, typer.Option("-p", "--param", help="key=value, over the trigger's")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Fire a trigger now, as yourself (recorded as a manual run of it; a paused trigger fires
    too): prints the run's id, or says why there is none and exits 1."""

    async def run(c: ApiClient) -> None:
        at = await _locate(c, first, second, "fire")
        fire = await c.call("POST", f"{at}/fire", json={"args": param or []})
        if as_json:
            print_json(fire)
        if fire["status"] != "fired" or not fire.get("run_id"):
            why = f": {fire['error']}" if fire.get("error") else ""
            text = f"trigger {fire['trigger']} of {fire['definition']} made no run"
            text += f" ({fire['status']}{why})"
            err.print(f"[red]error[/]: {escape(visible(text))}")
            raise SystemExit(FAILED)
        if not as_json:
            out.print(fire["run_id"])
            err.print(f"follow it: lockstep runs wait {fire['run_id']}")

    go(run, engine=True)


@triggers.command("history")
def triggers_history(
    first: First,
    second: Second = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="at most this many")] = 50,
    as_json: AsJson = False,
) -> None:
    """The trigger's fires, newest first: when, the event's key (a fire time, a delivery id, a
    commit…), what became of it (fired, filtered, skipped, failed, or accepted and not yet
    handled), its run, or why none."""

    async def run(c: ApiClient) -> None:
        at = await _locate(c, first, second, "history")
        fires = await c.call("GET", f"{at}/history", params={"limit": limit})
        if as_json:
            print_json(fires)
        elif not fires:
            err.print("no fires yet")
        else:
            rows = [{**f, "when": _second(f["created_at"]), "run": f.get("run_id")} for f in fires]
            show(rows, ["when", "key", "status", "run", "error"], False)

    go(run)


@schedules.command("backfill")
def schedules_backfill(
    first: First,
    second: Second = None,
    start: Annotated[
        str, typer.Option("--from", help="the first fire time, e.g. 2026-01-02T00:00:00Z")
    ] = "",
    end: Annotated[str, typer.Option("--to", help="the last fire time (included), passed")] = "",
    as_json: AsJson = False,
) -> None:
    """Run a schedule trigger's fire times from --from to --to (both included; UTC unless the
    time names its zone) now, under its overlap policy: one run per time, none for a time that
    already has one. At most 1000 times."""
    begin, until = _time("--from", start), _time("--to", end)

    async def run(c: ApiClient) -> None:
        at = await _locate(c, first, second, "backfill", group="schedules")
        body = {"from": begin.isoformat(), "to": until.isoformat()}
        got = await c.call("POST", f"{at}/backfill", json=body)
        if as_json:
            print_json(got)
            return
        name = escape(visible(f"{got['trigger']} of {got['definition']}"))
        span = f"{begin:%Y-%m-%dT%H:%M:%SZ} to {until:%Y-%m-%dT%H:%M:%SZ}"
        if not got["times"]:
            err.print(f"no fire time of {name} from {span}: nothing to run")
            return
        for when in got["times"]:
            out.print(when)
        err.print(
            f"{len(got['times'])} fire times of {name} fire now (a time that has a run makes "
            f"none): lockstep triggers history {escape(got['definition'])} "
            f"{escape(got['trigger'])}"
        )

    go(run)


def _set(first: str, second: str | None, action: str) -> None:
    async def run(c: ApiClient) -> None:
        row = await c.call("POST", f"{await _locate(c, first, second, action)}/{action}")
        err.print(f"trigger {row['trigger']} of {row['definition']}: {_shown(row)['state']}")

    go(run)


async def _locate(
    c: ApiClient, first: str, second: str | None, command: str, group: str = "triggers"
) -> str:
    """The API path of the trigger ``DEFINITION ID``, or of ``ID`` when one definition of
    the project has it."""
    definition, trigger = (first, second) if second is not None else (None, first)
    if definition is None:
        rows = await c.call("GET", f"/projects/{c.project}/triggers")
        found = sorted({r["definition"] for r in rows if r["trigger"] == trigger})
        if not found:
            raise NotFound(
                f"no registered trigger '{trigger}' in project '{c.project}' "
                "(`lockstep triggers list` shows them)"
            )
        if len(found) > 1:
            raise InvalidRequest(
                f"trigger '{trigger}' is in {len(found)} definitions ({', '.join(found)}): "
                f"name one, e.g. `lockstep {group} {command} {found[0]} {trigger}`"
            )
        definition = found[0]
    return f"/projects/{c.project}/triggers/{quote(definition, safe='')}/{quote(trigger, safe='')}"


def _time(option: str, text: str) -> datetime:
    """An ISO 8601 time from the command line; one without a zone is UTC."""
    example = "e.g. 2026-01-02T03:00:00Z (UTC unless it names a zone)"
    if not text:
        fail(InvalidRequest(f"{option} is required: a time, {example}"))
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(InvalidRequest(f"{option} '{text}' is not a time: write it {example}"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _second(stamp: str) -> str:
    return stamp[:19] + "Z"


def _shown(row: dict[str, Any]) -> dict[str, str]:
    spec = row["spec"]
    if row.get("kind", "schedule") != "schedule":
        when = row["kind"]  # an event trigger fires on its event
    else:
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
    error = row.get("last_error") or ""
    if len(error) > ERROR_SHOWN:
        error = error[: ERROR_SHOWN - 1] + "…"
    return {
        "fires": when,
        "state": state,
        "next_fire": nxt or "-",
        "last_fire": row.get("last_fire") or "-",
        "last_error": f"{row['last_error_at']} {error}" if error else "-",
    }
