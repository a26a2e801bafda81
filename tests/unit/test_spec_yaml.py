from __future__ import annotations

import hashlib
import math
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from lockstep.errors import SpecError
from lockstep.spec.load import load_spec, load_spec_file
from lockstep.spec.yamlsafe import YamlDocument, load_yaml, pointer

MINIMAL = "name: demo\nsteps:\n  build:\n    run: make\n"


def errors_of(data: str | bytes, **kwargs: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_yaml(data, "w.yaml", **kwargs)
    return [str(d) for d in caught.value.diagnostics]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: text", "text"),
        ("a: 12", 12),
        ("a: -3", -3),
        ("a: 0x1F", 31),
        ("a: 0o17", 15),
        ("a: 1.5", 1.5),
        ("a: 1e3", 1000.0),
        ("a: .inf", math.inf),
        ("a: true", True),
        ("a: False", False),
        ("a: null", None),
        ("a: ~", None),
        ("a:", None),
        ('a: "12"', "12"),
        ("a: !!str 12", "12"),
        ("a: !!float 1", 1.0),
        # YAML 1.2 core schema: these are strings, not the YAML 1.1 surprises
        ("a: no", "no"),
        ("a: on", "on"),
        ("a: yes", "yes"),
        ("a: 1:30", "1:30"),
        ("a: 2024-01-02", "2024-01-02"),
        ("a: 2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"),
        ("a: 010", 10),
        ("a: [x, 1, {b: c}]", ["x", 1, {"b": "c"}]),
    ],
)
def test_scalars_follow_the_core_schema(text: str, value: Any) -> None:
    assert load_yaml(text).data == {"a": value}


def test_positions_of_keys_and_values() -> None:
    doc = load_yaml("steps:\n  build:\n    run: make\n    needs:\n      - a\n      - b\n")
    assert doc.positions["/steps"] == (1, 1)
    assert doc.positions["/steps/build"] == (2, 3)
    assert doc.positions["/steps/build/run"] == (3, 5)
    assert doc.value_positions["/steps/build/run"] == (3, 10)
    assert doc.positions["/steps/build/needs/0"] == (5, 9)
    assert doc.positions["/steps/build/needs/1"] == (6, 9)


def test_pointer_escapes_tilde_and_slash() -> None:
    doc = load_yaml("'a/b': {'c~d': 1}\n")
    assert doc.data == {"a/b": {"c~d": 1}}
    assert pointer("a/b", "c~d") == "/a~1b/c~0d"
    assert doc.positions["/a~1b/c~0d"] == (1, 9)


def test_anchors_aliases_and_merge_keys() -> None:
    doc = load_yaml("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\ne: *b\n")
    assert doc.data == {"base": {"x": 1, "y": 2}, "d": {"y": 3, "x": 1}, "e": {"x": 1, "y": 2}}
    assert doc.positions["/d/y"] == (4, 3)
    assert doc.positions["/d/x"] == (1, 11)  # a merged entry points at where it was written


def test_empty_document_is_none() -> None:
    assert load_yaml("# nothing\n") == YamlDocument(None, {"": (1, 1)}, {"": (1, 1)})


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a: 1\nb: 2\na: 3\n", "w.yaml:3:1: duplicate key 'a'; each key may appear once"),
        ("a: 1\n---\nb: 2\n", "w.yaml:2:1: a workflow file must hold one YAML document; remove"),
        ("a: !foo x\n", "w.yaml:1:4: tag '!foo' is not allowed; only plain YAML data"),
        ("if: !params.deploy\n", "w.yaml:1:5: tag '!params.deploy' is not allowed; only plain"),
        ("a: !!binary aGk=\n", "w.yaml:1:4: tag '!!binary' is not allowed"),
        ("a: !!set {x}\n", "w.yaml:1:4: tag '!!set' is not allowed"),
        ("a: !!int x\n", "w.yaml:1:4: 'x' is not a valid integer for tag '!!int'"),
        ("1: a\n", "w.yaml:1:1: mapping key '1' is not a string; quote it: \"1\""),
        ("true: a\n", "w.yaml:1:1: mapping key 'true' is not a string"),
        ("[a]: b\n", "w.yaml:1:1: mapping keys must be strings, not lists or mappings"),
        ("a: *nope\n", "w.yaml:1:4: alias '*nope' has no anchor '&nope' before it"),
        ("a: &x [*x]\n", "w.yaml:1:8: alias '*x' has no anchor '&x' before it"),
        ("a: b: c\n", "w.yaml:1:5: invalid YAML: mapping values are not allowed"),
        ("a: [1, 2\n", "w.yaml:2:1: invalid YAML: did not find expected ',' or ']'"),
        ("a: 'open\n", "w.yaml:2:1: invalid YAML: found unexpected end of stream"),
        ("a:\n\tb: 1\n", "w.yaml:2:1: invalid YAML: found character that cannot start any token"),
        ("a: x\x00y\n", "w.yaml:1:5: control character U+0000 is not allowed in YAML"),
    ],
)
def test_rejected_documents_are_located(text: str, error: str) -> None:
    (message,) = errors_of(text)
    assert message.startswith(error)


def test_python_object_tag_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'!!python/object/apply:os.system ["touch {marker}"]\n'
    assert errors_of(text) == [
        "w.yaml:1:1: tag '!!python/object/apply:os.system' is not allowed; only plain YAML "
        "data (strings, numbers, booleans, null, lists, mappings) is accepted"
    ]
    with pytest.raises(SpecError):
        load_spec(f"name: x\nsteps: {text}")
    assert not marker.exists()


def billion_laughs() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_it_expands() -> None:
    tracemalloc.start()
    try:
        (message,) = errors_of(billion_laughs())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "too many nodes (alias expansion?)" in message
    # expanded, the document holds 9**10 strings; refused, it costs what its text does
    assert peak < 5 * 1024 * 1024


def test_many_aliases_below_the_cap_load() -> None:
    doc = load_yaml("x: &x [1, 2, 3]\n" + "".join(f"k{i}: *x\n" for i in range(100)))
    assert doc.data["k99"] == [1, 2, 3]


def test_node_cap_is_a_parameter() -> None:
    (message,) = errors_of("a: [1, 2, 3, 4, 5]\n", max_nodes=4)
    assert "too many nodes" in message


@pytest.mark.parametrize("depth", [201, 10_000, 100_000])
def test_deep_nesting_is_a_clear_error_not_a_crash(depth: int) -> None:
    # whatever the installed libyaml refuses on its own, the error is lockstep's, at the
    # opening of the 201st level
    for text, col in (("[" * depth, 201), ("[" * depth + "]" * depth, 201), ("{a: " * depth, 801)):
        (message,) = errors_of(text)
        assert message == f"w.yaml:1:{col}: nesting too deep (more than 200 levels)"


def test_deep_block_nesting_is_a_clear_error() -> None:
    text = "".join(f"{' ' * i}k{i}:\n" for i in range(1200))  # ~0.7 MB
    (message,) = errors_of(text)
    assert message == "w.yaml:201:201: nesting too deep (more than 200 levels)"


def test_nesting_at_the_limit_loads() -> None:
    assert load_yaml("[" * 200 + "]" * 200).data is not None


def test_oversized_input_is_rejected_before_parsing(tmp_path: Path) -> None:
    big = b"a: " + b"x" * (10 * 1024 * 1024) + b"\n"
    assert errors_of(big) == [
        "w.yaml: file is too large (10485764 bytes; the limit is 1048576 bytes)"
    ]
    with pytest.raises(SpecError, match="file is too large"):
        load_yaml(big.decode())
    path = tmp_path / "workflow.yaml"
    path.write_bytes(big)
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    assert str(caught.value) == (
        f"{path}: file is too large (10485764 bytes; the limit is 1048576 bytes)"
    )


def test_byte_cap_is_a_parameter() -> None:
    assert errors_of("a: 12345\n", max_bytes=5) == [
        "w.yaml: file is too large (9 bytes; the limit is 5 bytes)"
    ]


def test_non_utf8_names_the_byte_offset() -> None:
    assert errors_of(b"a: 1\nb: caf\xe9\n") == [
        "w.yaml:2:7: invalid UTF-8 byte 0xe9 at byte offset 11; save the file as UTF-8"
    ]


def test_utf16_is_not_utf8() -> None:
    (message,) = errors_of("a: 1\n".encode("utf-16"))
    assert "invalid UTF-8 byte 0xff at byte offset 0" in message


def test_bom_is_accepted_and_stripped() -> None:
    data = b"\xef\xbb\xbf" + MINIMAL.encode()
    loaded = load_spec(data, "w.yaml")
    assert loaded.spec.name == "demo"
    assert not loaded.text.startswith("\ufeff")
    assert loaded.digest == hashlib.sha256(data).hexdigest()  # the exact bytes, BOM included
    assert loaded.position("/steps/build/run") == (4, 5)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- a\n- b\n", "w.yaml:1:1: the top level of a workflow must be a mapping"),
        ("just text\n", "w.yaml:1:1: the top level of a workflow must be a mapping"),
        ("", "w.yaml:1:1: the top level of a workflow must be a mapping"),
    ],
)
def test_top_level_must_be_a_mapping(text: str, error: str) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(text, "w.yaml")
    assert str(caught.value).startswith(error)


def test_load_spec_file_reads_workflow_yaml_in_a_directory(tmp_path: Path) -> None:
    (tmp_path / "workflow.yaml").write_text(MINIMAL)
    loaded = load_spec_file(tmp_path)
    assert loaded.file == str(tmp_path / "workflow.yaml")
    assert loaded.digest == hashlib.sha256(MINIMAL.encode()).hexdigest()
    assert loaded.text == MINIMAL


def test_load_spec_file_missing(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_file(tmp_path / "nope.yaml")
    assert str(caught.value) == (
        f"{tmp_path}/nope.yaml: cannot read {tmp_path}/nope.yaml: No such file or directory"
    )
    with pytest.raises(SpecError, match=r"cannot read .*workflow\.yaml"):
        load_spec_file(tmp_path)


def test_position_falls_back_to_the_nearest_parent() -> None:
    loaded = load_spec(MINIMAL)
    assert loaded.position("/steps/build/run") == (4, 5)
    assert loaded.position("/steps/build/timeout") == (3, 3)
    assert loaded.position("/nowhere/at/all") == (1, 1)
