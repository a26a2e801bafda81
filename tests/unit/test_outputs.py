from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lockstep.executors.outputs import check_outputs, read_outputs
from lockstep.spec.contracts import OutputError


def _read(tmp_path: Path, content: str | bytes, **kw: Any) -> dict[str, Any]:
    path = tmp_path / "outputs"
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return read_outputs(path, **kw)


def test_missing_file_means_no_outputs(tmp_path: Path) -> None:
    assert read_outputs(tmp_path / "absent") == {}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", {}),
        ("  \n\n", {}),
        ('{"seed": 42, "name": "x"}', {"seed": 42, "name": "x"}),
        ('\n  {"nested": {"a": [1, 2.5, null, true]}}\n', {"nested": {"a": [1, 2.5, None, True]}}),
        ("\ufeff{}", {}),
        # a key=value line is the string as written: no JSON guessing without a schema
        ("seed=42", {"seed": "42"}),
        ("version=1.10\nsha=1e5\nflag=true", {"version": "1.10", "sha": "1e5", "flag": "true"}),
        ("ratio=0.5\nnone=null", {"ratio": "0.5", "none": "null"}),
        ('list=[1, 2]\nobj={"k": "v"}', {"list": "[1, 2]", "obj": '{"k": "v"}'}),
        ('quoted="42"', {"quoted": '"42"'}),
        ("name=hello world", {"name": "hello world"}),
        ("hello-param=x\n_a-b-=y", {"hello-param": "x", "_a-b-": "y"}),
        ("v=a=b=c", {"v": "a=b=c"}),
        ("v=", {"v": ""}),
        ("v=  padded  ", {"v": "  padded  "}),
        ("v=$(id) `id`; curl x|sh #", {"v": "$(id) `id`; curl x|sh #"}),
        ("# comment\n\n_k1=1\r\nK_2=two\n", {"_k1": "1", "K_2": "two"}),
        ("x=1\nx=2", {"x": "2"}),  # appending again overrides, like $GITHUB_OUTPUT
        ("v=NaN\nw=1e999\nz=Infinity", {"v": "NaN", "w": "1e999", "z": "Infinity"}),
        ("v=[1, 2", {"v": "[1, 2"}),
        ("v=tab\there\x0cform", {"v": "tab\there\x0cform"}),
    ],
)
def test_outputs_parse(tmp_path: Path, content: str, expected: dict[str, Any]) -> None:
    assert _read(tmp_path, content) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a=1\n\njust text", "$LOCKSTEP_OUTPUTS line 3: expected key=value"),
        ("1abc=2", "$LOCKSTEP_OUTPUTS line 1: invalid key; use letters"),
        ("-key=2", "$LOCKSTEP_OUTPUTS line 1: invalid key; use letters"),
        ("a.b=2", "$LOCKSTEP_OUTPUTS line 1: invalid key; use letters"),
        ("key =2", "$LOCKSTEP_OUTPUTS line 1: invalid key; use letters"),
        ("=2", "$LOCKSTEP_OUTPUTS line 1: invalid key; use letters"),
        ('{"a": 1,\n "b": }', "$LOCKSTEP_OUTPUTS line 2 column 7: invalid JSON"),
        ('{"a": 1} {"b": 2}', "$LOCKSTEP_OUTPUTS line 1 column 10: invalid JSON: Extra data"),
        ('{"a": NaN}', "$LOCKSTEP_OUTPUTS: invalid JSON: NaN, Infinity"),
        ('{"a": 1e999}', "$LOCKSTEP_OUTPUTS: invalid JSON: NaN, Infinity, a number out of range"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        (b"a=\xff\xfe", "$LOCKSTEP_OUTPUTS is not UTF-8 (byte 2)"),
    ],
)
def test_bad_outputs_name_the_line(tmp_path: Path, content: str | bytes, message: str) -> None:
    with pytest.raises(OutputError) as err:
        _read(tmp_path, content)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


TYPED = {
    "type": "object",
    "properties": {
        "n": {"type": "integer"},
        "ratio": {"type": "number"},
        "ok": {"type": "boolean"},
        "gone": {"type": "null"},
        "tags": {"type": "array"},
        "meta": {"type": "object"},
        "either": {"type": ["integer", "string"]},
        "maybe": {"type": ["integer", "null"]},
        "level": {"enum": [1, 2, 3]},
        "ref": {"$ref": "#/definitions/count"},
        "text": {"type": "string"},
        "free": {},
    },
    "additionalProperties": {"type": "integer"},
    "definitions": {"count": {"type": "integer"}},
}


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ("n=42", 42),
        ("n= -7 ", -7),
        ("ratio=1e5", 100000.0),
        ("ratio=2", 2),
        ("ratio=0.25", 0.25),
        ("ok=true", True),
        ("ok=false", False),
        ("gone=null", None),
        ('tags=["a", 1]', ["a", 1]),
        ('meta={"k": [true]}', {"k": [True]}),
        ("either=5", "5"),  # a union that allows a string keeps the string
        ("maybe=5", 5),
        ("maybe=null", None),
        ("level=2", 2),
        ("ref=3", 3),
        ("text=1.10", "1.10"),
        ("free=1e5", "1e5"),  # declared without a type: as written
        ("undeclared=9", 9),  # typed by additionalProperties
    ],
)
def test_a_schema_types_key_value_lines(tmp_path: Path, line: str, value: Any) -> None:
    assert _read(tmp_path, line, schema=TYPED) == {line.split("=")[0]: value}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "n=1.5",
            "line 1: output 'n' must be an integer (its type in the step's outputs schema)",
        ),
        ("n=1_000", "output 'n' must be an integer"),
        ("n=٣", "output 'n' must be an integer"),  # an Arabic-Indic digit
        ("ratio=fast", "output 'ratio' must be a number"),
        ("ratio=1e999", "output 'ratio' must be a finite number"),
        ("ratio=NaN", "output 'ratio' must be a finite number"),
        ("ok=maybe", "output 'ok' must be true or false"),
        ("gone=nil", "output 'gone' must be null"),
        ("tags=a,b", "output 'tags' must be a JSON array"),
        ("tags=[NaN]", "output 'tags' must be a JSON array"),
        ("meta=[1]", "output 'meta' must be a JSON object"),
        ("maybe=five", "output 'maybe' must be one of: integer, null (its type"),
        ("ref=x", "output 'ref' must be an integer"),
        ("undeclared=x", "output 'undeclared' must be an integer"),
        (
            "n=" + "x" * 1000,
            "output 'n' must be an integer (its type in the step's outputs schema)",
        ),
        ("meta=" + "[" * 100_000, "output 'meta' must be a JSON object"),
    ],
)
def test_a_value_that_does_not_convert_names_the_key(
    tmp_path: Path, line: str, message: str
) -> None:
    with pytest.raises(OutputError) as err:
        _read(tmp_path, "text=ok\n" + line, schema=TYPED)
    assert message.replace("line 1", "line 2") in str(err.value)
    assert str(err.value).startswith("$LOCKSTEP_OUTPUTS line 2: ")
    assert len(str(err.value)) < 400 and "\n" not in str(err.value)


def test_the_json_form_keeps_its_types_whatever_the_schema(tmp_path: Path) -> None:
    content = '{"n": "42", "text": 7, "version": "1.10", "sha": 1e5}'
    assert _read(tmp_path, content, schema=TYPED) == {
        "n": "42",
        "text": 7,
        "version": "1.10",
        "sha": 100000.0,
    }


def test_oversized_outputs_are_rejected(tmp_path: Path) -> None:
    assert _read(tmp_path, "v=" + "x" * 98, max_bytes=100) == {"v": "x" * 98}
    with pytest.raises(OutputError, match=r"larger than 1 MiB; write large results"):
        _read(tmp_path, "v=" + "x" * (1024 * 1024))


SCHEMA = {
    "type": "object",
    "properties": {
        "seed": {"type": "integer"},
        "cases": {"type": "array", "items": {"type": "string"}},
        "a/b": {"type": "string"},
    },
    "required": ["seed"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"seed": "abc"}, "step 'prepare' output /seed: must be of type integer"),
        (
            {"seed": 1, "cases": ["ok", 3]},
            "step 'prepare' output /cases/1: must be of type string",
        ),
        ({"seed": 1, "a/b": 1}, "step 'prepare' output /a~1b: must be of type string"),
        ({}, "step 'prepare' outputs: 'seed' is a required property"),
        (
            {"seed": "x", "cases": [1]},
            "step 'prepare' output /cases/0: must be of type string (and 1 more)",
        ),
        (
            {"seed": 1, "extra": 2},
            "step 'prepare' outputs: Additional properties are not allowed "
            "('extra' was unexpected)",
        ),
    ],
)
def test_schema_violation_names_step_and_pointer(outputs: dict[str, Any], message: str) -> None:
    with pytest.raises(OutputError) as err:
        check_outputs(outputs, SCHEMA, step="prepare")
    assert str(err.value) == message
    assert err.value.step == "prepare"


def test_valid_outputs_and_no_schema_pass() -> None:
    check_outputs({"seed": 3, "cases": ["leo"]}, SCHEMA, step="s")
    check_outputs({"anything": object()}, None, step="s")


def test_huge_offending_value_gives_a_short_message() -> None:
    with pytest.raises(OutputError) as err:
        check_outputs({"seed": "x" * 100_000}, SCHEMA, step="s")
    assert len(str(err.value)) < 400


def test_invalid_schema_is_reported_not_raised_raw() -> None:
    with pytest.raises(OutputError, match=r"step 's' has an invalid outputs schema"):
        check_outputs({}, {"type": "nonsense"}, step="s")
