"""``lockstep init``: a commented ``workflow.yaml`` to start from, for a common shape.

The starters are files shipped in the package (``lockstep/templates/NAME.yaml``); each one
validates and runs as written (a test runs every one). ``init`` writes one into a directory,
named after the directory when its name is a valid workflow name, and never overwrites a file
unless told to.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lockstep.cli.output import err, fail, out
from lockstep.errors import Conflict, InvalidRequest
from lockstep.spec.names import NAME_PATTERN

#: name -> one line saying what it shows (``--list``); the first is the default
TEMPLATES: dict[str, str] = {
    "chain": "steps one after another, each passing values to the next",
    "fan-out": "one step per item of a list, in parallel, then a step gathering the results",
    "container": "a step in a container of an image (Podman or Docker)",
    "scheduled": "a job with a cron trigger, that runs by hand as well",
    "approval": "a gate that waits for a person's approval before the next step",
}
DEFAULT = "chain"
FILE_NAME = "workflow.yaml"
_NAME_LINE = re.compile(r"^name: .*$", re.MULTILINE)


def template_text(name: str) -> str:
    """The starter ``name`` as shipped."""
    return resources.files("lockstep").joinpath("templates", f"{name}.yaml").read_text("utf-8")


def _named(text: str, directory: Path) -> str:
    """``text`` with its workflow named after ``directory`` when that is a valid name."""
    name = directory.resolve().name.lower()
    if len(name) > 63 or not re.fullmatch(NAME_PATTERN, name):
        return text
    return _NAME_LINE.sub(f"name: {name}", text, count=1)


def init_command(
    directory: Annotated[
        Path, typer.Argument(help="where to write workflow.yaml (created if missing)")
    ] = Path(),
    template: Annotated[
        str, typer.Option("--template", "-t", help="the starter's shape (see --list)")
    ] = DEFAULT,
    list_: Annotated[
        bool, typer.Option("--list", help="list the starters and what each shows")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="overwrite an existing file")] = False,
) -> None:
    """Write a commented workflow.yaml for a common shape, ready to validate and run."""
    if list_:
        width = max(map(len, TEMPLATES))
        for name, summary in TEMPLATES.items():
            default = " (default)" if name == DEFAULT else ""
            out.print(f"{name:<{width}}  {summary}{default}")
        return
    if template not in TEMPLATES:
        fail(
            InvalidRequest(
                f"no template {template!r}; choose one of: {', '.join(TEMPLATES)} "
                "(lockstep init --list)"
            )
        )
    target = directory / FILE_NAME
    if target.exists() and not force:
        fail(Conflict(f"{target} already exists; pass --force to overwrite it"))
    directory.mkdir(parents=True, exist_ok=True)
    text = _named(template_text(template), directory)
    # "x" without --force: a file that appeared meanwhile is still not overwritten
    with target.open("w" if force else "x", encoding="utf-8") as f:
        f.write(text)
    out.print(f"wrote {escape(str(target))} (template {template})")
    err.print(
        f"next: lockstep validate {escape(str(target))} && lockstep run {escape(str(target))}"
    )
