"""Which expressions of a step read values and which only hand them on: a value stored by
reference (``lockstep.outputs_by_reference``) stays a marker where it is only handed on (a
``with:`` value or a run output that is exactly ``${{ steps.X.outputs.NAME }}``) and is loaded
before any expression looks inside it. Pure: imported by workflows.
"""

from lockstep.engine.types import StepPlan
from lockstep.spec.contracts import template_strings
from lockstep.spec.expressions import OPEN, find_templates, tokenize, whole_template


def plain_path(src: str) -> bool:
    """Whether ``src`` only names a value (``steps.a.outputs.big``), so a marker there can be
    handed on without reading it."""
    tokens = tokenize(src)
    if not tokens or tokens[0].kind != "ident":
        return False
    i = 1
    while i < len(tokens):
        if tokens[i].value == "." and i + 1 < len(tokens) and tokens[i + 1].kind == "ident":
            i += 2
        elif (
            tokens[i].value == "["
            and i + 2 < len(tokens)
            and tokens[i + 1].kind == "string"
            and tokens[i + 2].value == "]"
        ):
            i += 3
        else:
            return False
    return True


def step_sources(step: StepPlan) -> tuple[list[str], list[str]]:
    """The CEL sources a step evaluates: those that read values, and the ``with:`` values
    that are exactly a path, which only hand a value on (a marker may stay a marker)."""
    read = [*step.bindings.values(), *([step.condition] if step.condition else [])]
    texts = [*step.command, *step.env.values(), *step.artifacts.values(), step.cache_key or ""]
    handed: list[str] = []
    for text, _ in template_strings(step.inputs, ""):
        only = whole_template(text) if OPEN in text else None
        if only is not None and plain_path(only.source):
            handed.append(only.source)
        else:
            texts.append(text)
    read += [t.source for text in texts if OPEN in text for t in find_templates(text)]
    return read, handed
