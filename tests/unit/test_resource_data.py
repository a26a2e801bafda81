"""Resource data rules (``spec/resources``): references, the schema check that names the JSON
pointer without quoting the value, secrets only as references, and the diff of two versions."""

from __future__ import annotations

import pytest

from lockstep.errors import InvalidRequest
from lockstep.spec.resources import Change, check_data, check_name, diff, parse_ref, secret_names

SCHEMA = {
    "type": "object",
    "properties": {
        "endpoint": {"type": "string", "pattern": "^https://"},
        "replicas": {"type": "integer", "minimum": 1},
        "auth": {
            "type": "object",
            "properties": {"password": {"type": "string", "secret": True}},
        },
    },
    "required": ["endpoint"],
}


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("app-image", ("app-image", None)), ("app-image@3", ("app-image", 3)), ("a@10", ("a", 10))],
)
def test_a_reference_names_a_resource_and_maybe_a_version(
    ref: str, expected: tuple[str, int | None]
) -> None:
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["App", "-x", "x@0", "x@", "x@latest", "x@-1", "a b", ""])
def test_a_malformed_reference_is_refused_in_one_line(ref: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_ref(ref)
    assert "write NAME or NAME@N" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["Prod", "_x", "a.b", "a/b", "", "x" * 64])
def test_a_resource_name_outside_the_pattern_is_refused(name: str) -> None:
    with pytest.raises(InvalidRequest, match=r"\^\[a-z0-9\]\[a-z0-9-\]\*\$"):
        check_name(name)


def test_data_that_satisfies_the_schema_passes() -> None:
    check_data("db", {"endpoint": "https://db", "replicas": 2}, SCHEMA)
    check_data("db", {"anything": [1, 2]}, None)  # no schema: any object


def test_a_schema_violation_names_the_pointer_and_never_the_value() -> None:
    with pytest.raises(InvalidRequest) as err:
        check_data("db", {"endpoint": "http://plain-xyz", "replicas": 2}, SCHEMA)
    message = str(err.value)
    assert message.startswith("resource 'db' data /endpoint: must match the pattern")
    assert "plain-xyz" not in message
    with pytest.raises(InvalidRequest, match=r"data /replicas: must be >= 1"):
        check_data("db", {"endpoint": "https://db", "replicas": 0}, SCHEMA)
    with pytest.raises(InvalidRequest, match="'endpoint' is a required property"):
        check_data("db", {}, SCHEMA)


def test_data_must_be_an_object() -> None:
    with pytest.raises(InvalidRequest, match="data of resource 'db' must be a JSON object"):
        check_data("db", ["https://db"], None)


def test_a_value_where_the_schema_marks_a_secret_is_refused_without_quoting_it() -> None:
    data = {"endpoint": "https://db", "auth": {"password": "hunter2-value"}}
    with pytest.raises(InvalidRequest) as err:
        check_data("db", data, SCHEMA)
    message = str(err.value)
    assert "data /auth/password is marked secret" in message and '{"$secret": "NAME"}' in message
    assert "hunter2" not in message
    # a reference is what it holds instead; it names a secret, the value stays in the store
    ok = {"endpoint": "https://db", "auth": {"password": {"$secret": "DB_PASSWORD"}}}
    check_data("db", ok, SCHEMA)
    assert secret_names(ok) == ["DB_PASSWORD"]
    with pytest.raises(InvalidRequest, match="marked secret"):
        check_data("db", {**ok, "auth": {"password": {"$secret": "DB", "value": "x"}}}, SCHEMA)


def test_the_diff_of_two_versions_lists_each_change_by_pointer() -> None:
    old = {"image": "app:1", "env": {"A": "1", "B": "2"}, "ports": [80], "gone": True}
    new = {"image": "app:2", "env": {"A": "1", "C": "3"}, "ports": [80, 443], "a/b": 1}
    assert diff(old, new) == [
        Change("added", "/a~1b", new=1),
        Change("removed", "/env/B", old="2"),
        Change("added", "/env/C", new="3"),
        Change("removed", "/gone", old=True),
        Change("changed", "/image", old="app:1", new="app:2"),
        Change("changed", "/ports", old=[80], new=[80, 443]),
    ]
    assert diff(old, old) == []
    # a number that becomes a boolean is a change, though 1 == True in Python
    assert diff({"x": 1}, {"x": True}) == [Change("changed", "/x", old=1, new=True)]


def test_data_over_the_limit_is_refused_with_its_size() -> None:
    with pytest.raises(InvalidRequest, match=r"data of resource 'db' is \d+ bytes, over 256 KiB"):
        check_data("db", {"blob": "x" * 300_000}, None)


def test_a_steps_writes_render_its_own_outputs_and_refuse_a_value_stored_by_reference() -> None:
    from lockstep.engine.types import StepPlan
    from lockstep.engine.writes import rendered
    from lockstep.outputs_by_reference import REF

    step = StepPlan(
        id="build",
        command=["true"],
        shell=False,
        writes={"app-image": {"tag": "${{ steps.build.outputs.tag }}", "n": "${{ 1 + 1 }}"}},
    )
    ctx = {"steps": {"other": {"status": "succeeded", "outputs": {}}}}
    assert rendered(step, {"tag": "v2"}, ctx, {}) == {"app-image": {"tag": "v2", "n": 2}}
    with pytest.raises(InvalidRequest, match=r"data /tag: must match the pattern"):
        rendered(step, {"tag": "nightly"}, ctx, {"app-image": SCHEMA_TAG})
    marker = {REF: {"key": "outputs/default/r/x", "size": 70_000, "sha256": "0", "preview": ""}}
    with pytest.raises(
        InvalidRequest, match=r"holds an output stored by reference \(70000 bytes\)"
    ):
        rendered(step, {"tag": marker}, ctx, {})


SCHEMA_TAG = {"type": "object", "properties": {"tag": {"pattern": "^v[0-9]+$"}}}


def test_data_nested_too_deep_is_refused_without_recursing() -> None:
    deep: dict[str, object] = {}
    for _ in range(5000):
        deep = {"a": deep}
    with pytest.raises(InvalidRequest, match="nests deeper than 64 levels; flatten it"):
        check_data("db", deep, SCHEMA)
