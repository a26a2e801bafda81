"""Structural diff of two workflow specs (``lockstep versions diff D@6 D@7``).

Input is plain JSON-like data, not models, so the diff also works for specs of another
dialect and for text loaded from storage; ``spec_data`` gives the expected shape for a
``WorkflowSpec`` (aliases such as ``finally``/``if``, defaults left out so that writing a
default explicitly is not a change). Only ``steps``, ``finally`` and ``params`` have meaning
here; every other top-level key is diffed generically.

Whether a change to ``params`` breaks callers is decided in ``spec.param_changes``; how a
diff reads (a summary, JSON for the API, lines for the CLI) is here, with the records.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from lockstep.spec.json_values import MISSING, join_path, keys_of, or_missing, same, show
from lockstep.spec.param_changes import ParamChange, param_changes

if TYPE_CHECKING:
    from lockstep.spec.models import WorkflowSpec

ChangeKind = Literal["added", "removed", "changed"]
StepGroup = Literal["steps", "finally"]


@dataclass(frozen=True)
class FieldChange:
    """One value that differs; ``old``/``new`` is None on the side where it is absent."""

    path: str
    old: Any
    new: Any
    kind: ChangeKind

    def describe(self) -> str:
        if self.kind == "added":
            return f"{self.path} added {show(self.new)}"
        if self.kind == "removed":
            return f"{self.path} removed (was {show(self.old)})"
        return f"{self.path} {show(self.old)} → {show(self.new)}"


@dataclass(frozen=True)
class StepChange:
    """A step added, removed or changed; an added or removed step lists its keys as fields."""

    step: str
    kind: ChangeKind
    fields: tuple[FieldChange, ...]
    group: StepGroup = "steps"


@dataclass(frozen=True)
class SpecDiff:
    steps: tuple[StepChange, ...] = ()
    params: tuple[ParamChange, ...] = ()
    other: tuple[FieldChange, ...] = ()

    @property
    def breaking(self) -> bool:
        """Whether some params accepted before are rejected now; step changes never are."""
        return any(change.breaking for change in self.params)

    @property
    def empty(self) -> bool:
        return not (self.steps or self.params or self.other)

    @property
    def summary(self) -> str:
        if self.empty:
            return "no changes"
        counts = {k: sum(s.kind == k for s in self.steps) for k in ("changed", "added", "removed")}
        words = [f"{n} {kind}" for kind, n in counts.items() if n]
        if words:  # "2 steps changed, 1 added": the noun goes with the first count only
            noun = " step " if words[0].startswith("1 ") else " steps "
            words[0] = words[0].replace(" ", noun, 1)
        parts = [", ".join(words)] if words else []
        if self.params:
            broken = sum(p.breaking for p in self.params)
            note = f" ({broken} breaking)" if broken else ""
            parts.append(_count(len(self.params), "param change") + note)
        if self.other:
            parts.append(_count(len(self.other), "other change"))
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the API; ``old``/``new`` is null on the side where a value is absent."""
        head = {"summary": self.summary, "empty": self.empty, "breaking": self.breaking}
        return {**head, **json.loads(json.dumps(asdict(self), ensure_ascii=False, default=str))}

    def render(self) -> list[str]:
        """Human lines for the CLI: ``+`` added, ``-`` removed, ``~`` changed, ``!`` breaking."""
        marks = {"added": "+", "removed": "-", "changed": "~"}
        lines: list[str] = []
        for change in self.steps:
            label = f"{'finally step' if change.group == 'finally' else 'step'} {change.step}"
            if change.kind == "changed":
                lines.extend(f"~ {label}: {f.describe()}" for f in change.fields)
            else:
                lines.append(f"{marks[change.kind]} {label}")
        for param in self.params:
            mark = "!" if param.breaking else marks.get(param.kind, "~")
            name = f"param {param.param}" if param.param else "params"
            lines.append(f"{mark} {name}: {param.detail}{' (breaking)' if param.breaking else ''}")
        lines.extend(f"{marks[f.kind]} {f.describe()}" for f in self.other)
        return lines


def spec_data(spec: WorkflowSpec) -> dict[str, Any]:
    """The plain data ``diff_specs`` expects for a loaded workflow."""
    return spec.model_dump(by_alias=True, exclude_defaults=True, mode="json")


def diff_specs(old: Mapping[str, Any], new: Mapping[str, Any]) -> SpecDiff:
    """Compare two specs given as plain data (see ``spec_data``)."""
    steps: list[StepChange] = []
    other: list[FieldChange] = []
    for key in keys_of(old, new):
        before, after = old.get(key, MISSING), new.get(key, MISSING)
        if key == "params" or same(before, after):
            continue
        if key in ("steps", "finally") and all(
            v is MISSING or isinstance(v, Mapping) for v in (before, after)
        ):
            group: StepGroup = "finally" if key == "finally" else "steps"
            steps.extend(_step_changes(group, or_missing(before, {}), or_missing(after, {})))
        else:
            other.extend(_field_changes(key, before, after))
    params = param_changes(old.get("params"), new.get("params"))
    return SpecDiff(tuple(steps), tuple(params), tuple(other))


def _step_changes(group: StepGroup, old: Any, new: Any) -> list[StepChange]:
    changes: list[StepChange] = []
    for sid in keys_of(old, new):
        before, after = old.get(sid, MISSING), new.get(sid, MISSING)
        kind: ChangeKind = "changed"
        # an added or removed step is diffed against an empty one, giving one field per key
        if before is MISSING:
            kind, before = "added", {} if isinstance(after, Mapping) else MISSING
        elif after is MISSING:
            kind, after = "removed", {} if isinstance(before, Mapping) else MISSING
        fields = _field_changes("", before, after)
        if fields or kind != "changed":
            changes.append(StepChange(sid, kind, tuple(fields), group))
    return changes


def _field_changes(path: str, old: Any, new: Any) -> list[FieldChange]:
    # lists (needs, run argv, sources) are one value: element-wise diffs of them mislead
    if old is MISSING:
        return [FieldChange(path, None, new, "added")]
    if new is MISSING:
        return [FieldChange(path, old, None, "removed")]
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        changes: list[FieldChange] = []
        for key in keys_of(old, new):
            sub = join_path(path, key)
            changes.extend(_field_changes(sub, old.get(key, MISSING), new.get(key, MISSING)))
        return changes
    return [] if same(old, new) else [FieldChange(path, old, new, "changed")]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
