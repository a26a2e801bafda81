"""``lockstep plan|deploy|rollback`` and ``lockstep deployments …``: pipelines deployed on
pools, changed only through a plan that was shown (``docs/deployments.md``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import err, out, print_json, visible
from lockstep.errors import InvalidRequest

deployments = typer.Typer(
    help="Deployments: pipelines running on pools, changed by plan -> deploy -> rollback.",
    no_args_is_help=True,
)
Name = Annotated[str, typer.Argument(help="the deployment's name")]
Why = Annotated[str | None, typer.Option("--reason", "-m", help="why: kept with the event")]


def _at(c: ApiClient, name: str) -> str:
    return f"/projects/{c.project}/deployments/{quote(name, safe='')}"


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in values or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InvalidRequest(f"{option} {pair!r} must be NODE_OR_GROUP=VALUE")
        found[key.strip()] = value.strip()
    return found


def _print_lines(lines: list[str]) -> None:
    for line in lines:  # names and values come from a spec: shown as text, never markup
        out.print(visible(line), markup=False, highlight=False)


def plan_command(
    name: Name,
    version: Annotated[
        str | None,
        typer.Option("--version", help="DEF@SELECTOR to deploy (default: the deployed selector)"),
    ] = None,
    placement: Annotated[
        list[str] | None,
        typer.Option("--placement", help="NODE_OR_GROUP=POOL (repeatable)"),
    ] = None,
    replicas: Annotated[
        list[str] | None,
        typer.Option("--replicas", help="NODE_OR_GROUP=N, 0..100 (repeatable)"),
    ] = None,
    recompute: Annotated[
        bool, typer.Option("--recompute", help="rebuild the state of changed stateful nodes")
    ] = False,
    reason: Why = None,
    as_json: AsJson = False,
) -> None:
    """Preview what a deploy would change, node by node, and keep it as a plan; prints the
    plan id to give `lockstep deploy`. Nothing runs."""

    async def run(c: ApiClient) -> None:
        body: dict[str, Any] = {
            "version": version,
            "placement": _pairs(placement, "--placement"),
            "replicas": _pairs(replicas, "--replicas"),
            "recompute": recompute,
            "reason": reason,
        }
        plan = await c.call("POST", f"{_at(c, name)}/plans", json=body)
        if as_json:
            print_json(plan)
            return
        _print_lines(plan["lines"])
        err.print(f"deploy it with: lockstep deploy {name} --plan {plan['id']}")

    go(run)


def deploy_command(
    name: Name,
    plan: Annotated[str, typer.Option("--plan", help="the plan id `lockstep plan` printed")],
    reason: Why = None,
    as_json: AsJson = False,
) -> None:
    """Apply exactly that plan; a stale plan (the deployment changed, or its selector now
    names another version) is refused."""

    async def run(c: ApiClient) -> None:
        done = await c.call("POST", f"{_at(c, name)}/deploy", json={"plan": plan, "reason": reason})
        if as_json:
            print_json(done)
        else:
            err.print(visible(done["message"]), markup=False)

    go(run)


def rollback_command(
    name: Name,
    to: Annotated[
        int | None, typer.Option("--to", help="the version (default: the previous deploy's)")
    ] = None,
    reason: Why = None,
    as_json: AsJson = False,
) -> None:
    """Deploy an earlier version through the same plan/deploy path; prints the plan applied."""

    async def run(c: ApiClient) -> None:
        done = await c.call("POST", f"{_at(c, name)}/rollback", json={"to": to, "reason": reason})
        if as_json:
            print_json(done)
            return
        _print_lines(done["plan"]["lines"])
        err.print(visible(done["message"]), markup=False)

    go(run)


@deployments.command("list")
def deployments_list(as_json: AsJson = False) -> None:
    """The project's deployments: definition, version, generation, state."""

    async def run(c: ApiClient) -> None:
        rows = await c.call("GET", f"/projects/{c.project}/deployments")
        if not as_json:
            rows = [{**r, "version": (r["desired"] or {}).get("version")} for r in rows]
        show(rows, ["name", "definition", "version", "generation", "state", "updated_at"], as_json)

    go(run)


@deployments.command("show")
def deployments_show(name: Name, as_json: AsJson = False) -> None:
    """One deployment: what it should run, where each node runs, every deploy."""

    async def run(c: ApiClient) -> None:
        row = await c.call("GET", _at(c, name))
        if as_json:
            print_json(row)
            return
        desired = row["desired"]
        out.print(
            visible(
                f"{row['name']}: {row['state']}, generation {row['generation']}, "
                f"{desired['definition']} version {desired['version']} ({desired['selector']})"
            ),
            markup=False,
        )
        seen = (row.get("status") or {}).get("nodes", {})
        out.print(f"drift policy: {row.get('drift_policy', 'reconcile')}", markup=False)
        if row.get("status"):
            out.print(
                visible(f"status: {row['status']['summary']} (at {row['observed_at']})"),
                markup=False,
            )
        for nid, where in row["nodes"].items():
            line = f"  {nid}: pool {where['pool']}, {where['replicas']} replicas"
            if nid in seen:
                line += f", {seen[nid]['actual']} running"
                line += f": {seen[nid]['message']}" if seen[nid]["message"] else ""
            out.print(visible(line), markup=False)
        for rev in row["revisions"]:
            why = f": {rev['reason']}" if rev.get("reason") else ""
            line = (
                f"  #{rev['generation']} {rev['at']} {rev['by']} {rev['action']} version "
                f"{rev['desired']['version']} (plan {rev['plan']}){why}"
            )
            out.print(visible(line), markup=False)

    go(run)


def workloads_command(
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="only this deployment's replicas")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """What runs where: each replica's node, worker, since, restarts, records, lag, errors."""

    async def run(c: ApiClient) -> None:
        query = {"deployment": deployment} if deployment else {}
        rows = await c.call("GET", f"/projects/{c.project}/workloads", params=query)
        if as_json:
            print_json(rows)
            return
        if not rows:
            err.print("no replicas")
        for r in rows:  # a line each: a table of 13 columns is unreadable in a terminal
            where = f"on {r['worker']} since {r['since']}" if r["worker"] else "not placed yet"
            old = "" if r["current"] else " (old deploy, stopping)"
            line = (
                f"{r['deployment']} {r['node']}/{r['replica']} {r['state']} {where}, "
                f"pool {r['pool']}{old}: restarts {r['restarts']}, records in "
                f"{r['records_in']} out {r['records_out']}, lag {r['lag']}, errors {r['errors']}"
            )
            line += f"; last error: {r['last_error']}" if r["last_error"] else ""
            out.print(visible(line), markup=False, highlight=False, soft_wrap=True)

    go(run)


@deployments.command("events")
def deployments_events(name: Name, as_json: AsJson = False) -> None:
    """What happened to a deployment, oldest first: who, when, what, why."""

    async def run(c: ApiClient) -> None:
        rows = await c.call("GET", f"{_at(c, name)}/events")
        show(rows, ["at", "actor", "kind", "plan", "version", "generation", "reason"], as_json)

    go(run)


def _set(name: str, verb: str, reason: str | None) -> None:
    async def run(c: ApiClient) -> None:
        row = await c.call("POST", f"{_at(c, name)}/{verb}", json={"reason": reason})
        err.print(f"deployment {name}: {row['state']}")

    go(run)


@deployments.command("pause")
def deployments_pause(name: Name, reason: Why = None) -> None:
    """The reconciler leaves the replicas as they are and only reports drift."""
    _set(name, "pause", reason)


@deployments.command("resume")
def deployments_resume(name: Name, reason: Why = None) -> None:
    """The reconciler converges the replicas again."""
    _set(name, "resume", reason)


@deployments.command("policy")
def deployments_policy(
    name: Name,
    drift: Annotated[
        str,
        typer.Option(
            "--drift",
            help="reconcile: converge changes made outside lockstep back; report: record only",
        ),
    ],
    reason: Why = None,
) -> None:
    """What the reconciler does with drift (a replica stopped or started outside lockstep)."""

    async def run(c: ApiClient) -> None:
        body = {"drift": drift, "reason": reason}
        row = await c.call("POST", f"{_at(c, name)}/policy", json=body)
        err.print(f"deployment {name}: drift policy {row['drift_policy']}")

    go(run)


@deployments.command("delete")
def deployments_delete(name: Name, reason: Why = None) -> None:
    """Stop a deployment; its plans, deploys and events are kept."""

    async def run(c: ApiClient) -> None:
        await c.call("DELETE", _at(c, name), params={"reason": reason} if reason else None)
        err.print(f"deployment {name} deleted")

    go(run)
