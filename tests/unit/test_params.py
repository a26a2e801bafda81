from __future__ import annotations

import copy
from typing import Any

import pytest

from lockstep.errors import ParamError
from lockstep.spec.params import parse_cli_params, resolve_params

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "count": {"type": "integer", "minimum": 1, "default": 3},
        "ratio": {"type": "number"},
        "deploy": {"type": "boolean", "default": False},
        "cases": {"type": "array", "items": {"type": "string"}, "default": ["leo", "geo"]},
        "extra": {"type": "object"},
        "anything": {},
        "maybe": {"type": ["integer", "string"]},
        "env": {"enum": ["dev", "prod"]},
    },
    "required": ["name"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("pair", "value"),
    [
        ("name=orbit", "orbit"),
        ("name=", ""),
        ("name=a=b", "a=b"),
        ("name= spaced ", " spaced "),
        ("count=42", 42),
        ("count=-1", -1),
        ("ratio=0.5", 0.5),
        ("ratio=2", 2),
        ("deploy=true", True),
        ("deploy=YES", True),
        ("deploy=1", True),
        ("deploy=false", False),
        ("deploy=no", False),
        ("deploy=0", False),
        ('cases=["a", "b"]', ["a", "b"]),
        ('extra={"k": 1}', {"k": 1}),
        ("anything=[1, 2]", [1, 2]),
        ("anything=7", 7),
        ("anything=just text", "just text"),
        ("maybe=5", 5),
        ("maybe=five", "five"),
        ("env=dev", "dev"),
    ],
)
def test_parse_cli_params_types_values_by_schema(pair: str, value: Any) -> None:
    key = pair.split("=", 1)[0]
    assert parse_cli_params([pair], SCHEMA) == {key: value}


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (["name"], "param 'name' must be written key=value"),
        (["=x"], "param '=x' must be written key=value"),
        (["nmae=x"], "unknown param 'nmae'; did you mean 'name'? (declared: name, count, ratio"),
        (["zzz=x"], "unknown param 'zzz'; declared: name, count, ratio, deploy, cases"),
        (["count=many"], "param 'count' must be an integer, got 'many'"),
        (["count=1.5"], "param 'count' must be an integer, got '1.5'"),
        (["ratio=fast"], "param 'ratio' must be a number, got 'fast'"),
        (["ratio=nan"], "param 'ratio' must be a finite number, got 'nan'"),
        (["deploy=maybe"], "param 'deploy' must be true or false (or yes/no, 1/0), got 'maybe'"),
        (["cases=a,b"], "param 'cases' must be a JSON array, e.g. '[\"a\", \"b\"]', got 'a,b'"),
        (["extra=[1]"], "param 'extra' must be a JSON object"),
        (["name=a", "name=b"], "param 'name' is given more than once"),
    ],
)
def test_parse_cli_params_errors(pairs: list[str], message: str) -> None:
    with pytest.raises(ParamError) as caught:
        parse_cli_params(pairs, SCHEMA)
    assert str(caught.value).startswith(message)


def test_parse_cli_params_without_a_schema() -> None:
    assert parse_cli_params([], None) == {}
    with pytest.raises(ParamError, match=r"^this workflow declares no params"):
        parse_cli_params(["a=1"], None)


def test_parse_cli_params_open_schema_accepts_any_key() -> None:
    assert parse_cli_params(["a=1", "b=x"], {"type": "object"}) == {"a": 1, "b": "x"}


def test_resolve_params_applies_defaults_without_mutating() -> None:
    given = {"name": "orbit"}
    schema = copy.deepcopy(SCHEMA)
    result = resolve_params(given, schema)
    assert result == {"name": "orbit", "count": 3, "deploy": False, "cases": ["leo", "geo"]}
    assert given == {"name": "orbit"}
    assert schema == SCHEMA
    result["cases"].append("x")
    assert SCHEMA["properties"]["cases"]["default"] == ["leo", "geo"]


def test_resolve_params_given_values_win_over_defaults() -> None:
    assert resolve_params({"name": "a", "count": 9}, SCHEMA)["count"] == 9


def test_resolve_params_lists_every_problem() -> None:
    with pytest.raises(ParamError) as caught:
        resolve_params({"count": 0, "cases": ["ok", 5], "bogus": 1}, SCHEMA)
    assert caught.value.problems == [
        "params: missing required param 'name'",
        "params: unknown param 'bogus'; declared: name, count, ratio, deploy, cases, extra, "
        "anything, maybe, env",
        "params/cases/1: 5 is not of type 'string'",
        "params/count: 0 is less than the minimum of 1",
    ]
    assert str(caught.value) == "params: missing required param 'name' (and 3 more)"


def test_resolve_params_does_not_check_formats() -> None:
    schema = {"type": "object", "properties": {"mail": {"type": "string", "format": "email"}}}
    assert resolve_params({"mail": "not-an-email"}, schema) == {"mail": "not-an-email"}


def test_resolve_params_without_a_schema() -> None:
    assert resolve_params({}, None) == {}
    with pytest.raises(ParamError, match=r"^this workflow declares no params; got a, b$"):
        resolve_params({"a": 1, "b": 2}, None)


def test_resolve_params_size_cap() -> None:
    with pytest.raises(ParamError, match=r"^params are too large \(\d+ bytes; the limit is 100"):
        resolve_params({"name": "x" * 200}, SCHEMA, max_bytes=100)


def test_resolve_params_rejects_non_json_values() -> None:
    with pytest.raises(ParamError, match=r"^params must be plain JSON values"):
        resolve_params({"name": {1, 2}}, SCHEMA)
