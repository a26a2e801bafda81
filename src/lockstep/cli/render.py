"""Rich renderings of run records, shared by `run`, `runs show` and the live view."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from rich.markup import escape
from rich.table import Table

from lockstep.cli.output import out, styled, visible
from lockstep.engine.states import StepStatus
from lockstep.outputs_by_reference import is_ref, preview
from lockstep.records import Cause, DecisionRecord, RunPage, RunRecord, RunSelection, RunSummary
from lockstep.spec.durations import format_duration


def elapsed(start: str | None, end: str | None) -> str:
    if not start:
        return ""
    t0 = datetime.fromisoformat(start)
    t1 = datetime.fromisoformat(end) if end else datetime.now(UTC)
    return format_duration(max((t1 - t0).total_seconds(), 0.0))


def describe_cause(cause: Cause) -> str:
    """Why a run started, in one line of plain text for a terminal: its kind, then what that
    kind names — "manual by alice", "retry of r-1 by bob", "schedule nightly at 2026-…",
    "webhook hook delivery d-7", "upstream after-build after r-9"."""
    parts = [cause.kind.value]
    for label, value in (
        ("", cause.trigger),
        ("of ", cause.of),
        ("at ", cause.schedule_time),
        ("after ", cause.upstream_run),
        ("run ", cause.parent_run),
        ("step ", cause.parent_step),
        ("delivery ", cause.delivery),
        ("payload ", cause.payload_digest),
        ("by ", cause.user),
    ):
        if value:
            parts.append(label + value)
    return visible(" ".join(parts))


def describe_selection(part: RunSelection) -> str:
    """The part of its graph a run ran, as the flags that ask for it, and where the steps it
    needs came from: "--from b; needs a (reused from r-1)"."""
    asked = f"--only {','.join(part.only)}" if part.only else f"--from {','.join(part.from_)}"
    if not part.needed:
        return visible(asked)
    source = f"reused from {part.reuse}" if part.reuse else "run too"
    return visible(f"{asked}; needs {', '.join(part.needed)} ({source})")


def describe_decision(d: DecisionRecord) -> str:
    """One decision on an approval in one line of plain text: who, verdict, when, comment,
    input — "ann approved at 2026-…Z: canary first; input {"percent": 25}"."""
    line = f"{d.user} {'approved' if d.approve else 'rejected'} at {d.at}"
    if d.comment:
        line += f": {d.comment}"
    if d.input:
        line += f"; input {json.dumps(d.input, ensure_ascii=False, sort_keys=True)}"
    return visible(line)


def print_decisions(run: RunRecord) -> None:
    """Each approval step's decisions, one line each."""
    for step_id, step in run.steps.items():
        for d in step.decisions:
            out.print(f"[bold]{escape(step_id)}[/] {escape(describe_decision(d))}")


def run_table(run: RunRecord) -> Table:
    table = Table(title=f"{run.workflow} · {run.id} · {styled(run.status)}", title_justify="left")
    for col in ("step", "status", "attempt", "duration", "note"):
        table.add_column(col, overflow="fold")
    for step_id, step in run.steps.items():
        note = step.error or ""
        if step.status == StepStatus.RUNNING and step.history and step.history[-1].waiting:
            note = step.history[-1].waiting
        if step.reused_from:
            note = f"reused from {step.reused_from}"
        if step.cached_from:
            note = f"cached: {step.cached_from}"
        if step.items:
            note = f"items {_counts(step.items)}" + (f"; {note}" if note else "")
        name = f"{step_id} (finally)" if step.is_finally else step_id
        table.add_row(
            escape(name),
            styled(step.status),
            str(step.attempts or ""),
            elapsed(step.started_at, step.finished_at),
            escape(visible(note)),
        )
    return table


def _counts(items: dict[str, int]) -> str:
    """``7/10 succeeded, 1 failed, 2 running`` for a fan-out step's items."""
    done = f"{items.get(StepStatus.SUCCEEDED, 0)}/{items.get('total', 0)} succeeded"
    rest = [
        f"{n} {status}"
        for status, n in items.items()
        if status not in ("total", StepStatus.SUCCEEDED)
    ]
    return ", ".join([done, *rest])


def _value(value: object) -> str:
    """How an output reads in a terminal: a value stored by reference shows its size and a
    preview, never the whole."""
    shown = preview(value)
    if shown is not None:
        return shown
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def print_run(run: RunRecord) -> None:
    out.print(run_table(run))
    if run.error:
        out.print(f"[red]error[/]: {escape(visible(run.error))}")
    for step_id, step in run.steps.items():
        if step.stderr_tail:
            out.print(f"[bold]{escape(step_id)}[/] stderr, last lines:")
            for line in step.stderr_tail:
                out.print(f"  [red]![/] {escape(visible(line))}")
    print_decisions(run)
    if run.outputs:
        out.print("[bold]outputs[/]")
        for name, value in run.outputs.items():
            out.print(f"  {escape(visible(name))} = {escape(visible(_value(value)))}")
        if any(is_ref(v) for v in run.outputs.values()):
            out.print(f"  whole values: lockstep runs output {run.id} NAME")
    if run.definition:
        out.print(f"definition {escape(run.definition)} version {run.version}")
    if run.sha:
        out.print(f"commit {run.sha}")
    if run.pool:
        out.print(f"pool {escape(run.pool)}")
    for src in run.sources:
        out.print(f"source {escape(src.path)}: {escape(src.repo)} {escape(src.ref)} @ {src.sha}")
    for used in run.resources:
        at = f"{escape(used.name)}@{used.version}"
        if used.access == "read":
            out.print(f"reads resource {at} as {escape(used.alias or '')}")
        else:
            out.print(f"wrote resource {at} (step {escape(used.step or '')})")
    for child in run.children:
        out.print(
            f"child run {child.run_id} ({escape(child.workflow)}, {styled(child.status)}) "
            f"of step {escape(child.step)}"
        )
    if run.cause is not None:
        policy = f" ({run.rerun_policy})" if run.rerun_policy else ""
        out.print(f"cause: {escape(describe_cause(run.cause))}{policy}")
    if run.selection is not None:
        out.print(f"selection: {escape(describe_selection(run.selection))}")
    out.print(f"logs: lockstep runs logs {run.id}    record: lockstep runs show {run.id} --json")


def tree_order(items: list[RunSummary]) -> list[tuple[RunSummary, int]]:
    """``items`` with each child run right under its parent (when the parent is listed too),
    and how deep it sits; the others keep their order."""
    listed = {r.id for r in items}

    def parent(r: RunSummary) -> str | None:
        up = r.cause.parent_run if r.cause is not None else None
        return up if up in listed and up != r.id else None

    under: dict[str, list[RunSummary]] = {}
    for r in items:
        up = parent(r)
        if up is not None:
            under.setdefault(up, []).append(r)
    ordered: list[tuple[RunSummary, int]] = []

    def place(r: RunSummary, depth: int) -> None:
        ordered.append((r, depth))
        for child in sorted(under.get(r.id, []), key=lambda c: (c.created_at, c.id)):
            if depth < 50:  # stored parents cannot loop; never recurse without end anyway
                place(child, depth + 1)

    for r in items:
        if parent(r) is None:
            place(r, 0)
    return ordered


def runs_table(page: RunPage, width: int | None = None, *, tree: bool = False) -> Table:
    """Runs as rows. An id is copied whole into the next command and a status is read whole:
    neither ever wraps or shrinks; workflow and error give way (ellipsized) to fit ``width``.
    ``tree``: child runs indented under their parents."""
    placed = tree_order(page.items) if tree else [(r, 0) for r in page.items]
    rows = [
        (
            ("  " * (depth - 1) + "└ " if depth else "") + r.id,
            r.workflow,
            r.status,
            r.created_at[:16].replace("T", " "),
            format_duration(r.duration_s) if r.duration_s is not None else "",
            r.error or "",
        )
        for r, depth in placed
    ]
    heads = ("id", "workflow", "status", "created", "duration", "error")
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(heads)]
    # what is left after the whole columns and the gaps between them (2 a column) is shared
    # by workflow (half at least, never more than it needs) and error (the rest)
    room = (width or out.width) - sum(widths[i] for i in (0, 2, 3, 4)) - 2 * (len(heads) - 1)
    widths[1] = max(min(widths[1], max(room // 2, room - widths[5])), 4)
    widths[5] = max(room - widths[1], 5)
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style="bold")
    for head, w in zip(heads, widths, strict=True):
        table.add_column(head, width=w, no_wrap=True, overflow="ellipsis")
    for rid, workflow, status, created, duration, error in rows:
        table.add_row(
            rid, escape(workflow), styled(status), created, duration, escape(visible(error))
        )
    return table
