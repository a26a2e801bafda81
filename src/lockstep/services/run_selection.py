"""What a new run takes from earlier runs instead of executing: a retry, the steps that
succeeded in the run it retries; a partial run (``--only``/``--from``), the steps its
selection needs, from the run named by ``--reuse`` (without it they run too). Either way a
taken step is recorded ``reused_from`` the run that produced it. Which steps a selection
picks is ``engine/selection``'s (pure); this module reads runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockstep.clock import utcnow
from lockstep.engine.events import Event
from lockstep.engine.states import StepStatus
from lockstep.engine.types import ReusedStep
from lockstep.errors import InvalidRequest, NotFound
from lockstep.records import RunRecord, RunSelection
from lockstep.services.run_reads import RunReads

if TYPE_CHECKING:
    from lockstep.engine.selection import Chosen
    from lockstep.spec.documents import Runnable
    from lockstep.spec.load import LoadedSpec
    from lockstep.spec.models import StepSpec, WorkflowSpec


class RunReuse(RunReads):
    """The reads a launcher makes to decide what a new run reuses."""

    async def _reused_step(self, old: RunRecord, step_id: str) -> ReusedStep:
        """Step ``step_id`` of ``old`` (which succeeded there) as a later run takes it: its
        outputs and artifacts, from the run that produced them (``old``, or the run ``old``
        itself reused them from)."""
        rec = old.steps[step_id]
        source = rec.reused_from or old.id
        stored = await self.artifacts(old.project, source)
        return ReusedStep(
            run_id=source,
            outputs=rec.outputs or {},
            artifacts=[a for a in stored if a.step == step_id],
        )

    async def _reuse(self, old: RunRecord, loaded: Runnable) -> dict[str, ReusedStep]:
        """The steps of ``old`` a retry takes as they are: those that succeeded, with every
        step they need."""
        from lockstep.engine.plan import step_order
        from lockstep.spec.load import LoadedSpec
        from lockstep.spec.machine import LoadedMachine

        reuse: dict[str, ReusedStep] = {}
        # a state machine starts again from its first state: its steps may loop
        order = [] if isinstance(loaded, LoadedMachine) else step_order(loaded.spec)
        for step_id, final in order:
            assert isinstance(loaded, LoadedSpec)
            if final:
                continue  # cleanup steps always run again
            spec = loaded.spec.steps[step_id]
            rec = old.steps.get(step_id)
            ancestors_ok = all(n in reuse for n in spec.needs)
            if rec is not None and rec.status == StepStatus.SUCCEEDED and ancestors_ok:
                reuse[step_id] = await self._reused_step(old, step_id)
        return reuse

    async def _reuse_again(
        self, project: str, retry_of: str | None, loaded: Runnable
    ) -> dict[str, ReusedStep]:
        """What a queued retry started late reuses: the same as when it was submitted."""
        if retry_of is None:
            return {}
        try:
            old = await self._record(project, retry_of)
        except NotFound:
            return {}  # the run it retried is gone: run every step
        return await self._reuse(old, loaded)

    async def _select(
        self,
        project: str,
        loaded: LoadedSpec,
        selection: RunSelection,
        *,
        definition: str | None,
        reuse: dict[str, ReusedStep],
    ) -> tuple[Chosen, RunSelection, dict[str, ReusedStep]]:
        """The steps ``selection`` runs, the selection as recorded (the whole id of the run
        it reuses, the steps it needs), and ``reuse`` (a retry's) with the needed steps it
        does not hold taken from ``selection.reuse``. Refuses, before anything starts, a run
        to reuse that is not of the same workflow or in which a needed step did not
        succeed."""
        from lockstep.engine.selection import choose

        spec = loaded.spec
        chosen = choose(spec, selection.only, selection.from_)
        reuse = dict(reuse)
        reuse_id = None
        if selection.reuse is not None:
            try:
                old = await self._record(project, await self.resolve_id(project, selection.reuse))
            except NotFound:
                raise NotFound(
                    f"--reuse: run '{selection.reuse}' not found in project '{project}'; "
                    "list runs with `lockstep runs list`"
                ) from None
            _same_workflow(old, spec.name, definition)
            reuse_id = old.id
            missing = [sid for sid in chosen.needed if sid not in reuse]
            _check_succeeded(old, missing)
            _check_outputs(old, spec, chosen.selected, missing)
            for sid in missing:
                reuse[sid] = await self._reused_step(old, sid)
        recorded = RunSelection(
            only=selection.only, from_=selection.from_, reuse=reuse_id, needed=list(chosen.needed)
        )
        return chosen, recorded, reuse


def _same_workflow(old: RunRecord, name: str, definition: str | None) -> None:
    """A run reuses the results of a run of the same definition (a run of a file: of the
    same workflow name)."""
    if definition is not None and old.definition != definition:
        what = f"definition '{old.definition}'" if old.definition else f"the file '{old.workflow}'"
        raise InvalidRequest(
            f"--reuse {old.id}: that is a run of {what}, not of definition '{definition}'; "
            "reuse a run of the same definition"
        )
    if definition is None and old.workflow != name:
        raise InvalidRequest(
            f"--reuse {old.id}: that is a run of workflow '{old.workflow}', not '{name}'; "
            "reuse a run of the same workflow"
        )


def _check_succeeded(old: RunRecord, needed: list[str]) -> None:
    """Every needed step must have succeeded in ``old``: its outputs are what the selected
    steps read."""
    from lockstep.engine.selection import NOT_SELECTED

    bad = []
    for sid in needed:
        rec = old.steps.get(sid)
        if rec is None:
            bad.append(f"{sid} (not in that run)")
        elif rec.status != StepStatus.SUCCEEDED:
            bad.append(f"{sid} ({NOT_SELECTED if rec.error == NOT_SELECTED else rec.status})")
    if bad:
        raise InvalidRequest(
            f"--reuse {old.id}: the selection needs steps that did not succeed in that run: "
            f"{', '.join(bad)}; reuse a run where they succeeded, or drop --reuse to run them"
        )


def _check_outputs(
    old: RunRecord, spec: WorkflowSpec, selected: frozenset[str], taken: list[str]
) -> None:
    """Every output a selected step reads of a step taken from ``old`` must be there: a step
    that succeeded without it (an older version, a branch that did not write it) would fail
    the selected step only once it runs."""
    for sid, step in spec.steps.items():
        if sid not in selected:
            continue
        for dep, key in _outputs_read(step):
            outputs = old.steps[dep].outputs if dep in taken else None
            if isinstance(outputs, dict) and key not in outputs:
                raise InvalidRequest(
                    f"--reuse {old.id}: step '{sid}' reads steps.{dep}.outputs.{key}, but "
                    f"step '{dep}' of that run succeeded without output '{key}'; reuse a run "
                    f"that has it, or drop --reuse to run '{dep}' again"
                )


def _outputs_read(step: StepSpec) -> list[tuple[str, str]]:
    """(step, key) of each ``steps.X.outputs.KEY`` that ``step``'s expressions read;
    ``has(steps.X.outputs.KEY)`` asks whether it is there, so it is not a read."""
    from lockstep.spec.contracts import template_strings
    from lockstep.spec.expressions import OPEN, find_templates, reference_spans

    data = step.model_dump(mode="json", by_alias=True, exclude_none=True)
    condition = data.get("if")
    sources = [condition] if isinstance(condition, str) and OPEN not in condition else []
    for text, _ in template_strings(data, ""):
        sources += [t.source for t in find_templates(text)] if OPEN in text else []
    return [
        (ref.chain[1], ref.chain[3])
        for src in sources
        for ref in reference_spans(src)
        if len(ref.chain) >= 4
        and (ref.chain[0], ref.chain[2]) == ("steps", "outputs")
        and not src[: ref.start].rstrip().endswith("has(")
    ]


def not_selected(steps: list[str]) -> list[Event]:
    """The events that record ``steps`` as left out of a partial run, at its creation."""
    from lockstep.engine.selection import NOT_SELECTED

    now = utcnow()
    return [
        Event(kind="step_finished", at=now, step=sid, status=StepStatus.SKIPPED, error=NOT_SELECTED)
        for sid in steps
    ]
