"""The ``lockstep`` command."""

from __future__ import annotations

import gc
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lockstep import __version__
from lockstep.cli import (
    admin,
    approvals,
    artifacts,
    context,
    contexts,
    deployments,
    doctor,
    fleet,
    notifications,
    registry,
    resources,
    runs,
    triggers,
    versions,
    workers,
)
from lockstep.cli.daemons import server_command, worker_command
from lockstep.cli.init import init_command
from lockstep.cli.output import FAILED, OK, err, fail, out, visible
from lockstep.cli.run import run_command
from lockstep.errors import LockstepError, SpecError

if TYPE_CHECKING:
    from lockstep.spec.load import LoadedSpec

# The spec package (pydantic models, JSON Schema, CEL) is imported by the commands that read
# workflow files, not at start-up: every other command would pay for it.

app = typer.Typer(
    name="lockstep",
    help="Git-native, durable workflows: validate and run workflow.yaml files.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
app.command("init")(init_command)
app.command("run")(run_command)
app.command("server")(server_command)
app.command("worker")(worker_command)
runs.app.command("artifacts")(artifacts.artifacts_command)
runs.app.command("download")(artifacts.download_command)
runs.app.command("items")(artifacts.items_command)
runs.app.command("output")(artifacts.output_command)
app.add_typer(runs.app, name="runs")
app.add_typer(admin.projects, name="projects")
app.add_typer(admin.members, name="members")
app.add_typer(admin.tokens, name="tokens")
app.add_typer(admin.secrets, name="secrets")
app.add_typer(registry.repos, name="repos")
app.add_typer(registry.definitions, name="definitions")
app.add_typer(registry.instances, name="instances")
app.add_typer(versions.versions, name="versions")
app.add_typer(versions.tags, name="tags")
app.add_typer(workers.workers, name="workers")
app.add_typer(triggers.triggers, name="triggers")
app.add_typer(notifications.notifications, name="notifications")
app.add_typer(approvals.approvals, name="approvals")
app.add_typer(resources.resources, name="resources")
app.add_typer(triggers.schedules, name="schedules")
app.command("plan")(deployments.plan_command)
app.command("deploy")(deployments.deploy_command)
app.command("rollback")(deployments.rollback_command)
app.command("workloads")(deployments.workloads_command)
app.command("fleet")(fleet.fleet_command)
app.add_typer(deployments.deployments, name="deployments")
app.command("publish")(versions.publish_command)
app.command("audit")(admin.audit_command)
app.command("doctor")(doctor.doctor_command)
app.command("login")(admin.login_command)
app.command("logout")(contexts.logout_command)
app.add_typer(contexts.contexts, name="context")


def _print_version(wanted: bool) -> None:
    if wanted:
        out.print(f"lockstep {__version__}")
        raise typer.Exit(OK)


@app.callback()
def _global(
    project: Annotated[
        str | None,
        typer.Option("--project", help="the project to act in (LOCKSTEP_PROJECT; 'default')"),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    context.override(project=project)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="workflow files or directories")],
    expand: Annotated[
        bool,
        typer.Option("--expand", help="print each workflow as it runs: blueprints expanded (YAML)"),
    ] = False,
) -> None:
    """Check workflow files (workflow.yaml, the JSON state machine, a pipeline); print every
    problem as file:line:col. Exit 1 if any is invalid."""
    from lockstep.spec.documents import load_workflow_file, step_count, unit_noun
    from lockstep.spec.load import LoadedSpec

    bad = 0
    for path in files:
        try:
            loaded = load_workflow_file(path)
        except SpecError as exc:
            bad += 1
            for diag in exc.diagnostics:  # a file's text is data: never markup, never raw
                err.print(f"[red]error[/]: {escape(visible(str(diag)))}", highlight=False)
            continue
        if expand:  # the document alone on stdout, so it can be piped or saved
            sys.stdout.write(loaded.text if loaded.text.endswith("\n") else loaded.text + "\n")
            if isinstance(loaded, LoadedSpec):
                _note_published_uses(loaded)
        count = f"{step_count(loaded)} {unit_noun(loaded)}"
        (err if expand else out).print(f"{loaded.file}: ok ({count})")
        if isinstance(loaded, LoadedSpec):
            _warn_unknown_pools(loaded)
    raise typer.Exit(FAILED if bad else OK)


def _note_published_uses(loaded: LoadedSpec) -> None:
    """``--expand`` reads blueprint files, not the registry: say which published blueprints
    (``DEF@SELECTOR``) stay as written, for the server to expand when the workflow is sent."""
    from lockstep.spec.blueprint_files import is_published

    for sid, step in loaded.spec.all_steps().items():
        if is_published(step.uses):
            err.print(
                f"note: step '{escape(sid)}' uses the published blueprint "
                f"'{escape(visible(str(step.uses)))}', left as written: the server expands it "
                "when the workflow is run or published",
                highlight=False,
            )


def _warn_unknown_pools(loaded: LoadedSpec) -> None:
    """A pool no worker has ever served is most likely a typo: say so (not an error: the
    workers may simply not have started yet)."""
    wanted = {
        sid: step.runs_on or loaded.spec.defaults.runs_on
        for sid, step in loaded.spec.all_steps().items()
    }
    if not any(pool and pool != "default" for pool in wanted.values()):
        return
    from lockstep.cli.admin import go
    from lockstep.cli.client import ApiClient
    from lockstep.spec.yamlsafe import pointer

    async def check(c: ApiClient) -> None:
        known = {w["pool"] for w in await c.call("GET", "/workers", params={"all": "true"})}
        for sid, pool in wanted.items():
            if pool and pool != "default" and pool not in known:
                group = "finally" if sid in loaded.spec.finally_ else "steps"
                has_own = loaded.spec.all_steps()[sid].runs_on is not None
                ptr = pointer(group, sid, "runs_on") if has_own else "/defaults/runs_on"
                line, col = loaded.position(ptr)
                err.print(
                    f"[yellow]warning[/]: {loaded.file}:{line}:{col}: step '{sid}' runs on pool "
                    f"'{pool}', which no worker has served; start one with "
                    f"`lockstep worker --pool {pool}`",
                    highlight=False,
                )

    go(check)


@app.command()
def schema() -> None:
    """Print the JSON Schema of workflow.yaml (for editors)."""
    from lockstep.spec.models import json_schema

    out.print_json(json.dumps(json_schema()))


class Shell(StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"
    powershell = "powershell"


@app.command()
def completion(shell: Annotated[Shell, typer.Argument(help="the shell to complete in")]) -> None:
    """Print the completion script for SHELL (``--show-completion`` guesses the shell from the
    process tree, which fails in a container or under another program)."""
    from typer._completion_shared import get_completion_script

    # typer's own scripts, as --install-completion writes them
    script = get_completion_script(
        prog_name="lockstep", complete_var="_LOCKSTEP_COMPLETE", shell=shell.value
    )
    typer.echo(script)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(__version__)


def main() -> None:
    try:
        app()
    except (SystemExit, KeyboardInterrupt):
        raise
    except LockstepError as exc:  # raised outside a command's own handler: still one line
        fail(exc)
    except OSError as exc:  # a path a user gave: missing, unwritable, a directory…
        where = f": {exc.filename}" if exc.filename else ""
        err.print(f"[red]error[/]: {escape(str(exc.strerror or exc))}{escape(where)}")
        raise SystemExit(FAILED) from None
    except Exception as exc:
        err.print(f"[red]error[/]: unexpected {type(exc).__name__}: {exc}; please report this")
        raise SystemExit(FAILED) from None
    finally:
        # The process ends here. Its last garbage collection would walk every object the
        # imports made (0.4 s of a 1.2 s `runs list`) to free memory the OS takes back anyway;
        # frozen objects are skipped. Commands have closed their files and stores already.
        gc.freeze()
