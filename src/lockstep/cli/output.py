"""Printing and exit codes: the one place where errors become what a user sees."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape

from lockstep import errors
from lockstep.engine.states import RunStatus, StepStatus
from lockstep.spec.hints import visible as visible  # one copy, re-exported for the CLI

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

#: exit codes scripts rely on (the README's "Scripts")
OK, FAILED, REJECTED = 0, 1, 2

#: the one table from error category to exit code: a request the user got wrong exits 2, one
#: that could not be carried out 1
EXIT_CODES: dict[type[errors.LockstepError], int] = {
    errors.SpecError: REJECTED,
    errors.ParamError: REJECTED,
    errors.InvalidRequest: REJECTED,
    errors.NotFound: FAILED,
    errors.Conflict: FAILED,
    errors.Unauthenticated: FAILED,
    errors.PermissionDenied: FAILED,
    errors.PayloadTooLarge: FAILED,
    errors.ConfigError: FAILED,
    errors.Unavailable: FAILED,
    errors.ExecutionError: FAILED,
}

STATUS_STYLE: dict[str, str] = {
    StepStatus.SUCCEEDED: "green",
    StepStatus.FAILED: "red",
    StepStatus.UPSTREAM_FAILED: "red",
    StepStatus.CANCELLED: "yellow",
    StepStatus.SKIPPED: "dim",
    StepStatus.RUNNING: "cyan",
    StepStatus.WAITING: "magenta",
    StepStatus.PENDING: "dim",
    RunStatus.QUEUED: "dim",
}


def styled(status: str) -> str:
    return f"[{STATUS_STYLE.get(status, 'white')}]{escape(status)}[/]"


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def exit_code(exc: errors.LockstepError, *, rejected: bool = False) -> int:
    """The exit code of ``exc``'s category; ``rejected``: the command's request was refused
    before anything ran (``lockstep run``'s rule), which exits 2 whatever refused it."""
    return REJECTED if rejected else EXIT_CODES.get(errors.category(exc), FAILED)


def run_exit(status: str) -> int:
    """The exit code of a command that followed a run to its end: 0 if it succeeded."""
    return OK if status == RunStatus.SUCCEEDED else FAILED


def fail(exc: errors.LockstepError, *, rejected: bool = False) -> NoReturn:
    """Print ``exc`` as one line (a spec's every diagnostic) and exit with its code
    (``exit_code``)."""
    if isinstance(exc, errors.SpecError) and exc.diagnostics:
        for diag in exc.diagnostics:
            err.print(f"[red]error[/]: {escape(visible(str(diag)))}")
    else:
        err.print(f"[red]error[/]: {escape(visible(str(exc)))}")
    raise SystemExit(exit_code(exc, rejected=rejected))
