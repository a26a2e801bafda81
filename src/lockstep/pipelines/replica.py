"""One node replica as a process of its own: ``python -m lockstep.pipelines.replica SPEC``.

SPEC is a JSON file: ``node`` (``name``, ``argv``, ``kind``, ``outputs``, ``env``), ``edges``
(``name``, ``source``, ``output``, ``target``, ``klass``, ``options``), ``replica``,
``nats_url``, ``store`` (an artifact directory), ``status`` (a file the counters are written
to, about every ``status_every_s``). It runs until SIGTERM, or until the program is in a crash
loop. Killed outright, it takes its program with it (the supervisor sees its end) and what it
had not acked is handed to the other replicas after the edge's ack-wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from lockstep.pipelines.channels.local import LocalHub
from lockstep.pipelines.channels.registry import ChannelContext, open_channels
from lockstep.pipelines.channels.stream import connect
from lockstep.pipelines.model import Edge, Node, NodeKind
from lockstep.pipelines.restarts import RestartPolicy, keep_running
from lockstep.pipelines.runner import NodeRunner
from lockstep.storage.blobs import DirectoryBlobStore


def _status(runner: NodeRunner) -> dict[str, Any]:
    c = runner.counters
    return {
        "pid": os.getpid(),
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


def _write(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(json.dumps(data))
    temp.replace(path)


async def main(spec: dict[str, Any]) -> int:
    node = Node(
        name=spec["node"]["name"],
        argv=tuple(spec["node"]["argv"]),
        kind=NodeKind(spec["node"]["kind"]),
        outputs=tuple(spec["node"].get("outputs", ())),
        env=dict(spec["node"].get("env", {})),
    )
    edges = [Edge(**e) for e in spec["edges"]]
    nc = await connect(spec["nats_url"]) if spec.get("nats_url") else None
    store = DirectoryBlobStore(Path(spec["store"])) if spec.get("store") else None
    ctx = ChannelContext(
        replica=str(spec.get("replica", "0")),
        hub=LocalHub(),
        js=nc.jetstream() if nc else None,
        store=store,
    )
    inputs, outputs = await open_channels(ctx, node, edges)
    runner = NodeRunner(node, inputs, outputs, replica=ctx.replica)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(runner.stop()))
    status = Path(spec["status"])
    every = float(spec.get("status_every_s", 0.5))

    async def report() -> None:
        while True:
            with contextlib.suppress(Exception):
                await runner.refresh_lag()
            _write(status, _status(runner))
            await asyncio.sleep(every)

    reporter = asyncio.create_task(report())
    try:
        await keep_running(runner, RestartPolicy(**spec.get("restart", {})))
    finally:
        reporter.cancel()
        _write(status, _status(runner))
        for consumer in inputs:
            with contextlib.suppress(Exception):
                await consumer.close()
        for publisher in (p for pubs in outputs.values() for p in pubs):
            with contextlib.suppress(Exception):
                await publisher.close()
        if nc is not None:
            await nc.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(json.loads(Path(sys.argv[1]).read_text()))))
