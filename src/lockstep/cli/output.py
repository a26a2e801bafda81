"""Printing and exit codes: the one place where errors become what a user sees."""

from __future__ import annotations

import json
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


def styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def fail(exc: errors.LockstepError, code: int = FAILED) -> NoReturn:
    if isinstance(exc, errors.SpecError) and exc.diagnostics:
        for diag in exc.diagnostics:
            err.print(f"[red]error[/]: {escape(str(diag))}")
    else:
        err.print(f"[red]error[/]: {escape(str(exc))}")
    raise SystemExit(code)
