"""The secret store: encrypted rows, write-only values, every missing name reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from lockstep.errors import InvalidRequest, NotFound
from lockstep.secrets.crypto import SecretBox, SecretError
from lockstep.storage import secrets as store
from lockstep.storage.database import Database
from lockstep.storage.rows import ProjectRow, SecretRow

VALUE = "hunter2-PLAINTEXT-marker-7f3a9c"


@pytest.fixture
def db(db: Database) -> Database:
    """The metadata database of each dialect, with a second project."""
    with db.session() as s:
        s.add(ProjectRow(id="team", name="team", created_at="2024-01-01T00:00:00Z"))
    return db


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.generate()


def test_set_replace_and_list_without_values(db: Database, box: SecretBox) -> None:
    with db.session() as s:
        assert store.set_secret(s, box, "default", "TOKEN", VALUE, by="alice") is True
        assert store.set_secret(s, box, "default", "A_KEY", "other-value", by=None) is True
    with db.session() as s:
        first = store.list_secrets(s, "default")[1]
        assert store.set_secret(s, box, "default", "TOKEN", VALUE + "2", by="bob") is False
    with db.session() as s:
        infos = store.list_secrets(s, "default")
        assert store.list_secrets(s, "team") == []
    assert [i.name for i in infos] == ["A_KEY", "TOKEN"]
    token = infos[1]
    assert token.updated_by == "bob"
    assert token.created_at == first.created_at and token.updated_at > first.updated_at
    assert not hasattr(token, "value") and VALUE not in repr(infos)
    with db.session() as s:
        assert store.resolve(s, box, "default", ["TOKEN"]) == {"TOKEN": VALUE + "2"}


def test_database_files_hold_no_plain_value(
    db: Database, box: SecretBox, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with db.session() as s:
        store.set_secret(s, box, "default", "TOKEN", VALUE, by="alice")
    with db.session() as s:
        store.set_secret(s, box, "team", "TOKEN", VALUE, by="alice")
    if db.engine.dialect.name == "sqlite":
        files = [p for p in tmp_path.iterdir() if p.name.startswith("meta.db")]
    else:
        files = request.getfixturevalue("postgres").files(db.url)
    assert files
    contents = {p: p.read_bytes() for p in files}
    assert any(b"TOKEN" in data for data in contents.values())  # the row is in these files
    # the value, and a part of it no other test writes: PostgreSQL's write-ahead log is the
    # whole cluster's, so it also holds other tests' rows (one stored "hunter2-very-secret" in
    # a notification's text, which a bare "hunter2" matched)
    for path, data in contents.items():
        for plain in (VALUE.encode(), b"PLAINTEXT-marker"):
            at = data.find(plain)
            assert at < 0, f"{plain!r} in {path} at {at}: {data[max(at - 300, 0) : at + 60]!r}"


def test_ciphertext_copied_to_another_row_does_not_decrypt(db: Database, box: SecretBox) -> None:
    with db.session() as s:
        store.set_secret(s, box, "default", "TOKEN", VALUE, by=None)
        store.set_secret(s, box, "default", "DECOY", "decoy-value", by=None)
        store.set_secret(s, box, "team", "TOKEN", "team-value", by=None)
    with db.session() as s:
        stolen = s.get(SecretRow, ("default", "TOKEN"))
        assert stolen is not None
        for key in (("default", "DECOY"), ("team", "TOKEN")):
            row = s.get(SecretRow, key)
            assert row is not None
            row.ciphertext = stolen.ciphertext
    with db.session() as s:
        assert store.resolve(s, box, "default", ["TOKEN"]) == {"TOKEN": VALUE}
        for project, name in (("default", "DECOY"), ("team", "TOKEN")):
            with pytest.raises(SecretError) as info:
                store.resolve(s, box, project, [name])
            assert name in str(info.value) and VALUE not in str(info.value)


def test_wrong_key_fails_without_the_value(db: Database, box: SecretBox) -> None:
    with db.session() as s:
        store.set_secret(s, box, "default", "TOKEN", VALUE, by=None)
    with db.session() as s, pytest.raises(SecretError) as info:
        store.resolve(s, SecretBox.generate(), "default", ["TOKEN"])
    assert "TOKEN" in str(info.value) and VALUE not in str(info.value)


@pytest.mark.parametrize(
    "name", ["", "token", "1TOKEN", "MY-TOKEN", "MY TOKEN", "TÖKEN", "A" * 129, "A\n"]
)
def test_names_are_validated(db: Database, box: SecretBox, name: str) -> None:
    with db.session() as s, pytest.raises(InvalidRequest) as info:
        store.set_secret(s, box, "default", name, VALUE, by=None)
    assert "secret names must match ^[A-Z_][A-Z0-9_]*$" in str(info.value)
    assert VALUE not in str(info.value)


def test_edge_names_are_accepted(db: Database, box: SecretBox) -> None:
    with db.session() as s:
        for name in ("_", "A", "_X9", "A" * 128):
            store.set_secret(s, box, "default", name, VALUE, by=None)
        assert len(store.list_secrets(s, "default")) == 4


def test_values_are_validated(db: Database, box: SecretBox) -> None:
    limit = store.MAX_VALUE_BYTES
    with db.session() as s:
        for bad in ("", "x" * (limit + 1), "\u00e9" * (limit // 2 + 1), "bad\udc80" + VALUE):
            with pytest.raises(InvalidRequest) as info:
                store.set_secret(s, box, "default", "TOKEN", bad, by=None)
            assert "TOKEN" in str(info.value) and VALUE not in str(info.value)
            assert "xxxx" not in str(info.value)
        assert store.set_secret(s, box, "default", "TOKEN", "x" * limit, by=None) is True
        assert store.resolve(s, box, "default", ["TOKEN"])["TOKEN"] == "x" * limit


def test_unknown_project_is_not_found(db: Database, box: SecretBox) -> None:
    with db.session() as s, pytest.raises(NotFound, match="project 'nope' not found"):
        store.set_secret(s, box, "nope", "TOKEN", VALUE, by=None)


def test_delete(db: Database, box: SecretBox) -> None:
    with db.session() as s:
        store.set_secret(s, box, "default", "TOKEN", VALUE, by=None)
        store.set_secret(s, box, "team", "TOKEN", VALUE, by=None)
    with db.session() as s:
        store.delete_secret(s, "default", "TOKEN")
    with db.session() as s:
        assert store.list_secrets(s, "default") == []
        assert [i.name for i in store.list_secrets(s, "team")] == ["TOKEN"]
        with pytest.raises(NotFound, match="secret 'TOKEN' not found in project 'default'"):
            store.delete_secret(s, "default", "TOKEN")
        assert s.scalar(select(SecretRow.name).where(SecretRow.project_id == "default")) is None


def test_missing_secrets_are_listed_all_at_once(db: Database, box: SecretBox) -> None:
    with db.session() as s:
        store.set_secret(s, box, "default", "HAVE", VALUE, by=None)
        store.set_secret(s, box, "team", "B", VALUE, by=None)
    with db.session() as s:
        names = ["B", "HAVE", "A", "B"]
        assert store.missing(s, "default", names) == ["B", "A"]
        assert store.missing(s, "default", ["HAVE"]) == []
        assert store.missing(s, "default", []) == []
        with pytest.raises(store.MissingSecrets) as info:
            store.resolve(s, box, "default", names)
        assert isinstance(info.value, NotFound)
        assert info.value.names == ["B", "A"]
        assert str(info.value) == (
            "missing secrets in project 'default': B, A; set them with `lockstep secrets set NAME`"
        )
        assert VALUE not in str(info.value)
        assert store.resolve(s, box, "default", ["HAVE", "HAVE"]) == {"HAVE": VALUE}
        assert store.resolve(s, box, "default", []) == {}
