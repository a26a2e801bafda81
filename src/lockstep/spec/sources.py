"""Checks of ``sources:`` entries that need more than a type: safe paths, URLs and refs.

The remote URL is checked for syntax only here (any scheme git could be asked to use safely);
whether this server allows ``file://`` or ``http://`` is decided when a run is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lockstep.spec.git_names import GitError, check_ref_name, is_sha, parse_remote
from lockstep.spec.yamlsafe import pointer

MAX_SOURCE_PATH = 255


def source_path_problem(path: str) -> str:
    """Why ``path`` cannot hold a source, or '' when it can."""
    parts = path.split("/")
    if not path:
        return "is empty"
    if len(path) > MAX_SOURCE_PATH:
        return f"is longer than {MAX_SOURCE_PATH} characters"
    if path.startswith("/"):
        return "is absolute; give a path relative to the workspace"
    if any(ord(c) < 0x20 or c in "\x7f\\" for c in path):
        return "contains control characters or a backslash"
    if any(p in ("", ".", "..") for p in parts):
        return "has an empty, '.' or '..' component"
    if parts[0] == ".git":
        return "is inside '.git'"
    return ""


def check_sources(data: Any, add: Callable[[str, str], None]) -> None:
    """Report every bad ``sources`` entry through ``add(message, json_pointer)``."""
    if not isinstance(data, list):
        return
    seen: list[tuple[str, int]] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            continue
        repo, ref, path = entry.get("repo"), entry.get("ref"), entry.get("path")
        if isinstance(repo, str):
            try:
                parse_remote(repo, allow_http=True, allow_file=True)
            except GitError as exc:
                add(str(exc), pointer("sources", index, "repo"))
        if isinstance(ref, str) and not is_sha(ref):
            try:
                check_ref_name(ref)
            except GitError as exc:
                add(str(exc), pointer("sources", index, "ref"))
        if not isinstance(path, str):
            continue
        problem = source_path_problem(path)
        if problem:
            add(f"source path {path[:80]!r} {problem}", pointer("sources", index, "path"))
            continue
        for other, at in seen:
            if path == other or path.startswith(other + "/") or other.startswith(path + "/"):
                add(
                    f"source path '{path}' overlaps source {at + 1} ('{other}'); "
                    "give each source its own directory",
                    pointer("sources", index, "path"),
                )
        seen.append((path, index))
