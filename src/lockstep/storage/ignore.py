"""Which files of a directory an ad-hoc run leaves out: ``.gitignore`` and ``.lockstepignore``.

Both use gitignore syntax (``pathspec``'s implementation of it) and apply beneath the directory
that holds them; as in git, a deeper file overrides a shallower one and a later line an earlier
one, and ``.lockstepignore`` overrides ``.gitignore`` in the same directory (so it can also
re-include with ``!``). ``.gitignore`` files of the directories above, up to the top of the git
work tree, apply too: a workflow in a subfolder leaves out what the repository ignores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

IGNORE_FILES = (".gitignore", ".lockstepignore")
#: an ignore file longer than this is not a list of patterns anyone wrote
_MAX_IGNORE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class _Layer:
    base: str  # absolute directory the patterns are relative to, ending in '/'
    spec: GitIgnoreSpec


@dataclass(frozen=True)
class IgnoreRules:
    """The ignore files in force in one directory, outermost first."""

    layers: tuple[_Layer, ...] = ()

    @classmethod
    def above(cls, root: Path) -> IgnoreRules:
        """The rules the directories above ``root`` impose, up to its git work tree's top (none
        when ``root`` is not in one)."""
        chain: list[Path] = []
        for parent in root.parents:
            chain.append(parent)
            if (parent / ".git").exists():
                break
        else:
            return cls()
        rules = cls()
        for directory in reversed(chain):
            rules = rules.entering(directory)
        return rules

    def entering(self, directory: Path) -> IgnoreRules:
        """These rules plus those of ``directory``'s own ignore files."""
        added = [
            _Layer(str(directory).rstrip("/") + "/", spec)
            for name in IGNORE_FILES
            if (spec := _read(directory / name)) is not None
        ]
        return IgnoreRules(self.layers + tuple(added)) if added else self

    def ignores(self, path: Path, *, is_dir: bool) -> bool:
        full = str(path)
        for layer in reversed(self.layers):
            rel = full[len(layer.base) :]
            found = layer.spec.check_file(rel + "/" if is_dir else rel)
            if found.include is not None:
                return bool(found.include)
        return False


def _read(path: Path) -> GitIgnoreSpec | None:
    try:
        # never follow a link: an ignore file is the directory's own
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(_MAX_IGNORE_BYTES)
    lines = data.decode("utf-8", "replace").splitlines()
    return GitIgnoreSpec.from_lines(lines) if lines else None
