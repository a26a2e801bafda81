"""Where blueprints come from: ``uses: ./path.yaml`` resolved inside the caller's repository,
or ``uses: DEF@SELECTOR``, a published definition of the same project (resolved by the server).

A blueprint path is relative to the file that uses it and must stay inside the repository
root: no absolute paths, no ``..`` above the root, no symbolic link leading out. The files are
read through one small protocol, so the same expansion serves a working copy on disk (the CLI)
and a commit in a mirror (the registry).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lockstep.spec.yamlsafe import MAX_BYTES

#: what a blueprint reference starts with (a path relative to the using file)
PATH_PREFIXES = ("./", "../")
#: a published blueprint: a definition name, optionally ``@`` and a selector (the selector's
#: own grammar is checked where it is resolved, ``registry.selectors``)
_PUBLISHED = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}(@[^\s]+)?")
#: a published version as a header line names it: ``D@7``
_VERSION = re.compile(r"(?P<definition>[a-z0-9][a-z0-9._-]{0,99})@[0-9]+")
#: joins an alias and an imported step id: ``etl`` + ``extract`` -> ``etl__extract``. Valid in
#: step ids and CEL identifiers (``steps.etl__extract.outputs.x``), unlike '.' or '-'.
SEPARATOR = "__"
#: how deep blueprints may use blueprints
MAX_DEPTH = 8
#: how many blueprint files one workflow may read, all levels together
MAX_FILES = 100


@dataclass(frozen=True)
class BlueprintUse:
    """One blueprint file a workflow expanded: under which alias, and its exact content."""

    alias: str  # as expanded, e.g. ``etl`` or ``etl__clean`` for a nested one
    path: str  # repository-relative, or ``D@<number>`` for a published definition's version
    digest: str  # sha256 hex of its bytes

    @property
    def definition(self) -> str | None:
        """The published definition this use expanded, if it was one."""
        found = _VERSION.fullmatch(self.path)
        return found["definition"] if found else None


@dataclass(frozen=True)
class PublishedBlueprint:
    """A version of a published definition, as a selector named it when it was resolved."""

    definition: str
    number: int
    text: str  # as stored: already expanded (its header names what it expanded)


class BlueprintUnreadable(Exception):
    """A blueprint file cannot be read; ``str()`` says why, in one line."""


class BlueprintFiles(Protocol):
    """Reads repository files by their repository-relative POSIX path."""

    def read(self, path: str) -> bytes: ...


class PublishedBlueprints(Protocol):
    """Resolves ``DEF@SELECTOR`` in the caller's project; ``BlueprintUnreadable`` says why not."""

    def read(self, selector: str) -> PublishedBlueprint: ...


def is_blueprint(uses: object) -> bool:
    """Whether a step's ``uses`` names a blueprint file (rather than ``noop``)."""
    return isinstance(uses, str) and uses.startswith(PATH_PREFIXES)


def is_published(uses: object) -> bool:
    """Whether a step's ``uses`` names a published definition (``DEF@SELECTOR`` or ``DEF``)."""
    return isinstance(uses, str) and uses != "noop" and bool(_PUBLISHED.fullmatch(uses))


def is_any_blueprint(uses: object) -> bool:
    return is_blueprint(uses) or is_published(uses)


def uses_blueprints(data: Any) -> bool:
    """Whether parsed workflow data has a step that uses a blueprint."""
    if not isinstance(data, dict):
        return False
    groups = (data.get("steps"), data.get("finally"))
    return any(
        isinstance(step, dict) and is_any_blueprint(step.get("uses"))
        for group in groups
        if isinstance(group, dict)
        for step in group.values()
    )


def check_uses(value: str) -> str:
    """The model's check of ``uses``: ``noop``, a blueprint path or a published definition."""
    if value == "noop" or is_any_blueprint(value):
        return value
    raise ValueError(
        f"got {value[:80]!r}; use 'noop', a blueprint file of the same repository "
        "('./blueprints/etl.yaml') or a published definition ('etl@$LIVE')"
    )


_HEADER = re.compile(r"# blueprint (?P<alias>\S+): (?P<path>\S+) sha256:(?P<digest>[0-9a-f]{64})")


def header_uses(text: str) -> list[BlueprintUse]:
    """The blueprints an expanded workflow's header says it expanded (none for a plain one)."""
    found: list[BlueprintUse] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        match = _HEADER.fullmatch(line)
        if match:
            found.append(BlueprintUse(match["alias"], match["path"], match["digest"]))
    return found


def resolve_path(caller: str, ref: str) -> str:
    """The repository path ``ref`` names from the file ``caller`` (both repository-relative);
    ``ValueError`` when it leaves the repository."""
    if "\\" in ref or "\x00" in ref:
        raise ValueError(f"blueprint path {ref!r} must use '/' and no special characters")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(caller), ref))
    if joined.startswith("/") or joined == ".." or joined.startswith("../"):
        raise ValueError(f"blueprint path {ref!r} leads outside the repository")
    return joined


def rebase_path(blueprint: str, caller: str, ref: str) -> str:
    """A ``./`` path written in ``blueprint`` (a ``workflow: ./kid.yaml`` child), rewritten
    to name the same file from ``caller``, whose steps it becomes (both repository-relative);
    ``ValueError`` when it leaves the repository."""
    target = resolve_path(blueprint, ref)
    moved = posixpath.relpath(target, posixpath.dirname(caller) or ".")
    return moved if moved.startswith("../") else "./" + moved


def display_path(caller_display: str, ref: str) -> str:
    """How to name a blueprint in messages: beside the caller as the user named it."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(caller_display), ref))


class MappingFiles:
    """Files held in memory (tests, and the registry's prefetched reads)."""

    def __init__(self, files: Mapping[str, bytes | str]) -> None:
        self._files = files

    def read(self, path: str) -> bytes:
        found = self._files.get(path)
        if found is None:
            raise BlueprintUnreadable(f"{path} does not exist in the repository")
        return found.encode() if isinstance(found, str) else found


class DirectoryFiles:
    """Files of a working copy under ``root`` (a repository's top level)."""

    def __init__(self, root: Path, *, max_bytes: int = MAX_BYTES) -> None:
        self.root = root.resolve()
        self._max = max_bytes

    def read(self, path: str) -> bytes:
        target = self.root / path
        real = Path(os.path.realpath(target))
        if not real.is_relative_to(self.root):
            raise BlueprintUnreadable(f"{path} is a symbolic link leading outside the repository")
        try:
            with real.open("rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise BlueprintUnreadable(f"{path} is not a regular file")
                raw = handle.read(self._max + 1)
        except FileNotFoundError:
            raise BlueprintUnreadable(f"{path} does not exist in the repository") from None
        except OSError as err:
            raise BlueprintUnreadable(f"cannot read {path}: {err.strerror or err}") from None
        if len(raw) > self._max:
            raise BlueprintUnreadable(f"{path} is larger than {self._max} bytes")
        return raw


def working_copy(file: str, *, max_bytes: int = MAX_BYTES) -> tuple[DirectoryFiles, str]:
    """The files of the repository around a workflow file on disk (the nearest folder holding
    ``.git``, or the file's own folder) and the file's path inside it."""
    here = Path(file).resolve()
    root = here.parent
    for folder in (here.parent, *here.parent.parents):
        if (folder / ".git").exists():
            root = folder
            break
    return DirectoryFiles(root, max_bytes=max_bytes), here.relative_to(root).as_posix()
