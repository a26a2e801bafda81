"""Records per second through source -> transform -> sink, for each delivery class, against a
floor: the same three programs joined by a shell pipe.

The programs are tests/pipeline_nodes.py (Python, a JSON line in and out per record). For each
class, one replica per node runs in this process through `lockstep.pipelines` (the runner, the
channels, the supervisor each program runs under), and the clock runs from starting the
runners to the sink having written N records. The floor is
`source N | adapt | transform | adapt | sink` (adapt turns an emit line into an input line,
which the runner does in the real thing), timed the same way. `stream` uses an embedded
nats-server (JetStream, file storage) in a temporary home; `landing` a directory store.

    python bench/pipeline_throughput.py [--records 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = str(ROOT / "tests" / "pipeline_nodes.py")
sys.path.insert(0, str(ROOT / "src"))

from lockstep.pipelines.channels.local import LocalHub  # noqa: E402
from lockstep.pipelines.channels.registry import ChannelContext, open_channels  # noqa: E402
from lockstep.pipelines.channels.stream import connect  # noqa: E402
from lockstep.pipelines.model import Edge, Node, NodeKind  # noqa: E402
from lockstep.pipelines.nats_server import NatsServer  # noqa: E402
from lockstep.pipelines.runner import NodeRunner  # noqa: E402
from lockstep.storage.blobs import DirectoryBlobStore  # noqa: E402


def _lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def floor(n: int, work: Path) -> float:
    sink = work / f"floor-{uuid.uuid4().hex}.txt"
    py = shlex.quote(sys.executable)
    prog = shlex.quote(PROGRAM)
    parts = [f"{py} {prog} source {n}", f"{py} {prog} adapt", f"{py} {prog} transform"]
    parts += [f"{py} {prog} adapt", f"{py} {prog} sink {shlex.quote(str(sink))}"]
    start = time.perf_counter()
    subprocess.run(["bash", "-c", " | ".join(parts) + " > /dev/null"], check=True)
    elapsed = time.perf_counter() - start
    assert _lines(sink) == n, "the pipe lost records"
    return elapsed


async def through(klass: str, n: int, work: Path, ctx: ChannelContext) -> float:
    sink = work / f"{klass}-{uuid.uuid4().hex}.txt"
    tag = uuid.uuid4().hex[:8]
    nodes = [
        Node("src", (sys.executable, PROGRAM, "source", str(n)), NodeKind.SOURCE, ("out",)),
        Node("mid", (sys.executable, PROGRAM, "transform"), NodeKind.TRANSFORM, ("out",)),
        Node("snk", (sys.executable, PROGRAM, "sink", str(sink)), NodeKind.SINK),
    ]
    graph = [
        Edge(f"a{tag}", "src", "out", "mid", klass),
        Edge(f"b{tag}", "mid", "out", "snk", klass),
    ]
    start = time.perf_counter()
    runners = []
    for node in nodes:
        inputs, outputs = await open_channels(ctx, node, graph)
        runners.append(NodeRunner(node, inputs, outputs))
    tasks = [asyncio.create_task(r.run_once()) for r in runners]
    seen, quiet_since = 0, time.perf_counter()
    while (now_seen := _lines(sink)) < n:
        if now_seen != seen:
            seen, quiet_since = now_seen, time.perf_counter()
        elif time.perf_counter() - quiet_since > 60:
            counts = [(r.node.name, r.counters.records_in, r.counters.acked) for r in runners]
            raise SystemExit(f"{klass}: stuck at {seen} of {n} records: {counts}")
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    await asyncio.gather(*(r.stop(grace_s=2) for r in runners))
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.records
    with tempfile.TemporaryDirectory(prefix="lockstep-bench-pipe-") as tmp:
        work = Path(tmp)
        broker = NatsServer(work / "nats")
        nc = await connect(await broker.start())
        try:
            contexts = {
                "local": ChannelContext(hub=LocalHub()),
                "stream": ChannelContext(js=nc.jetstream()),
                "landing": ChannelContext(store=DirectoryBlobStore(work / "store")),
            }
            rows: list[tuple[str, list[float]]] = [
                ("shell pipe (floor)", [floor(n, work) for _ in range(args.repeat)])
            ]
            for klass, ctx in contexts.items():
                times = [await through(klass, n, work, ctx) for _ in range(args.repeat)]
                rows.append((klass, times))
        finally:
            await nc.close()
            broker.stop()
    base = statistics.median(rows[0][1])
    print(f"{n} records, source -> transform -> sink, median of {args.repeat}")
    print(f"{'path':<20} {'seconds':>8} {'records/s':>10} {'vs floor':>9}")
    for name, times in rows:
        t = statistics.median(times)
        print(f"{name:<20} {t:>8.2f} {n / t:>10,.0f} {t / base:>8.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
