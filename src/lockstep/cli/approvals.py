"""``lockstep approvals …``: the approval steps waiting for people, and deciding them."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import err, out, print_json, visible
from lockstep.cli.render import describe_decision
from lockstep.errors import NotFound
from lockstep.records import DecisionRecord

approvals = typer.Typer(
    help="Approvals: steps waiting for people to approve or reject them.", no_args_is_help=True
)
RunId = Annotated[str, typer.Argument(help="the run (its id or a unique prefix)")]
Step = Annotated[str, typer.Argument(help="the approval step's id")]
Message = Annotated[str | None, typer.Option("--message", "-m", help="a comment, kept")]


@approvals.command("list")
def approvals_list(
    every: Annotated[bool, typer.Option("--all", help="decided ones too")] = False,
    as_json: AsJson = False,
) -> None:
    """Approval steps waiting (oldest first): run, step, workflow, how many approvals of how
    many, who may decide, and the deadline."""

    async def run(c: ApiClient) -> None:
        rows = await c.call(
            "GET",
            f"/projects/{c.project}/approvals",
            params={"status": "all" if every else "waiting"},
        )
        if not as_json:
            rows = [{**r, **_shown(r)} for r in rows]
        cols = ["run_id", "step", "workflow", "status", "approved", "approvers", "deadline"]
        show(rows, cols, as_json)

    go(run)


@approvals.command("show")
def approvals_show(run_id: RunId, step: Step, as_json: AsJson = False) -> None:
    """One approval: its message, what input it asks, and every decision."""

    async def run(c: ApiClient) -> None:
        row = await c.call("GET", f"/projects/{c.project}/runs/{run_id}/approvals/{step}")
        if as_json:
            print_json(row)
            return
        shown = _shown(row)
        out.print(f"{row['run_id']} / {row['step']} ({row['workflow']}): {row['status']}")
        if row.get("message"):
            out.print(visible(row["message"]))
        out.print(f"approvals: {shown['approved']}; approvers: {shown['approvers']}")
        if row.get("deadline"):
            out.print(f"deadline: {row['deadline']} (then {row['on_timeout']})")
        for d in row["decisions"]:
            out.print("  " + escape(describe_decision(DecisionRecord.model_validate(d))))

    go(run)


@approvals.command("approve")
def approvals_approve(
    run_id: RunId,
    step: Step,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="input the step asks for, key=value (repeatable)"),
    ] = None,
    message: Message = None,
) -> None:
    """Approve a waiting step, with the input it asks for."""
    _decide(run_id, step, "approve", param or [], message)


@approvals.command("reject")
def approvals_reject(run_id: RunId, step: Step, message: Message = None) -> None:
    """Reject a waiting step: it fails (and its run, unless it may continue on error)."""
    _decide(run_id, step, "reject", [], message)


def _decide(run_id: str, step: str, verdict: str, pairs: list[str], message: str | None) -> None:
    async def run(c: ApiClient) -> None:
        at = f"/projects/{c.project}/runs/{run_id}/approvals/{step}"
        given: dict[str, Any] = {}
        if pairs:
            from lockstep.spec.params import parse_cli_params  # reads of other commands stay light

            try:
                schema = (await c.call("GET", at)).get("input_schema")
            except NotFound:
                schema = {}  # never waited, or no such step: the decision itself says which
            given = parse_cli_params(pairs, schema)
        body = {"input": given, "comment": message}
        answer = await c.call("POST", f"{at}/{verdict}", json=body)
        state = answer["state"]
        if state == "waiting":
            state = f"waiting ({answer['approvals']} of {answer['required']} approvals)"
        err.print(f"{answer['step']} of run {answer['run_id']}: {state}")

    go(run)


def _shown(row: dict[str, Any]) -> dict[str, str]:
    approved = sum(1 for d in row["decisions"] if d["approve"])
    return {
        "approved": f"{approved}/{row['required']}",
        "approvers": ", ".join(row["approvers"]) or "role:operator",
        "deadline": row.get("deadline") or "-",
    }
