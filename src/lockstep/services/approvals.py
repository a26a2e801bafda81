"""Approvals: the approval steps of a project's runs, and people's decisions on them.

Who may decide is checked here (the people and roles of the project, the run's starter when
``allow_self`` is false, the input's schema); the decision itself is an update to the run's
workflow, which counts distinct approvals and refuses a step that is no longer waiting. The
decision reaches the run record through the recorder like every other change.
"""

from __future__ import annotations

import builtins
from typing import Any

from lockstep.auth.principal import Principal
from lockstep.auth.roles import Role, parse_role
from lockstep.clock import format_ts
from lockstep.errors import Conflict, EngineUnavailable, ParamError, PermissionDenied
from lockstep.services.runs import RunService
from lockstep.storage import approvals as store
from lockstep.storage.approvals import Approval
from lockstep.storage.database import Database

__all__ = ["Approval", "ApprovalService"]

#: who may decide an approval that names no approvers
DEFAULT_APPROVER = Role.operator


class ApprovalService:
    def __init__(self, db: Database, runs: RunService) -> None:
        self._db = db
        self._runs = runs

    async def list(
        self, project: str, status: str | None = store.WAITING
    ) -> builtins.list[Approval]:
        return await self._db.call(lambda s: store.listed(s, project, status))

    async def get(self, project: str, run_id: str, step: str) -> Approval:
        return await self._db.call(lambda s: store.get(s, project, run_id, step))

    async def decide(
        self,
        project: str,
        run_id: str,
        step: str,
        who: Principal,
        *,
        approve: bool,
        comment: str | None = None,
        given: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Approve or reject ``step`` of ``run_id`` as ``who``; returns how it stands."""
        from temporalio.client import WorkflowUpdateFailedError
        from temporalio.service import RPCError

        from lockstep.engine.gates import DECIDE_UPDATE
        from lockstep.engine.types import Decision, GateAnswer

        approval = await self._db.call(lambda s: store.to_decide(s, project, run_id, step))
        if approval.status != store.WAITING:
            raise Conflict(
                f"step '{step}' of run {run_id} is not waiting for approval: "
                f"it is {approval.status}"
            )
        _may_decide(approval, who, project)
        if any(d.get("user") == who.name for d in approval.decisions):
            raise Conflict(f"you ({who.name}) already decided on step '{step}' of run {run_id}")
        value = given or {}
        if approve and approval.input_schema is not None:
            # JSON Schema loads with the first decision, not with every process (reads stay light)
            from lockstep.spec.contracts import OutputError, check_contract

            try:
                check_contract(
                    value,
                    approval.input_schema,
                    step=step,
                    what="input",
                    subject=f"the input of approval '{step}'",
                )
            except OutputError as exc:
                raise ParamError(str(exc)) from None
        decision = Decision(
            step=step,
            user=who.name,
            approve=approve,
            comment=(comment or None),
            input=value if approve else None,
            at=format_ts(),
        )
        handle = self._runs.engine.get_workflow_handle(run_id)
        try:
            answer = await handle.execute_update(
                DECIDE_UPDATE,
                decision,
                # one decision per person and step: sent again (a retry), it counts once
                id=f"decide:{step}:{who.name}",
                result_type=GateAnswer,
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise Conflict(
                f"run {run_id} refused the decision: {getattr(cause, 'message', cause)}"
            ) from None
        except RPCError as exc:
            raise EngineUnavailable(
                f"the decision did not reach run {run_id} ({exc.message}); send it again"
            ) from exc
        return {
            "run_id": run_id,
            "step": step,
            "state": answer.state,
            "approvals": answer.approvals,
            "required": answer.required,
        }


def _may_decide(approval: Approval, who: Principal, project: str) -> None:
    role = who.role_in(project)
    allowed = approval.approvers or [f"role:{DEFAULT_APPROVER.name}"]
    ok = who.superuser or any(
        (a.startswith("role:") and role is not None and role >= parse_role(a[5:])) or a == who.name
        for a in allowed
    )
    if not ok:
        raise PermissionDenied(
            f"you ({who.name}) may not decide step '{approval.step}': its approvers are "
            + ", ".join(allowed)
        )
    if not approval.allow_self and approval.started_by == who.name:
        raise PermissionDenied(
            f"you started run {approval.run_id}, and step '{approval.step}' does not let its "
            "starter approve it (allow_self: false)"
        )
