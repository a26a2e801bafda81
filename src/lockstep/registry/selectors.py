"""The one selector grammar that names what to run: ``D``, ``D@7``, ``D@$LIVE``, ``D@main``,
``D@v1.2.0``, ``D@refs/heads/x`` or ``D@<sha prefix of 7+>``.

Parsing is pure and strict (no spaces, no ``..``, bounded length); resolving a selector to a
version and commit needs the registry and lives in ``services.versions``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lockstep.errors import InvalidRequest
from lockstep.spec.git_names import GitError, check_ref_name, is_sha

TAG_PATTERN = r"^\$[A-Z_]+$"
DEFINITION_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
MAX_SELECTOR = 150
_TAG = re.compile(TAG_PATTERN)
_DEFINITION = re.compile(DEFINITION_PATTERN)
#: the tag a bare ``D`` means when it is set
LIVE = "$LIVE"

Kind = Literal["default", "number", "tag", "ref"]


@dataclass(frozen=True)
class Selector:
    definition: str
    kind: Kind  # "default": $LIVE if set, else the latest version
    value: str  # the part after '@' ("" for "default")

    @property
    def text(self) -> str:
        return self.definition if self.kind == "default" else f"{self.definition}@{self.value}"


def _shown(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)[:80]


def check_tag(name: str) -> str:
    if not _TAG.fullmatch(name):
        raise InvalidRequest(
            f"invalid tag name {_shown(name)!r}: tags are '$' and capitals or '_', e.g. $LIVE"
        )
    return name


def parse_selector(text: str) -> Selector:
    """Parse ``text``; raise ``InvalidRequest`` saying what is wrong otherwise."""
    if len(text) > MAX_SELECTOR:
        raise InvalidRequest(
            f"selector is longer than {MAX_SELECTOR} characters; use DEFINITION@VERSION"
        )
    if not text or any(c.isspace() or not c.isprintable() for c in text):
        raise InvalidRequest(
            f"invalid selector {_shown(text)!r}: it is empty or contains spaces or control "
            "characters; use e.g. build@7, build@$LIVE or build@main"
        )
    if ".." in text:
        raise InvalidRequest(f"invalid selector {_shown(text)!r}: it contains '..'")
    definition, at, value = text.partition("@")
    if not _DEFINITION.fullmatch(definition):
        raise InvalidRequest(
            f"invalid definition name {_shown(definition)!r} in selector; names use a-z, 0-9, "
            "'.', '_' and '-'"
        )
    if not at:
        return Selector(definition, "default", "")
    if not value:
        raise InvalidRequest(
            f"selector {_shown(text)!r} names nothing after '@'; add a version, tag or ref"
        )
    if value.isascii() and value.isdigit():  # all digits is a number, never a SHA prefix
        if len(value) > 9 or int(value) < 1:
            raise InvalidRequest(f"invalid version number {_shown(value)!r}")
        return Selector(definition, "number", str(int(value)))
    if value.startswith("$"):
        return Selector(definition, "tag", check_tag(value))
    if not is_sha(value):
        try:
            check_ref_name(value)
        except GitError as exc:
            raise InvalidRequest(str(exc)) from None
    return Selector(definition, "ref", value)
