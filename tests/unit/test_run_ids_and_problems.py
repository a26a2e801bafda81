"""A run named by a prefix of its id, inside its project only; and pydantic's validation
errors as the one line a user reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lockstep.api.validation import explain
from lockstep.clock import utcnow
from lockstep.errors import InvalidRequest, NotFound
from lockstep.records import Cause
from lockstep.registry.selectors import TAG_PATTERN
from lockstep.storage import runs as store
from lockstep.storage.database import Database
from lockstep.storage.rows import ProjectRow


def _run(run_id: str, project: str) -> store.NewRun:
    return store.NewRun(
        id=run_id,
        project=project,
        workflow="wf",
        spec_digest="d",
        spec_text="name: wf",
        source="",
        workspace={},
        params={},
        steps=[("a", False)],
        cause=Cause.manual("ann"),
    )


def test_a_unique_prefix_names_one_run_of_its_project_only(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.open()
    with db.session() as s:
        s.add(ProjectRow(id="other", name="other", created_at=utcnow()))
    with db.session() as s:
        for run_id, project in (("rabc1", "default"), ("rabc2", "default"), ("rzz_9", "default")):
            store.create_run(s, _run(run_id, project))
        store.create_run(s, _run("rqq1", "other"))
    with db.session() as s:
        assert store.resolve_id(s, "default", "rabc1") == "rabc1"
        assert store.resolve_id(s, "default", "rz") == "rzz_9"
        with pytest.raises(
            InvalidRequest, match=r"'rabc' is ambiguous.*2 run ids \(rabc1, rabc2\)"
        ):
            store.resolve_id(s, "default", "rabc")
        with pytest.raises(NotFound):  # another project's run, whole or prefixed
            store.resolve_id(s, "default", "rqq")
        with pytest.raises(NotFound):
            store.resolve_id(s, "default", "rqq1")
        with pytest.raises(NotFound):  # '_' is a character here, not a wildcard
            store.resolve_id(s, "default", "r_")
        with pytest.raises(NotFound):  # ids are matched with their case
            store.resolve_id(s, "default", "RABC1")
    db.close()


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            {
                "type": "string_pattern_mismatch",
                "loc": ("path", "tag"),
                "input": "LIVE",
                "ctx": {"pattern": TAG_PATTERN},
            },
            "tag 'LIVE' is not valid: a tag is $ then capital letters or _, like $LIVE",
        ),
        (
            {
                "type": "string_too_short",
                "loc": ("body", "value"),
                "input": "",
                "ctx": {"min_length": 1},
            },
            "value is empty",
        ),
        (
            {
                "type": "string_pattern_mismatch",
                "loc": ("query", "x"),
                "input": "a b",
                "ctx": {"pattern": "^[a]+$"},
            },
            "option x 'a b' is not valid: it has characters that are not allowed",
        ),
        ({"type": "missing", "loc": ("body", "name"), "input": {}}, "name is required"),
        (
            {
                "type": "less_than_equal",
                "loc": ("query", "limit"),
                "input": "900",
                "ctx": {"le": 500},
            },
            "option limit '900' is out of range: it must be at most 500",
        ),
        (
            {"type": "extra_forbidden", "loc": ("body", "surprise"), "input": 1},
            "surprise is not a known field; remove it",
        ),
    ],
)
def test_validation_errors_read_as_one_line_of_advice(error: dict[str, Any], line: str) -> None:
    said = explain(error)
    assert said.startswith(line), said
    assert "^" not in said and "String should" not in said
