"""Printing and exit codes: the one place where errors become what a user sees."""

from __future__ import annotations

import json
import re
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

from lockstep import errors

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

#: exit codes scripts rely on
OK, FAILED, REJECTED = 0, 1, 2

STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "upstream_failed": "red",
    "cancelled": "yellow",
    "skipped": "dim",
    "running": "cyan",
    "pending": "dim",
    "queued": "dim",
}


#: C0 (but tab), DEL, C1, and the invisible or direction-changing marks that could make a
#: terminal act on, or misorder, what a step printed
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with every control character spelled out (ESC as ``\\x1b``): what a step
    wrote never reaches the terminal raw."""
    return _UNSAFE.sub(lambda m: _spelled(m.group()), text)


def _spelled(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


#: a request the user got wrong (exit 2), as opposed to one that could not be carried out (1)
_REJECTED = (errors.SpecError, errors.ParamError, errors.InvalidRequest)


def exit_code(exc: errors.LockstepError) -> int:
    return REJECTED if isinstance(exc, _REJECTED) else FAILED


def fail(exc: errors.LockstepError, code: int | None = None) -> NoReturn:
    """Print ``exc`` as one line (a spec's every diagnostic) and exit: with ``code``, else 2
    for a bad request and 1 for anything else."""
    if isinstance(exc, errors.SpecError) and exc.diagnostics:
        for diag in exc.diagnostics:
            err.print(f"[red]error[/]: {escape(visible(str(diag)))}")
    else:
        err.print(f"[red]error[/]: {escape(visible(str(exc)))}")
    raise SystemExit(exit_code(exc) if code is None else code)
