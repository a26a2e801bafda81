"""The one error hierarchy. Every error a user can see is a ``LockstepError``.

Every error belongs to one category (``CATEGORIES``: the classes right below the root);
categories map to HTTP statuses (``api.errors``) and CLI exit codes (``cli.output``) in one
place each, and a unit test keeps every leaf in a category. Leaves carry structured fields so
callers never parse messages.
"""

from __future__ import annotations

from dataclasses import dataclass


class LockstepError(Exception):
    """Root of every error lockstep raises on purpose. ``str(err)`` is one line for a user."""

    #: stable machine-readable kind, used as the RFC 9457 problem ``type`` suffix
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def fields(self) -> dict[str, object]:
        """Structured details added to the API's problem document."""
        return {}


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a workflow file, located as ``file:line:col``."""

    message: str
    file: str = "<input>"
    line: int = 0
    col: int = 0
    path: str = ""  # JSON pointer of the offending node, e.g. /steps/build/run

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}: {self.message}"
        return f"{self.file}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": self.path,
        }


class SpecError(LockstepError):
    """A workflow definition is invalid. Carries every diagnostic found, not just the first."""

    kind = "invalid-spec"

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        first = str(self.diagnostics[0]) if self.diagnostics else "invalid workflow"
        more = len(self.diagnostics) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))


class ParamError(LockstepError):
    """Run parameters do not satisfy the workflow's params schema."""

    kind = "invalid-params"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class InvalidRequest(LockstepError):
    """A request is malformed in a way that is not about a workflow spec."""

    kind = "invalid-request"


class NotFound(LockstepError):
    kind = "not-found"


class Conflict(LockstepError):
    kind = "conflict"


class Unauthenticated(LockstepError):
    kind = "unauthenticated"


class PermissionDenied(LockstepError):
    kind = "permission-denied"


class PayloadTooLarge(LockstepError):
    kind = "payload-too-large"


class ConfigError(LockstepError):
    """lockstep itself is misconfigured or its home is unusable."""

    kind = "config"


class Unavailable(LockstepError):
    """Something lockstep needs cannot be reached now (the engine, the database, the
    artifact store, the server): trying again later may work."""

    kind = "unavailable"


class EngineUnavailable(Unavailable):
    """Temporal, the database or the server cannot be reached."""


class ExecutionError(LockstepError):
    """A step could not be executed (as opposed to a step that ran and failed)."""

    kind = "execution"

    def __init__(self, message: str, *, run_id: str = "", step: str = "") -> None:
        super().__init__(message)
        self.run_id = run_id
        self.step = step


#: the categories, each mapped once to an HTTP status and a CLI exit code
CATEGORIES: tuple[type[LockstepError], ...] = (
    SpecError,
    ParamError,
    InvalidRequest,
    NotFound,
    Conflict,
    Unauthenticated,
    PermissionDenied,
    PayloadTooLarge,
    ConfigError,
    Unavailable,
    ExecutionError,
)


def category(exc: LockstepError | type[LockstepError]) -> type[LockstepError]:
    """The category an error (or an error class) belongs to; the root for one outside every
    category (a bug the unit tests catch)."""
    cls = exc if isinstance(exc, type) else type(exc)
    return next((c for c in cls.__mro__ if c in CATEGORIES), LockstepError)
