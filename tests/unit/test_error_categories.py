"""Every error lockstep raises has a category, and each category becomes an HTTP status and
a CLI exit code in one place each (``api.errors.STATUS``, ``cli.output.EXIT_CODES``); none is
a 500, which stays the answer to a bug."""

from __future__ import annotations

import importlib
import pkgutil

import httpx
import pytest
from fastapi import FastAPI

import lockstep
from lockstep import errors
from lockstep.api.errors import STATUS, install, status_for
from lockstep.cli.output import EXIT_CODES, FAILED, REJECTED, exit_code, fail
from lockstep.secrets.crypto import SecretError
from lockstep.spec.expressions import ExpressionError
from lockstep.spec.git_names import GitError
from lockstep.storage.s3 import StoreUnavailable


def _every_error() -> list[type[errors.LockstepError]]:
    for mod in pkgutil.walk_packages(lockstep.__path__, "lockstep."):
        # migrations run against a database when imported; they define no errors
        if ".migrations" not in mod.name and not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    found: list[type[errors.LockstepError]] = []
    todo = list(errors.LockstepError.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


EVERY_ERROR = _every_error()


def test_the_walk_found_the_leaves_of_other_packages() -> None:
    names = {cls.__name__ for cls in EVERY_ERROR}
    assert {"GitError", "SecretError", "ExpressionError", "StoreUnavailable", "HomeBusy"} <= names


@pytest.mark.parametrize("cls", EVERY_ERROR, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_error_has_a_category_a_status_and_an_exit_code(
    cls: type[errors.LockstepError],
) -> None:
    category = errors.category(cls)
    assert category in errors.CATEGORIES, f"{cls.__name__} is in no category"
    assert category in STATUS and category in EXIT_CODES
    assert 400 <= status_for(cls) < 600 and status_for(cls) != 500
    assert EXIT_CODES[category] in (FAILED, REJECTED)


def test_the_tables_cover_exactly_the_categories() -> None:
    assert set(STATUS) == set(EXIT_CODES) == set(errors.CATEGORIES)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (GitError("remote URL 'x' is not allowed", reason="invalid-url"), 400, REJECTED),
        (ExpressionError("unknown name 'stpes'"), 400, REJECTED),
        (SecretError("secret 'k' cannot be decrypted", project="p", name="k"), 409, FAILED),
        (StoreUnavailable("artifact store unreachable"), 503, FAILED),
        (errors.EngineUnavailable("cannot reach Temporal"), 503, FAILED),
        (errors.SpecError([errors.Diagnostic("bad")]), 422, REJECTED),
        (errors.NotFound("run r1 not found"), 404, FAILED),
    ],
)
def test_leaves_answer_as_their_category(exc: errors.LockstepError, status: int, code: int) -> None:
    assert status_for(exc) == status and exit_code(exc) == code


def test_refused_before_it_started_exits_2_whatever_refused_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as ended:
        fail(errors.NotFound("definition 'nope' not found"), rejected=True)
    assert ended.value.code == REJECTED
    with pytest.raises(SystemExit) as ended:
        fail(errors.NotFound("run r1 not found"))
    assert ended.value.code == FAILED
    assert capsys.readouterr().err.splitlines() == [
        "error: definition 'nope' not found",
        "error: run r1 not found",
    ]


async def test_the_api_answers_a_leaf_with_its_category_status() -> None:
    app = FastAPI()
    install(app)

    @app.get("/secret")
    def _secret() -> None:
        raise SecretError("secret 'k' in project 'p' cannot be decrypted", project="p", name="k")

    @app.get("/store")
    def _store() -> None:
        raise StoreUnavailable("artifact store s3://b is unreachable; check it is up")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        secret, store = await client.get("/secret"), await client.get("/store")
    assert secret.status_code == 409
    assert secret.json()["type"].endswith("/secret-unreadable")
    assert "cannot be decrypted" in secret.json()["detail"]
    assert store.status_code == 503 and store.json()["type"].endswith("/unavailable")
