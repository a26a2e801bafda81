"""The version store: content-addressed publishing, compare-and-set tags, and records the
database itself refuses to change, whatever code path tries."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DatabaseError

from lockstep.errors import Conflict
from lockstep.registry.selectors import parse_selector
from lockstep.storage import registry as reg
from lockstep.storage import versions as store
from lockstep.storage.database import Database
from lockstep.storage.rows import TagMoveRow, VersionRow


@pytest.fixture
def db(db: Database) -> Database:
    """The metadata database of each dialect, with an API-made definition."""
    with db.session() as s:
        store.create_api_definition(s, "default", "svc", None)
    return db


def test_publishing_is_content_addressed(db: Database) -> None:
    with db.session() as s:
        d = reg.definition_row(s, "default", "svc")
        assert store.publish(s, d, "a", "h1", "u", None) == (1, True)
        assert store.publish(s, d, "b", "h2", "u", "m") == (2, True)
        assert store.publish(s, d, "a", "h1", "u", None) == (1, False)


def test_versions_and_tag_history_refuse_changes_through_the_orm(db: Database) -> None:
    with db.session() as s:
        d = reg.definition_row(s, "default", "svc")
        store.publish(s, d, "a", "h1", "u", None)
        store.move_tag(s, d, "$LIVE", 1, by="u", expect=None)
    for change in (
        lambda s: setattr(s.get(VersionRow, (d.id, 1)), "spec_text", "tampered"),
        lambda s: s.delete(s.get(VersionRow, (d.id, 1))),
        lambda s: setattr(s.query(TagMoveRow).one(), "to_version", 7),
        lambda s: s.delete(s.query(TagMoveRow).one()),
    ):
        with pytest.raises(DatabaseError), db.session() as s:
            change(s)
            s.flush()
    with db.session() as s:
        assert s.get(VersionRow, (d.id, 1)).spec_text == "a"
        assert len(s.query(TagMoveRow).all()) == 1


def test_expect_mismatch_changes_nothing(db: Database) -> None:
    with db.session() as s:
        d = reg.definition_row(s, "default", "svc")
        for text in ("a", "b"):
            store.publish(s, d, text, text, "u", None)
        store.move_tag(s, d, "$LIVE", 1, by="u", expect=None)
        with pytest.raises(Conflict) as info:
            store.move_tag(s, d, "$LIVE", 2, by="u", expect=2)
        assert info.value.fields() == {"current": 1}
        assert store.tag_target(s, d, "$LIVE") == 1
        assert len(store.tag_history(s, d, None)) == 1


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("d", "default", ""),
        ("d@7", "number", "7"),
        ("d@007", "number", "7"),
        ("d@$LIVE", "tag", "$LIVE"),
        ("d@main", "ref", "main"),
        ("d@release/1.x", "ref", "release/1.x"),
        ("d@refs/tags/v1", "ref", "refs/tags/v1"),
        ("d@3f2a9c1e", "ref", "3f2a9c1e"),
    ],
)
def test_selector_grammar(text: str, kind: str, value: str) -> None:
    sel = parse_selector(text)
    assert (sel.definition, sel.kind, sel.value) == ("d", kind, value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("d @7", "spaces"),
        ("d@a..b", "'..'"),
        ("d@" + "x" * 200, "longer than"),
        ("d@", "names nothing"),
        ("d@$live", "invalid tag"),
        ("d@--output=x", "starts with '-'"),
        ("D@1", "invalid definition"),
        ("d@0", "invalid version"),
        ("d@\x00", "control"),
    ],
)
def test_bad_selectors(text: str, says: str) -> None:
    from lockstep.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match=None) as info:
        parse_selector(text)
    assert says in str(info.value)
