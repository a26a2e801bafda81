"""Cache keys of steps: everything a step's result depends on, hashed. Pure and deterministic,
so the interpreter computes them in the workflow.

In the key: the workflow and step, the resolved command and environment (secret *names*, never
values), the image reference, the step's input, the SHA-256 of every artifact it receives, the
run's commit or snapshot and its sources' commits, and the user's extra key. A change in any of
them is a miss."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lockstep.engine.types import ArtifactRef, RunPlan, StepPlan

VERSION = 1  # bump when what goes into a key changes


def cache_key(
    plan: RunPlan,
    step: StepPlan,
    argv: list[str],
    env: dict[str, str],
    data: Any,
    artifacts: list[ArtifactRef],
    extra: Any,
) -> str:
    workspace = plan.workspace
    material = {
        "v": VERSION,
        "workflow": plan.workflow,
        "step": step.id,
        "argv": argv,
        "env": env,
        "secrets": step.secrets,
        "image": step.container.image if step.container else None,
        "executor": step.executor,
        "config": step.config,
        "input": data,
        "artifacts": sorted((a.step, a.name, a.sha256) for a in artifacts),
        "checkout": workspace.sha or workspace.snapshot,
        "sources": sorted((s.path, s.sha) for s in workspace.sources),
        "extra": extra,
        # only when set, so the keys of steps without it stay what they were
        **({"result": step.result} if step.result is not None else {}),
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()
