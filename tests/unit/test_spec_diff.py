from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
import yaml

from lockstep.errors import ParamError
from lockstep.spec.diff import FieldChange, SpecDiff, StepChange, diff_specs, spec_data
from lockstep.spec.load import load_spec
from lockstep.spec.param_changes import ParamChange
from lockstep.spec.params import parse_cli_params, resolve_params

BASE = """\
name: orbit
description: propagate orbits
params:
  type: object
  properties:
    duration_s: {type: integer, minimum: 1, default: 60}
    label: {type: string}
env:
  MODE: fast
defaults:
  timeout: 10m
  retry: {attempts: 2}
steps:
  prepare:
    run: python prepare.py
  build:
    needs: [prepare]
    run: make build
    retry: {attempts: 3, backoff: 2s}
    env: {LEVEL: "1"}
  old:
    needs: [prepare]
    run: echo old
finally:
  cleanup:
    run: echo done
"""


def data(text: str) -> dict[str, Any]:
    return spec_data(load_spec(textwrap.dedent(text)).spec)


def diff(old: str, new: str) -> SpecDiff:
    return diff_specs(data(old), data(new))


def with_params(schema: dict[str, Any] | None) -> dict[str, Any]:
    """A spec whose params are ``schema``, loaded as a user would write it."""
    doc: dict[str, Any] = {"name": "w", "steps": {"a": {"run": "true"}}}
    if schema is not None:
        doc["params"] = schema
    return spec_data(load_spec(yaml.safe_dump(doc, sort_keys=False)).spec)


def params_diff(old: dict[str, Any] | None, new: dict[str, Any] | None) -> SpecDiff:
    return diff_specs(with_params(old), with_params(new))


def obj(props: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, **more}


def assert_breaks(sample: dict[str, Any], old: Any, new: Any) -> None:
    """The real validator accepts ``sample`` for the old schema and rejects it for the new."""
    resolve_params(sample, old)
    with pytest.raises(ParamError):
        resolve_params(sample, new)


def assert_cli_breaks(pairs: list[str], old: Any, new: Any) -> None:
    """The same through ``-p key=value`` (the CLI, and params stored on instances)."""
    resolve_params(parse_cli_params(pairs, old), old)
    with pytest.raises(ParamError):
        resolve_params(parse_cli_params(pairs, new), new)


def change(result: SpecDiff, param: str, kind: str) -> ParamChange:
    found = [c for c in result.params if c.param == param and c.kind == kind]
    assert len(found) == 1, result.params
    return found[0]


# --------------------------------------------------------------------------- whole specs


def test_identical_specs_have_no_changes() -> None:
    result = diff(BASE, BASE)
    assert result.empty
    assert not result.breaking
    assert result.summary == "no changes"
    assert result.render() == []
    assert result.to_json() == {
        "summary": "no changes",
        "empty": True,
        "breaking": False,
        "steps": [],
        "params": [],
        "other": [],
    }


def test_formatting_key_order_and_spelled_out_defaults_are_not_changes() -> None:
    rewritten = """\
    name: orbit
    description: propagate orbits
    steps:
      prepare: {run: python prepare.py, continue_on_error: false, needs: []}
      old: {run: echo old, needs: [prepare]}
      build:
        env:
          LEVEL: "1"
        retry:
          backoff: 2
          attempts: 3
        run: make build
        needs:
          - prepare
    finally: {cleanup: {run: echo done}}
    defaults: {timeout: 600s, retry: {attempts: 2}}
    env: {MODE: fast}
    params:
      type: object
      properties:
        label: {type: string}
        duration_s: {minimum: 1, type: integer, default: 60}
    """
    assert diff(BASE, rewritten).summary == "no changes"


def test_steps_added_removed_and_changed_with_field_paths() -> None:
    new = (
        BASE.replace("retry: {attempts: 3, backoff: 2s}", "retry: {attempts: 5, backoff: 2s}")
        .replace('env: {LEVEL: "1"}', 'env: {LEVEL: "1", TOKEN: "${{ secrets.TOKEN }}"}')
        .replace("    needs: [prepare]\n    run: make build", "    run: make build")
        .replace("  old:\n    needs: [prepare]\n    run: echo old\n", "  lint:\n    run: ruff\n")
        .replace("    run: python prepare.py", "    run: python prepare.py --fast\n    timeout: 1m")
    )
    result = diff(BASE, new)
    by_step = {s.step: s for s in result.steps}
    assert set(by_step) == {"prepare", "build", "old", "lint"}
    assert all(s.group == "steps" for s in result.steps)
    assert by_step["prepare"].kind == "changed"
    assert by_step["prepare"].fields == (
        FieldChange("run", "python prepare.py", "python prepare.py --fast", "changed"),
        FieldChange("timeout", None, 60.0, "added"),
    )
    assert by_step["build"].fields == (
        FieldChange("env.TOKEN", None, "${{ secrets.TOKEN }}", "added"),
        FieldChange("needs", ["prepare"], None, "removed"),
        FieldChange("retry.attempts", 3, 5, "changed"),
    )
    assert by_step["old"].kind == "removed"
    assert by_step["old"].fields == (
        FieldChange("run", "echo old", None, "removed"),
        FieldChange("needs", ["prepare"], None, "removed"),
    )
    assert by_step["lint"].kind == "added"
    assert by_step["lint"].fields == (FieldChange("run", None, "ruff", "added"),)
    assert result.summary == "2 steps changed, 1 added, 1 removed"
    assert not result.breaking  # removing a step is not a params break
    assert result.params == ()
    assert result.other == ()


def test_lists_compare_as_a_whole_and_aliases_are_used() -> None:
    new = BASE.replace(
        "    needs: [prepare]\n    run: echo old",
        "    needs: [prepare, build]\n    if: false\n    run: [echo, old]",
    )
    (step,) = diff(BASE, new).steps
    assert step.fields == (
        FieldChange("run", "echo old", ["echo", "old"], "changed"),
        FieldChange("needs", ["prepare"], ["prepare", "build"], "changed"),
        FieldChange("if", None, False, "added"),
    )


def test_finally_steps_are_flagged_and_a_move_is_a_remove_and_an_add() -> None:
    new = BASE.replace(
        "  cleanup:\n    run: echo done", "  cleanup:\n    run: echo bye\n  old:\n    run: echo old"
    )
    new = new.replace("  old:\n    needs: [prepare]\n    run: echo old\n", "", 1)
    result = diff(BASE, new)
    assert [(s.group, s.step, s.kind) for s in result.steps] == [
        ("steps", "old", "removed"),
        ("finally", "cleanup", "changed"),
        ("finally", "old", "added"),
    ]
    assert result.render() == [
        "- step old",
        '~ finally step cleanup: run "echo done" → "echo bye"',
        "+ finally step old",
    ]


def test_other_top_level_changes() -> None:
    new = (
        BASE.replace("description: propagate orbits", "description: propagate orbits faster")
        .replace("  MODE: fast", "  MODE: slow\n  REGION: eu")
        .replace("retry: {attempts: 2}", "retry: {attempts: 4}")
        .replace(
            "defaults:",
            "timeout: 1h\nsources:\n  - {repo: 'https://example.com/x.git', ref: main, path: x}\ndefaults:",
        )
    )
    result = diff(BASE, new)
    assert result.other == (
        FieldChange("description", "propagate orbits", "propagate orbits faster", "changed"),
        FieldChange("env.MODE", "fast", "slow", "changed"),
        FieldChange("env.REGION", None, "eu", "added"),
        FieldChange("defaults.retry.attempts", 2, 4, "changed"),
        FieldChange(
            "sources",
            None,
            [{"repo": "https://example.com/x.git", "ref": "main", "path": "x"}],
            "added",
        ),
        FieldChange("timeout", None, 3600.0, "added"),
    )
    assert result.summary == "6 other changes"
    assert result.render()[:3] == [
        '~ description "propagate orbits" → "propagate orbits faster"',
        '~ env.MODE "fast" → "slow"',
        '+ env.REGION added "eu"',
    ]


def test_summary_render_and_json_of_a_mixed_diff() -> None:
    new = (
        BASE.replace("retry: {attempts: 3, backoff: 2s}", "retry: {attempts: 5, backoff: 2s}")
        .replace("    run: python prepare.py", "    run: python prepare.py --fast")
        .replace("  old:\n    needs: [prepare]\n    run: echo old\n", "  lint:\n    run: ruff\n")
        .replace("minimum: 1,", "minimum: 10,")
        .replace("description: propagate orbits", "description: faster")
        .replace(
            "    label: {type: string}",
            "    label: {type: string}\n    region: {type: string, default: eu}",
        )
    )
    result = diff(BASE, new)
    assert result.summary == (
        "2 steps changed, 1 added, 1 removed; 2 param changes (1 breaking); 1 other change"
    )
    assert result.breaking
    assert result.render() == [
        '~ step prepare: run "python prepare.py" → "python prepare.py --fast"',
        "~ step build: retry.attempts 3 → 5",
        "- step old",
        "+ step lint",
        "! param duration_s: minimum 1 → 10 (breaking)",
        '+ param region: added, optional, default "eu"',
        '~ description "propagate orbits" → "faster"',
    ]
    payload = result.to_json()
    assert json.loads(json.dumps(payload)) == payload
    assert payload["summary"] == result.summary and payload["breaking"] is True
    assert payload["steps"][1] == {
        "step": "build",
        "kind": "changed",
        "group": "steps",
        "fields": [{"path": "retry.attempts", "old": 3, "new": 5, "kind": "changed"}],
    }
    assert payload["params"][0] == {
        "param": "duration_s",
        "kind": "minimum",
        "detail": "minimum 1 → 10",
        "breaking": True,
        "old": 1,
        "new": 10,
    }


@pytest.mark.parametrize(
    ("counts", "summary"),
    [
        ({"added": 1}, "1 step added"),
        ({"removed": 2}, "2 steps removed"),
        ({"changed": 1, "removed": 3}, "1 step changed, 3 removed"),
    ],
)
def test_summary_wording(counts: dict[str, int], summary: str) -> None:
    steps = tuple(
        StepChange(f"{kind}{i}", kind, ())  # type: ignore[arg-type]
        for kind, n in counts.items()
        for i in range(n)
    )
    assert SpecDiff(steps=steps).summary == summary


def test_long_values_are_truncated_in_render_but_not_in_json() -> None:
    script = "echo " + "x" * 200
    result = diff_specs({"steps": {"a": {"run": "true"}}}, {"steps": {"a": {"run": script}}})
    (line,) = result.render()
    assert line.startswith('~ step a: run "true" → "echo xxx')
    assert line.endswith("…") and len(line) < 120
    assert result.to_json()["steps"][0]["fields"][0]["new"] == script


def test_plain_mappings_of_another_dialect() -> None:
    old = {"kind": "flow", "steps": [{"id": "a"}], "meta": {"a.b": 1, "labels": {"x y": "1"}}}
    new = {"kind": "flow", "steps": [{"id": "a"}, {"id": "b"}], "meta": {"a.b": 2, "labels": {}}}
    result = diff_specs(old, new)
    assert result.steps == ()
    assert result.other == (
        FieldChange("steps", [{"id": "a"}], [{"id": "a"}, {"id": "b"}], "changed"),
        FieldChange('meta["a.b"]', 1, 2, "changed"),
        FieldChange('meta.labels["x y"]', "1", None, "removed"),
    )
    assert not result.breaking


# --------------------------------------------------------------------------- params: breaking

S = {"type": "string"}
I = {"type": "integer"}
N = {"type": "number"}
CLOSED = {"additionalProperties": False}

BREAKING: list[Any] = [
    # id, old schema, new schema, (param, kind) flagged, a params object now rejected
    (
        "removed-closed",
        obj({"a": S, "b": S}, **CLOSED),
        obj({"b": S}, **CLOSED),
        ("a", "removed"),
        {"a": "x"},
    ),
    ("added-required", obj({"a": S}), obj({"a": S, "r": S}, required=["r"]), ("r", "added"), {}),
    ("made-required", obj({"a": S}), obj({"a": S}, required=["a"]), ("a", "required"), {}),
    (
        "default-removed-from-required",
        obj({"a": {**S, "default": "x"}}, required=["a"]),
        obj({"a": S}, required=["a"]),
        ("a", "default"),
        {},
    ),
    ("type-number-to-integer", obj({"n": N}), obj({"n": I}), ("n", "type"), {"n": 1.5}),
    (
        "type-union-narrowed",
        obj({"n": {"type": ["string", "integer"]}}),
        obj({"n": S}),
        ("n", "type"),
        {"n": 1},
    ),
    ("type-added", obj({"n": {}}), obj({"n": S}), ("n", "type"), {"n": 1}),
    (
        "enum-lost",
        obj({"e": {"enum": ["dev", "prod"]}}),
        obj({"e": {"enum": ["dev"]}}),
        ("e", "enum"),
        {"e": "prod"},
    ),
    ("enum-added", obj({"e": S}), obj({"e": {**S, "enum": ["dev"]}}), ("e", "enum"), {"e": "qa"}),
    ("const-changed", obj({"c": {"const": 1}}), obj({"c": {"const": 2}}), ("c", "const"), {"c": 1}),
    ("const-added", obj({"c": I}), obj({"c": {**I, "const": 2}}), ("c", "const"), {"c": 1}),
    (
        "minimum-raised",
        obj({"n": {**I, "minimum": 1}}),
        obj({"n": {**I, "minimum": 10}}),
        ("n", "minimum"),
        {"n": 5},
    ),
    ("minimum-added", obj({"n": I}), obj({"n": {**I, "minimum": 0}}), ("n", "minimum"), {"n": -1}),
    (
        "exclusiveMinimum-raised",
        obj({"n": {**N, "exclusiveMinimum": 0}}),
        obj({"n": {**N, "exclusiveMinimum": 5}}),
        ("n", "exclusiveMinimum"),
        {"n": 3},
    ),
    (
        "minLength-raised",
        obj({"s": {**S, "minLength": 1}}),
        obj({"s": {**S, "minLength": 5}}),
        ("s", "minLength"),
        {"s": "ab"},
    ),
    (
        "minItems-raised",
        obj({"l": {"type": "array", "minItems": 0}}),
        obj({"l": {"type": "array", "minItems": 2}}),
        ("l", "minItems"),
        {"l": ["a"]},
    ),
    (
        "maximum-lowered",
        obj({"n": {**I, "maximum": 100}}),
        obj({"n": {**I, "maximum": 10}}),
        ("n", "maximum"),
        {"n": 50},
    ),
    (
        "exclusiveMaximum-lowered",
        obj({"n": {**N, "exclusiveMaximum": 10}}),
        obj({"n": {**N, "exclusiveMaximum": 5}}),
        ("n", "exclusiveMaximum"),
        {"n": 7},
    ),
    (
        "maxLength-lowered",
        obj({"s": {**S, "maxLength": 10}}),
        obj({"s": {**S, "maxLength": 2}}),
        ("s", "maxLength"),
        {"s": "abc"},
    ),
    (
        "maxItems-added",
        obj({"l": {"type": "array"}}),
        obj({"l": {"type": "array", "maxItems": 1}}),
        ("l", "maxItems"),
        {"l": [1, 2]},
    ),
    (
        "pattern-added",
        obj({"s": S}),
        obj({"s": {**S, "pattern": "^[a-z]+$"}}),
        ("s", "pattern"),
        {"s": "ABC"},
    ),
    (
        "pattern-changed",
        obj({"s": {**S, "pattern": "^[a-z]+$"}}),
        obj({"s": {**S, "pattern": "^[a-c]+$"}}),
        ("s", "pattern"),
        {"s": "xyz"},
    ),
    (
        "multipleOf-added",
        obj({"n": I}),
        obj({"n": {**I, "multipleOf": 2}}),
        ("n", "multipleOf"),
        {"n": 3},
    ),
    (
        "multipleOf-not-a-divisor",
        obj({"n": {**I, "multipleOf": 2}}),
        obj({"n": {**I, "multipleOf": 3}}),
        ("n", "multipleOf"),
        {"n": 4},
    ),
    (
        "uniqueItems-added",
        obj({"l": {"type": "array"}}),
        obj({"l": {"type": "array", "uniqueItems": True}}),
        ("l", "uniqueItems"),
        {"l": [1, 1]},
    ),
    (
        "items-type-narrowed",
        obj({"l": {"type": "array", "items": N}}),
        obj({"l": {"type": "array", "items": I}}),
        ("l[]", "type"),
        {"l": [1.5]},
    ),
    (
        "items-added",
        obj({"l": {"type": "array"}}),
        obj({"l": {"type": "array", "items": S}}),
        ("l[]", "type"),
        {"l": [1]},
    ),
    (
        "nested-enum-lost",
        obj({"cfg": obj({"region": {"enum": ["eu", "us"]}})}),
        obj({"cfg": obj({"region": {"enum": ["eu"]}})}),
        ("cfg.region", "enum"),
        {"cfg": {"region": "us"}},
    ),
    (
        # defaults fill in top-level params only: a nested default does not satisfy required
        "nested-required-despite-default",
        obj({"cfg": obj({"region": {**S, "default": "eu"}})}),
        obj({"cfg": obj({"region": {**S, "default": "eu"}}, required=["region"])}),
        ("cfg.region", "required"),
        {"cfg": {}},
    ),
    (
        "nested-items-object",
        obj({"hosts": {"type": "array", "items": obj({"port": I})}}),
        obj({"hosts": {"type": "array", "items": obj({"port": {**I, "maximum": 1024}})}}),
        ("hosts[].port", "maximum"),
        {"hosts": [{"port": 8080}]},
    ),
    (
        "closed-where-undeclared-params-were-the-contract",
        {"type": "object"},
        {"type": "object", "additionalProperties": False},
        ("", "additionalProperties"),
        {"anything": 1},
    ),
    (
        "explicit-extras-schema-narrowed",
        obj({"a": S}, additionalProperties=S),
        obj({"a": S}, additionalProperties={**S, "maxLength": 2}),
        ("", "additionalProperties"),
        {"x": "abc"},
    ),
    (
        "declared-where-any-name-was-accepted",
        {"type": "object"},
        obj({"n": I}),
        ("n", "added"),
        {"n": "x"},
    ),
    (
        "enum-replaced-by-narrower-type",
        obj({"e": {"enum": ["dev", 1]}}),
        obj({"e": S}),
        ("e", "type"),
        {"e": 1},
    ),
    ("schema-removed", obj({"a": S}), None, ("a", "removed"), {"a": "x"}),
    ("schema-removed-open", {"type": "object"}, None, ("", "additionalProperties"), {"x": 1}),
    ("schema-added-with-required", None, obj({"r": S}, required=["r"]), ("r", "added"), {}),
    (
        "not-analysed-assumed-breaking",
        obj({"n": {}}),
        obj({"n": {"anyOf": [S, {"type": "boolean"}]}}),
        ("n", "anyOf"),
        {"n": 1},
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "where", "sample"),
    [case[1:] for case in BREAKING],
    ids=[case[0] for case in BREAKING],
)
def test_breaking_param_changes(
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    where: tuple[str, str],
    sample: dict[str, Any],
) -> None:
    assert_breaks(sample, old, new)
    result = params_diff(old, new)
    assert change(result, *where).breaking
    assert result.breaking
    assert "(breaking)" in "\n".join(result.render())
    assert result.summary.endswith("breaking)")


def test_removing_a_declared_param_breaks_cli_and_instance_callers() -> None:
    # resolve_params alone would accept the now-undeclared name (the schema is open), but
    # `-p label=x` and instances that stored it go through parse_cli_params, which rejects it
    old, new = obj({"label": S, "count": I}), obj({"count": I})
    resolve_params({"label": "x"}, new)
    assert_cli_breaks(["label=x"], old, new)
    found = change(params_diff(old, new), "label", "removed")
    assert found.breaking
    assert found.detail == "removed; callers that pass it are now rejected"


def test_removing_the_last_declared_param_of_an_open_schema_breaks_nobody() -> None:
    old, new = obj({"label": S}), {"type": "object"}
    resolve_params(parse_cli_params(["label=x"], new), new)
    found = change(params_diff(old, new), "label", "removed")
    assert not found.breaking
    assert found.detail == "removed; accepted as undeclared"


def test_adding_a_typed_param_where_any_name_was_accepted_says_why_it_breaks() -> None:
    found = change(params_diff({"type": "object"}, obj({"n": I})), "n", "added")
    assert found.detail == (
        "added, optional; values passed before as an undeclared param may now be rejected"
    )
    assert found.new == I


def test_default_removed_from_a_required_param_is_one_breaking_line() -> None:
    old = obj({"a": {**S, "default": "x"}}, required=["a"])
    new = obj({"a": S}, required=["a"])
    assert params_diff(old, new).render() == [
        '! param a: default removed (was "x"); the param is required, so callers must now pass it'
        " (breaking)"
    ]


# --------------------------------------------------------------------------- params: not breaking

NOT_BREAKING: list[Any] = [
    # id, old schema, new schema, (param, kind) reported, a params object both accept
    ("removed-no-properties-left", obj({"a": S}), {"type": "object"}, ("a", "removed"), {"a": "x"}),
    ("added-optional", obj({"a": S}), obj({"a": S, "o": I}), ("o", "added"), {"a": "x"}),
    (
        "added-optional-closed",
        obj({"a": S}, **CLOSED),
        obj({"a": S, "o": I}, **CLOSED),
        ("o", "added"),
        {},
    ),
    (
        "added-required-with-default",
        obj({"a": S}),
        obj({"a": S, "r": {**S, "default": "eu"}}, required=["r"]),
        ("r", "added"),
        {},
    ),
    (
        "made-required-with-default",
        obj({"a": {**S, "default": "x"}}),
        obj({"a": {**S, "default": "x"}}, required=["a"]),
        None,
        {},
    ),
    (
        "no-longer-required",
        obj({"a": S}, required=["a"]),
        obj({"a": S}),
        ("a", "required"),
        {"a": "x"},
    ),
    (
        "default-changed",
        obj({"a": {**I, "default": 3}}),
        obj({"a": {**I, "default": 5}}),
        ("a", "default"),
        {},
    ),
    (
        "default-added-to-required",
        obj({"a": S}, required=["a"]),
        obj({"a": {**S, "default": "x"}}, required=["a"]),
        ("a", "default"),
        {"a": "y"},
    ),
    (
        "default-removed-optional",
        obj({"a": {**S, "default": "x"}}),
        obj({"a": S}),
        ("a", "default"),
        {},
    ),
    ("type-integer-to-number", obj({"n": I}), obj({"n": N}), ("n", "type"), {"n": 1}),
    (
        "type-widened-to-union",
        obj({"n": S}),
        obj({"n": {"type": ["string", "integer"]}}),
        ("n", "type"),
        {"n": "x"},
    ),
    ("type-removed", obj({"n": S}), obj({"n": {}}), ("n", "type"), {"n": "x"}),
    (
        "enum-gained",
        obj({"e": {"enum": ["dev"]}}),
        obj({"e": {"enum": ["dev", "prod"]}}),
        ("e", "enum"),
        {"e": "dev"},
    ),
    ("enum-removed", obj({"e": {"enum": ["dev"]}}), obj({"e": S}), ("e", "enum"), {"e": "dev"}),
    ("const-removed", obj({"c": {"const": 1}}), obj({"c": I}), ("c", "const"), {"c": 1}),
    (
        "minimum-lowered",
        obj({"n": {**I, "minimum": 10}}),
        obj({"n": {**I, "minimum": 1}}),
        ("n", "minimum"),
        {"n": 10},
    ),
    (
        "minLength-removed",
        obj({"s": {**S, "minLength": 3}}),
        obj({"s": S}),
        ("s", "minLength"),
        {"s": "abc"},
    ),
    (
        "maximum-raised",
        obj({"n": {**I, "maximum": 10}}),
        obj({"n": {**I, "maximum": 100}}),
        ("n", "maximum"),
        {"n": 10},
    ),
    (
        "maxItems-raised",
        obj({"l": {"type": "array", "maxItems": 1}}),
        obj({"l": {"type": "array", "maxItems": 3}}),
        ("l", "maxItems"),
        {"l": [1]},
    ),
    (
        "multipleOf-divisor",
        obj({"n": {**I, "multipleOf": 4}}),
        obj({"n": {**I, "multipleOf": 2}}),
        ("n", "multipleOf"),
        {"n": 8},
    ),
    (
        "pattern-removed",
        obj({"s": {**S, "pattern": "^a"}}),
        obj({"s": S}),
        ("s", "pattern"),
        {"s": "ab"},
    ),
    (
        "format-added-not-enforced",
        obj({"s": S}),
        obj({"s": {**S, "format": "email"}}),
        ("s", "format"),
        {"s": "not an email"},
    ),
    (
        "description-changed",
        obj({"s": {**S, "description": "a"}}),
        obj({"s": {**S, "description": "b"}}),
        ("s", "description"),
        {"s": "x"},
    ),
    (
        "items-widened",
        obj({"l": {"type": "array", "items": I}}),
        obj({"l": {"type": "array", "items": N}}),
        ("l[]", "type"),
        {"l": [1]},
    ),
    (
        # the CLI already rejected undeclared names and expressions cannot use them
        "closed-a-schema-that-declares-params",
        obj({"a": S}),
        obj({"a": S}, **CLOSED),
        ("", "additionalProperties"),
        {"a": "x"},
    ),
    ("opened", obj({"a": S}, **CLOSED), obj({"a": S}), ("", "additionalProperties"), {"a": "x"}),
    ("schema-removed-accepting-nothing", {"type": "object", **CLOSED}, None, ("", "schema"), {}),
    ("schema-added-optional-only", None, obj({"o": {**S, "default": "x"}}), ("o", "added"), {}),
    ("anyOf-removed", obj({"n": {"anyOf": [S, I]}}), obj({"n": {}}), ("n", "anyOf"), {"n": "x"}),
]


@pytest.mark.parametrize(
    ("old", "new", "where", "sample"),
    [case[1:] for case in NOT_BREAKING],
    ids=[case[0] for case in NOT_BREAKING],
)
def test_non_breaking_param_changes(
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
    where: tuple[str, str] | None,
    sample: dict[str, Any],
) -> None:
    resolve_params(sample, old)
    resolve_params(sample, new)
    result = params_diff(old, new)
    assert not result.breaking, result.params
    if where is None:
        assert result.empty
    else:
        assert not change(result, *where).breaking
        assert "(breaking)" not in "\n".join(result.render())


def test_format_is_not_enforced_by_resolve_params() -> None:
    # pins the reason format changes are not breaking: if lockstep starts checking formats,
    # this fails and the rule in spec.diff must change with it
    schema = obj({"s": {**S, "format": "email"}, "d": {**S, "format": "date"}})
    resolve_params({"s": "not an email", "d": "not a date"}, schema)


def test_params_schema_added_and_removed_are_reported() -> None:
    schema = obj({"cases": {**I, "default": 3}})
    added = params_diff(None, schema)
    assert added.render() == ["~ params: schema added", "+ param cases: added, optional, default 3"]
    assert not added.breaking
    removed = params_diff(schema, None)
    assert removed.render()[:2] == [
        "~ params: schema removed",
        "! param cases: removed; callers that pass it are now rejected (breaking)",
    ]
    assert_breaks({"cases": 3}, schema, None)


def test_enum_reordered_and_equal_numbers_are_not_changes() -> None:
    old = obj({"e": {"enum": ["a", "b"]}, "n": {**N, "minimum": 1}})
    new = obj({"e": {"enum": ["b", "a"]}, "n": {**N, "minimum": 1.0}})
    assert params_diff(old, new).empty


def test_param_change_json() -> None:
    result = params_diff(obj({"e": {"enum": ["dev", "prod"]}}), obj({"e": {"enum": ["dev"]}}))
    (payload,) = result.to_json()["params"]
    assert payload == {
        "param": "e",
        "kind": "enum",
        "detail": 'enum lost ["prod"]',
        "breaking": True,
        "old": ["dev", "prod"],
        "new": ["dev"],
    }
    assert json.loads(json.dumps(result.to_json())) == result.to_json()
