"""Steps the engine decides while the run waits, holding no worker: an ``approval:`` (people
decide through the run workflow's ``decide`` update) and a ``wait:`` (a durable timer).

A decision is an update: Temporal records it in the run's history once accepted, so a server
killed while a run waits loses nothing, and an update id per person and step makes a decision
sent twice (a retry across a restart) count once. The validator refuses, without a trace in
the history, a decision for a step that is not waiting or from someone who already decided.
Who may decide at all is the approvals service's check (it knows people and roles).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from lockstep.clock import format_ts
    from lockstep.engine.states import StepStatus
    from lockstep.engine.types import ApprovalAsk, Decision, GateAnswer, StepPlan
    from lockstep.spec.durations import format_duration
    from lockstep.spec.expressions import ExpressionError, render, to_text

DECIDE_UPDATE = "lockstep.decide"
APPROVED, REJECTED, TIMED_OUT, WAITING = "approved", "rejected", "timed_out", "waiting"


class NotDecidable(Exception):
    """A decision the run cannot take (not waiting, already decided): the update is refused."""


@dataclass
class _Gate:
    required: int
    decisions: list[Decision] = field(default_factory=list)
    outcome: str | None = None

    @property
    def approvals(self) -> int:
        return sum(1 for d in self.decisions if d.approve)


class GateKeeper:
    """The open approvals of one run and the waiting they do (part of the interpreter)."""

    def __init__(
        self,
        emit: Callable[..., None],
        settle: Callable[..., None],
        status: dict[str, str],
    ) -> None:
        self._emit = emit
        self._settle = settle
        self._status = status
        self._open: dict[str, _Gate] = {}

    async def run(self, step: StepPlan, ctx: dict[str, Any]) -> None:
        """Wait out ``step`` (an approval or a wait), then settle it."""
        if step.approval is not None:
            await self._approval(step, ctx)
        else:
            await self._timer(step, ctx)

    # -- decisions (the update's validator and handler)

    def check(self, decision: Decision) -> None:
        gate = self._open.get(decision.step)
        if gate is None or gate.outcome is not None:
            raise NotDecidable(f"step '{decision.step}' is not waiting for approval")
        if any(d.user == decision.user for d in gate.decisions):
            raise NotDecidable(f"{decision.user} already decided on step '{decision.step}'")

    def decide(self, decision: Decision) -> GateAnswer:
        self.check(decision)
        gate = self._open[decision.step]
        gate.decisions.append(decision)
        self._emit("approval_decided", step=decision.step, detail=asdict(decision))
        if not decision.approve:
            gate.outcome = REJECTED
        elif gate.approvals >= gate.required:
            gate.outcome = APPROVED
        return GateAnswer(
            step=decision.step,
            state=gate.outcome or WAITING,
            approvals=gate.approvals,
            required=gate.required,
        )

    # -- the waits

    async def _approval(self, step: StepPlan, ctx: dict[str, Any]) -> None:
        terms = step.approval
        assert terms is not None
        try:
            message = to_text(render(terms.message, ctx)) if terms.message else None
        except ExpressionError as exc:
            self._settle(step.id, StepStatus.FAILED, error=str(exc))
            return
        deadline = (
            format_ts(workflow.now() + timedelta(seconds=terms.timeout_s))
            if terms.timeout_s
            else None
        )
        ask = ApprovalAsk(
            approvers=list(terms.approvers),
            required=terms.required,
            allow_self=terms.allow_self,
            input_schema=terms.input_schema,
            message=message,
            deadline=deadline,
            on_timeout=terms.on_timeout,
        )
        gate = self._open[step.id] = _Gate(required=terms.required)
        self._status[step.id] = StepStatus.WAITING
        self._emit("step_waiting", step=step.id, detail=asdict(ask))
        try:
            await workflow.wait_condition(lambda: gate.outcome is not None, timeout=terms.timeout_s)
        except TimeoutError:
            gate.outcome = TIMED_OUT
        except asyncio.CancelledError:
            self._open.pop(step.id, None)
            self._emit("approval_closed", step=step.id, detail={"state": "cancelled"})
            self._settle(step.id, StepStatus.CANCELLED, error="cancelled")
            raise
        self._open.pop(step.id, None)
        self._close(step, gate)

    def _close(self, step: StepPlan, gate: _Gate) -> None:
        terms = step.approval
        assert terms is not None
        state, outputs, error = gate.outcome or TIMED_OUT, None, None
        if state == APPROVED:
            outputs = {}
            for d in gate.decisions:  # later approvers' input wins
                outputs.update(d.input or {})
        elif state == REJECTED:
            last = gate.decisions[-1]
            error = f"rejected by {last.user}" + (f": {last.comment}" if last.comment else "")
        else:
            waited = format_duration(terms.timeout_s or 0)
            if terms.on_timeout == "approve":
                outputs = {}
            elif terms.on_timeout == "reject":
                error = f"rejected: no decision within {waited} (on_timeout: reject)"
            else:
                error = f"timed out: no decision within {waited}"
        detail = {"state": state, "on_timeout": terms.on_timeout if state == TIMED_OUT else None}
        self._emit("approval_closed", step=step.id, detail=detail)
        if outputs is not None:
            self._settle(step.id, StepStatus.SUCCEEDED, outputs=outputs)
        else:
            self._settle(step.id, StepStatus.FAILED, error=error)

    async def _timer(self, step: StepPlan, ctx: dict[str, Any]) -> None:
        now = workflow.now()
        try:
            until = (
                _instant(render(step.wait_until, ctx), step.id)
                if step.wait_until is not None
                else now + timedelta(seconds=step.wait_s or 0)
            )
        except ExpressionError as exc:
            self._settle(step.id, StepStatus.FAILED, error=str(exc))
            return
        self._status[step.id] = StepStatus.WAITING
        self._emit("step_waiting", step=step.id)
        seconds = (until - now).total_seconds()
        try:
            if seconds > 0:
                await workflow.sleep(seconds)
        except asyncio.CancelledError:
            self._settle(step.id, StepStatus.CANCELLED, error="cancelled")
            raise
        self._settle(step.id, StepStatus.SUCCEEDED, outputs={"until": format_ts(until)})


def _instant(value: Any, step: str) -> datetime:
    text = to_text(value)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExpressionError(
            f"'until' of step '{step}' gave {text[:60]!r}, not an ISO 8601 instant "
            "(e.g. 2026-12-24T18:00:00Z)"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
