"""The ``workflow.yaml`` contract: models, safe loading, validation, expressions, schema."""

from __future__ import annotations

from lockstep.spec.load import LoadedSpec, load_spec, load_spec_file
from lockstep.spec.models import RetrySpec, StepSpec, WorkflowSpec

__all__ = [
    "LoadedSpec",
    "RetrySpec",
    "StepSpec",
    "WorkflowSpec",
    "load_spec",
    "load_spec_file",
]
