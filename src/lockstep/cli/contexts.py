"""``lockstep context show|use`` and ``lockstep logout``: which server plain commands use.

``lockstep login URL`` makes URL the current context; ``logout`` (or ``context use local``)
returns to the local home. ``LOCKSTEP_URL`` still wins over the context.
"""

from __future__ import annotations

from typing import Annotated

import typer

from lockstep.cli import context, credentials
from lockstep.cli.output import err, fail, out
from lockstep.errors import InvalidRequest

LOCAL = "local"
contexts = typer.Typer(help="Which server plain commands talk to.", no_args_is_help=True)


def describe() -> str:
    """One line: where commands of this invocation go."""
    settings = context.settings()
    if settings.url:
        return f"{settings.url} (LOCKSTEP_URL)"
    current = credentials.current(settings.config_dir)
    if current:
        return f"{current} (context; `lockstep logout` returns to the local home)"
    return f"{LOCAL}: {settings.home_dir}"


@contexts.command("show")
def context_show() -> None:
    """Print where commands go: LOCKSTEP_URL, the server logged in to, or the local home."""
    out.print(describe())


@contexts.command("use")
def context_use(
    target: Annotated[str, typer.Argument(help="'local', or a server URL logged in to")],
) -> None:
    """Send plain commands to TARGET from now on."""
    settings = context.settings()
    url = None if target == LOCAL else target.rstrip("/")
    if url is not None and credentials.load(settings.config_dir, url) is None:
        fail(InvalidRequest(f"not logged in to {url}; run `lockstep login {url}` first"))
    credentials.use(settings.config_dir, url)
    err.print(f"commands now go to {describe()}")


def logout_command(
    url: Annotated[
        str | None, typer.Argument(help="the server to forget (default: the current context)")
    ] = None,
) -> None:
    """Forget the token of a server; plain commands go to the local home again."""
    settings = context.settings()
    current = credentials.current(settings.config_dir)
    target = (url or current or "").rstrip("/")
    if target:
        credentials.forget(settings.config_dir, target)
    if current is None or not url or current == target:
        credentials.use(settings.config_dir, None)
    err.print(f"logged out{f' of {target}' if target else ''}; commands now go to {describe()}")
