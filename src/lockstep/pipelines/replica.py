"""One replica as a process of its own: ``python -m lockstep.pipelines.replica SPEC``.

SPEC is a JSON file: ``node`` and ``also`` (``pipelines.model.Node``'s fields; the nodes of a
unit joined by ``local`` channels, run here side by side on one ``LocalHub``), ``edges``
(``name``, ``source``, ``output``, ``target``, ``klass``, ``options``), ``restarts`` (per
node), ``replica``, ``nats_url``, ``store`` (an artifact directory), ``container`` (``url`` and
``user`` of the worker's container runtime, for ``image`` nodes), ``status`` (a file the
counters are written to, about every ``status_every_s``). The values of the nodes' secrets
come on stdin, one JSON object (never in the spec file). It runs until SIGTERM, or until a
program is in a crash loop. Killed outright, it takes its programs with it (their supervisors
and container watchdogs see its end) and what it had not acked is handed to the other replicas
after the edge's ack-wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lockstep.errors import ConfigError
from lockstep.executors.container_runtime import ContainerRuntime
from lockstep.pipelines.channels.local import LocalHub
from lockstep.pipelines.channels.registry import ChannelContext, open_channels
from lockstep.pipelines.channels.stream import connect
from lockstep.pipelines.model import Edge, Node
from lockstep.pipelines.process import Program, Starter, start_process
from lockstep.pipelines.restarts import RestartPolicy, keep_running
from lockstep.pipelines.runner import NodeRunner
from lockstep.secrets.masking import Masker
from lockstep.storage.blobs import DirectoryBlobStore


def _counters(runner: NodeRunner) -> dict[str, Any]:
    c = runner.counters
    return {
        "state": str(c.state),
        "records_in": c.records_in,
        "records_out": c.records_out,
        "acked": c.acked,
        "malformed": c.malformed,
        "errors": c.errors,
        "restarts": c.restarts,
        "lag": c.lag,
        "program_pid": runner.program_pid,
        "last_exit": c.last_exit.reason if c.last_exit else None,
    }


def _status(runners: list[NodeRunner]) -> dict[str, Any]:
    """The first node's counters (the unit's name) with the unit's restarts and errors, and
    every node's under ``nodes``; the state is the worst of theirs."""
    nodes = {r.node.name: _counters(r) for r in runners}
    out = {"pid": os.getpid(), **nodes[runners[0].node.name], "nodes": nodes}
    for key in ("restarts", "errors", "malformed"):  # the unit's, as one replica
        out[key] = sum(int(n[key]) for n in nodes.values())
    for bad in ("degraded", "backoff", "starting"):
        if any(n["state"] == bad for n in nodes.values()):
            out["state"] = bad
            break
    for r in runners:
        if r.counters.state == "degraded" and r.counters.last_exit is not None:
            said = r.counters.last_exit.reason
            out["last_exit"] = f"{r.node.name}: {said}" if len(runners) > 1 else said
    return out


def _write(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(data))
    temp.replace(path)


def _starter(node: Node, container: dict[str, Any] | None) -> Starter:
    if node.image is None:
        return start_process
    if not container:
        raise ConfigError(f"node {node.name} runs an image; this worker has no container runtime")
    from lockstep.pipelines.container import Box, ContainerProcess

    runtime = ContainerRuntime(container["url"], default_user=container["user"])
    box = Box(runtime, {k: str(v) for k, v in container.get("labels", {}).items()})
    image = node.image
    limits = {"cpu": node.cpu, "memory_bytes": node.memory_bytes}

    async def start(argv: Sequence[str], env: Mapping[str, str], with_stdin: bool) -> Program:
        return await ContainerProcess.start(box, image, argv, env, with_stdin=with_stdin, **limits)

    return start


async def main(spec: dict[str, Any], secrets: dict[str, str]) -> int:
    nodes = [Node.from_json(n) for n in [spec["node"], *spec.get("also", [])]]
    edges = [Edge(**e) for e in spec["edges"]]
    nc = await connect(spec["nats_url"]) if spec.get("nats_url") else None
    store = DirectoryBlobStore(Path(spec["store"])) if spec.get("store") else None
    ctx = ChannelContext(
        replica=str(spec.get("replica", "0")),
        hub=LocalHub(),  # shared by the unit's nodes: their local channels
        js=nc.jetstream() if nc else None,
        store=store,
    )
    runners: list[NodeRunner] = []
    for node in nodes:
        inputs, outputs = await open_channels(ctx, node, edges)
        given = {name: secrets[name] for name in node.secrets}
        runners.append(
            NodeRunner(
                replace(node, env={**node.env, **given}),
                inputs,
                outputs,
                replica=ctx.replica,
                start=_starter(node, spec.get("container")),
                masker=Masker(given.values()),
            )
        )
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    status = Path(spec["status"])
    every = float(spec.get("status_every_s", 0.5))

    async def report() -> None:
        while True:
            for runner in runners:
                with contextlib.suppress(Exception):
                    await runner.refresh_lag()
            _write(status, _status(runners))
            await asyncio.sleep(every)

    restarts = spec.get("restarts", {})
    reporter = asyncio.create_task(report())
    running = [
        asyncio.create_task(keep_running(r, RestartPolicy(**restarts.get(r.node.name, {}))))
        for r in runners
    ]
    stop = asyncio.create_task(stopping.wait())
    try:
        # until SIGTERM, or one node's crash loop (its unit is degraded as a whole)
        await asyncio.wait([stop, *running], return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*(r.stop() for r in runners))
        await asyncio.gather(*running, return_exceptions=True)
    finally:
        stop.cancel()
        reporter.cancel()
        for task in running:
            task.cancel()
        _write(status, _status(runners))
        for runner in runners:
            await runner.close_channels()
        if nc is not None:
            await nc.close()
    return 0


def _secrets(spec: dict[str, Any]) -> dict[str, str]:
    """The values the worker sends on stdin; read only when a node has secrets."""
    if not any(n.get("secrets") for n in [spec["node"], *spec.get("also", [])]):
        return {}
    text = sys.stdin.read()
    values = json.loads(text) if text.strip() else {}
    return {str(k): str(v) for k, v in values.items()}


if __name__ == "__main__":
    given = json.loads(Path(sys.argv[1]).read_text())
    sys.exit(asyncio.run(main(given, _secrets(given))))
