"""The commands that start a long-running process: ``lockstep server`` and ``lockstep worker``.

Only their options are read here; what they run is imported when they run (the engine
stack costs seconds to import): the server process in ``cli/serve.py``, the worker in
``cli/worker.py``. The control plane itself (engine, workers, stores) is ``server/``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from lockstep.cli.output import fail
from lockstep.errors import InvalidRequest, LockstepError
from lockstep.settings import POOL_PATTERN

#: an external Temporal's frontend: host:port, or [v6-address]:port
_ADDRESS = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]{1,253}):[0-9]{1,5}$"

TemporalOption = Annotated[
    str | None,
    typer.Option(
        "--temporal",
        metavar="HOST:PORT",
        help="an external Temporal (no embedded one); else LOCKSTEP_TEMPORAL_ADDRESS",
    ),
]
NamespaceOption = Annotated[
    str | None,
    typer.Option(
        "--namespace",
        metavar="NS",
        help="its namespace; else LOCKSTEP_TEMPORAL_NAMESPACE, else 'default'",
    ),
]
TlsCaOption = Annotated[
    Path | None,
    typer.Option(
        "--temporal-tls-ca",
        metavar="PATH",
        help="PEM CA of Temporal's TLS certificate (turns TLS on); else LOCKSTEP_TEMPORAL_TLS_CA",
    ),
]


def _engine_options(temporal: str | None, namespace: str | None, tls_ca: Path | None) -> None:
    """Make the Temporal options the process's settings (as their LOCKSTEP_* variables)."""
    from lockstep.cli import context

    if temporal is not None and not re.fullmatch(_ADDRESS, temporal):
        fail(InvalidRequest(f"--temporal {temporal[:80]!r} is not HOST:PORT, e.g. temporal:7233"))
    context.override(
        temporal_address=temporal, temporal_namespace=namespace, temporal_tls_ca=tls_ca
    )


def server_command(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port")] = 8080,
    worker: Annotated[
        bool, typer.Option("--worker/--no-worker", help="serve pool 'default' in this process")
    ] = True,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="no tokens: a loopback-only demo server")
    ] = False,
    temporal: TemporalOption = None,
    namespace: NamespaceOption = None,
    temporal_tls_ca: TlsCaOption = None,
) -> None:
    """Start the control plane: Temporal (embedded unless --temporal), API, and a worker for
    pool 'default'."""
    from lockstep.cli import serve

    _engine_options(temporal, namespace, temporal_tls_ca)
    try:
        serve.serve(host, port, worker, auth=not no_auth)
    except LockstepError as exc:
        fail(exc)


def worker_command(
    pool: Annotated[str, typer.Option(help="the worker pool to serve")] = "default",
    concurrency: Annotated[int | None, typer.Option(min=1, max=1000)] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="k=v, shown in `workers list`")
    ] = None,
    temporal: TemporalOption = None,
    namespace: NamespaceOption = None,
    temporal_tls_ca: TlsCaOption = None,
) -> None:
    """Join a worker pool and execute its steps until stopped."""

    labels: dict[str, str] = {}
    for item in label or []:
        key, eq, value = item.partition("=")
        if not eq or not re.fullmatch(r"[A-Za-z0-9_.-]{1,63}", key) or len(value) > 200:
            fail(InvalidRequest(f"invalid label {item[:80]!r}: use key=value"))
        labels[key] = value

    if not re.fullmatch(POOL_PATTERN, pool):
        fail(
            InvalidRequest(
                f"invalid pool name {pool[:80]!r}: use lowercase letters, digits and '-' "
                "(at most 63 characters)"
            )
        )
    _engine_options(temporal, namespace, temporal_tls_ca)
    try:
        _work(pool, concurrency, labels)
    except LockstepError as exc:
        fail(exc)


def _work(pool: str, concurrency: int | None, labels: dict[str, str]) -> None:
    import asyncio

    from lockstep.cli import context
    from lockstep.cli.worker import work
    from lockstep.server import log_setup

    settings = context.settings()
    log_setup.configure(settings.log_format, settings.log_level)
    asyncio.run(work(settings, pool, concurrency, labels))
