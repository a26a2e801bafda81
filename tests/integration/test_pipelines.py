"""The pipeline data plane with real processes: node programs speaking the contract, a real
NATS JetStream broker, the directory artifact store, replicas as separate processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import nats
import pytest

from lockstep.executors.container_runtime import ContainerRuntime
from lockstep.pipelines.channels.landing import LandingConsumer, LandingPublisher
from lockstep.pipelines.channels.local import LocalHub
from lockstep.pipelines.channels.registry import ChannelContext, open_channels
from lockstep.pipelines.container import Box, ContainerProcess
from lockstep.pipelines.contract import encode_data
from lockstep.pipelines.model import Edge, Node, NodeKind
from lockstep.pipelines.process import Program
from lockstep.pipelines.restarts import RestartPolicy, keep_running
from lockstep.pipelines.runner import NodeRunner, ReplicaState
from lockstep.secrets.masking import Masker
from lockstep.storage.blobs import DirectoryBlobStore
from tests.harness import await_for
from tests.podman import Podman

PROGRAM = str(Path(__file__).parents[1] / "pipeline_nodes.py")


def program(*args: str) -> tuple[str, ...]:
    return (sys.executable, PROGRAM, *args)


def received(path: Path) -> Counter[int]:
    if not path.exists():
        return Counter()
    return Counter(int(line) for line in path.read_text().split())


def three_nodes(sink_file: Path, n: int, delay: str = "0") -> tuple[Node, Node, Node]:
    return (
        Node("src", program("source", str(n)), NodeKind.SOURCE, outputs=("out",)),
        Node("mid", program("transform", delay), NodeKind.TRANSFORM, outputs=("out",)),
        Node("snk", program("sink", str(sink_file)), NodeKind.SINK),
    )


def edges(klass: str, tag: str, **options: float) -> list[Edge]:
    return [
        Edge(f"a{tag}", "src", "out", "mid", klass, options),
        Edge(f"b{tag}", "mid", "out", "snk", klass, options),
    ]


@contextlib.asynccontextmanager
async def running(runners: list[NodeRunner]) -> AsyncIterator[list[asyncio.Task[object]]]:
    tasks: list[asyncio.Task[object]] = [asyncio.create_task(r.run_once()) for r in runners]
    try:
        yield tasks
    finally:
        await asyncio.gather(*(r.stop(grace_s=2) for r in runners))
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_stream_moves_every_record_through_three_transform_replicas(
    nats_url: str, tmp_path: Path
) -> None:
    n = 2000
    sink_file = tmp_path / "sink.txt"
    src, mid, snk = three_nodes(sink_file, n)
    graph = edges("stream", uuid.uuid4().hex[:8])
    nc = await nats.connect(nats_url)
    try:
        ctx = ChannelContext(js=nc.jetstream())
        runners = []
        for node, replicas in ((snk, 1), (mid, 3), (src, 1)):
            for i in range(replicas):
                inputs, outputs = await open_channels(ctx, node, graph)
                runners.append(NodeRunner(node, inputs, outputs, replica=str(i)))
        async with running(runners):
            got = await await_for(
                lambda: len(received(sink_file)) == n and received(sink_file), timeout=120
            )
    finally:
        await nc.close()
    assert set(got) == set(range(n))  # none lost
    duplicates = sum(got.values()) - n
    assert duplicates == 0  # nothing was redelivered: no replica failed, no ack-wait passed
    shares = [r.counters.acked for r in runners if r.node is mid]
    assert sum(shares) >= n and all(share > 0 for share in shares)  # replicas shared the work
    assert runners[-1].counters.records_out == n


def start_replica(
    tmp_path: Path, name: str, spec: dict[str, object]
) -> tuple[subprocess.Popen[bytes], Path]:
    status = tmp_path / f"{name}.status.json"
    path = tmp_path / f"{name}.spec.json"
    path.write_text(json.dumps({**spec, "status": str(status), "replica": name}))
    with (tmp_path / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lockstep.pipelines.replica", str(path)],
            start_new_session=True,
            stderr=log,
        )
    return proc, status


def status_of(path: Path) -> dict[str, object]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True


async def test_kill_9_of_a_transform_replica_hands_its_records_to_the_others(
    nats_url: str, tmp_path: Path
) -> None:
    n = 2000
    sink_file = tmp_path / "sink.txt"
    src, mid, snk = three_nodes(sink_file, n, delay="0.002")
    graph = edges("stream", uuid.uuid4().hex[:8], ack_wait_s=3)
    spec = {
        "node": {"name": mid.name, "argv": list(mid.argv), "kind": "transform", "outputs": ["out"]},
        "edges": [{**e.__dict__, "options": dict(e.options)} for e in graph],
        "nats_url": nats_url,
    }
    replicas = [start_replica(tmp_path, f"r{i}", spec) for i in range(3)]
    nc = await nats.connect(nats_url)
    try:
        ctx = ChannelContext(js=nc.jetstream())
        runners = []
        for node in (snk, src):
            inputs, outputs = await open_channels(ctx, node, graph)
            runners.append(NodeRunner(node, inputs, outputs))
        async with running(runners):
            await await_for(
                lambda: len(received(sink_file)) >= 400, timeout=120, what="first records"
            )
            victim, victim_status = replicas[0]
            before = await await_for(
                lambda: (
                    status_of(victim_status).get("records_in", 0) > 0  # type: ignore[operator]
                    and status_of(victim_status)
                ),
                what="the victim taking work",
            )
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            got = await await_for(
                lambda: len(received(sink_file)) == n and received(sink_file), timeout=120
            )
            # the killed replica's program died with it (its supervisor saw the runner go)
            program_pid = int(before["program_pid"])  # type: ignore[call-overload]
            await await_for(lambda: not alive(program_pid), timeout=10, what="program gone")
    finally:
        for proc, _ in replicas:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(timeout=30)
        await nc.close()
    assert set(got) == set(range(n))  # none lost
    duplicates = sum(got.values()) - n
    # at-least-once: only records the killed replica had taken and not acked come twice
    assert (
        duplicates
        <= int(status_of(victim_status).get("records_in", 0))
        - int(  # type: ignore[call-overload]
            status_of(victim_status).get("acked", 0)  # type: ignore[call-overload]
        )
        + 64
    )


async def test_local_channels_between_co_placed_nodes(tmp_path: Path) -> None:
    n = 500
    sink_file = tmp_path / "sink.txt"
    src, mid, snk = three_nodes(sink_file, n)
    graph = edges("local", "l", bound=16)
    ctx = ChannelContext(hub=LocalHub())
    runners = []
    for node in (snk, mid, src):
        inputs, outputs = await open_channels(ctx, node, graph)
        runners.append(NodeRunner(node, inputs, outputs))
    async with running(runners):
        got = await await_for(
            lambda: len(received(sink_file)) == n and received(sink_file), timeout=60
        )
    assert got == Counter(range(n))  # each exactly once, none lost


async def test_landing_takes_each_file_once_across_a_consumer_restart(tmp_path: Path) -> None:
    store = DirectoryBlobStore(tmp_path / "store")
    edge = Edge("land", "up", "out", "snk", "landing")
    publisher = LandingPublisher(store, edge, "0")
    files, per_file = 10, 30
    for f in range(files):
        for i in range(per_file):
            await publisher.publish(encode_data({"n": f * per_file + i}))
        await publisher.flush()
    sink_file = tmp_path / "sink.txt"
    snk = Node("snk", program("sink", str(sink_file)), NodeKind.SINK)

    first = LandingConsumer(store, edge, "0")
    slow = Node("snk", program("sink", str(sink_file), "0.005"), NodeKind.SINK)
    runner = NodeRunner(slow, [first], {}, max_in_flight=8)
    async with running([runner]):
        await await_for(lambda: len(received(sink_file)) >= 100, timeout=60)
    await first.close()
    assert len(received(sink_file)) < files * per_file  # stopped half-way

    # the same replica again, and a second replica: nothing taken twice
    consumers = [LandingConsumer(store, edge, "0"), LandingConsumer(store, edge, "1")]
    runners = [NodeRunner(snk, [c], {}, replica=str(i)) for i, c in enumerate(consumers)]
    async with running(runners):
        got = await await_for(
            lambda: len(received(sink_file)) == files * per_file and received(sink_file), timeout=60
        )
    assert got == Counter(range(files * per_file))  # every record of every file exactly once
    for seq in range(files):
        assert store.exists(f"landing/land/done/{seq:012d}.json")
        claim = json.loads(store.path(f"landing/land/claims/{seq:012d}.json").read_text())
        assert claim["owner"] in {"snk/0", "snk/1"}
    assert await consumers[0].backlog() == 0


async def test_a_program_that_exits_at_once_is_reported_not_restarted_in_a_loop() -> None:
    node = Node("bad", (sys.executable, "-c", "import sys; sys.exit(3)"), NodeKind.SINK)
    runner = NodeRunner(node, [], {})
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)
        await asyncio.sleep(0)

    policy = RestartPolicy(first_delay_s=0.5, max_quick_exits=4, healthy_after_s=30)
    exit_ = await keep_running(runner, policy, sleep=sleep)
    assert exit_.code == 3 and exit_.reason == "exited with code 3"
    assert runner.counters.state is ReplicaState.DEGRADED
    assert runner.counters.restarts == 3
    assert waits == [0.5, 1.0, 2.0]  # every restart waited, longer each time


async def test_malformed_and_hostile_output_is_counted_not_fatal() -> None:
    hub = LocalHub()
    edge = Edge("h", "hostile", "out", "next", "local")
    node = Node("hostile", program("hostile"), NodeKind.SOURCE, outputs=("out",))
    inputs, outputs = await open_channels(ChannelContext(hub=hub), node, [edge])
    runner = NodeRunner(node, inputs, outputs)
    exit_ = await runner.run_once()
    assert exit_.code == 0
    # not JSON, a list, an unknown output, an unknown ack id, a 2 MB line, control characters
    assert runner.counters.malformed == 6
    assert runner.counters.records_out == 3
    assert hub.queue("h").items.qsize() == 3
    log = "\n".join(runner.counters.log)
    assert "\\x1b]0;owned\\x07 escape" in log and "\x1b" not in log and "\x9b" not in log
    assert "(a log line longer than 64 KiB, not kept)" in log
    assert "emit to unknown output 'nowhere'" in log


async def test_a_full_stream_slows_the_publisher_and_loses_nothing(
    nats_url: str, tmp_path: Path
) -> None:
    n = 600
    sink_file = tmp_path / "sink.txt"
    src = Node("src", program("source", str(n)), NodeKind.SOURCE, outputs=("out",))
    snk = Node("snk", program("transform", "0.002"), NodeKind.TRANSFORM, outputs=("out",))
    keep = Node("keep", program("sink", str(sink_file)), NodeKind.SINK)
    tag = uuid.uuid4().hex[:8]
    graph = [
        Edge(f"p{tag}", "src", "out", "snk", "stream", {"max_messages": 50}),
        Edge(f"q{tag}", "snk", "out", "keep", "local"),
    ]
    nc = await nats.connect(nats_url)
    try:
        ctx = ChannelContext(js=nc.jetstream(), hub=LocalHub())
        runners = []
        for node in (keep, snk, src):
            inputs, outputs = await open_channels(ctx, node, graph)
            runners.append(NodeRunner(node, inputs, outputs, max_in_flight=8))
        publisher = runners[2]._outputs["out"][0]
        async with running(runners):
            # while the slow node works, its backlog is visible as lag, bounded by the stream
            lags = []
            while len(received(sink_file)) < n // 2:
                lags.append(await runners[1].refresh_lag())
                await asyncio.sleep(0.05)
            assert max(lags) > 0 and max(lags) <= 50
            got = await await_for(
                lambda: len(received(sink_file)) == n and received(sink_file), timeout=120
            )
    finally:
        await nc.close()
    assert got == Counter(range(n))  # nothing dropped by the full stream
    assert publisher.full_retries > 0  # the source was held back: the stream refused when full


async def test_stop_ends_every_process_of_the_program(tmp_path: Path) -> None:
    pid_file = tmp_path / "daemon.pid"
    script = f"setsid sleep 300 & echo $! > {pid_file}; exec sleep 300"
    node = Node("d", ("/bin/sh", "-c", script), NodeKind.SINK)
    runner = NodeRunner(node, [], {})
    task = asyncio.create_task(runner.run_once())
    daemon = await await_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="pid")
    assert alive(int(daemon))
    await runner.stop(grace_s=1)
    exit_ = await task
    assert exit_.stopped and exit_.reason == "stopped"
    assert not alive(int(daemon))  # the daemon that left the program's group died with it
    assert runner.counters.state is ReplicaState.STOPPED


async def test_a_stop_while_the_program_starts_stops_it_too(tmp_path: Path) -> None:
    # a stop that comes before the program is even up (the replica told to stop as it starts)
    started = tmp_path / "started"
    node = Node("s", ("/bin/sh", "-c", f"touch {started}; exec sleep 300"), NodeKind.SINK)
    runner = NodeRunner(node, [], {})
    task = asyncio.create_task(runner.run_once())
    await asyncio.sleep(0)  # the start is in flight
    await runner.stop(grace_s=1)
    exit_ = await asyncio.wait_for(task, 60)  # used to run on: the stop had found nothing
    assert exit_.stopped and exit_.reason == "stopped"
    pid = runner.program_pid
    assert pid is not None and not alive(pid)


async def test_the_embedded_broker_keeps_stored_records_across_a_restart(tmp_path: Path) -> None:
    from lockstep.pipelines.channels.stream import (
        BrokerUnavailable,
        StreamConsumer,
        StreamPublisher,
    )
    from lockstep.pipelines.nats_server import NatsServer, broker_url

    home = tmp_path / "home"
    edge = Edge("keep", "a", "out", "b", "stream")
    url, server = await broker_url(None, home)
    assert server is not None
    nc = await nats.connect(url)
    publisher = await StreamPublisher.open(nc.jetstream(), edge)
    for n in range(5):
        await publisher.publish(encode_data({"n": n}))
    await publisher.flush()
    await nc.close()
    server.stop()

    again = NatsServer(home)
    assert await again.start() == url  # the same port: runners find it again
    nc = await nats.connect(url)
    try:
        consumer = await StreamConsumer.open(nc.jetstream(), edge)
        got = []
        while len(got) < 5:
            for delivery in await consumer.fetch(10, 5):
                got.append(json.loads(delivery.payload)["n"])
                await delivery.ack()
        assert sorted(got) == list(range(5))
        for _ in range(100):  # acks are sent without waiting: the broker counts them soon after
            if await consumer.backlog() == 0:
                break
            await asyncio.sleep(0.05)
        assert await consumer.backlog() == 0
    finally:
        await nc.close()
        again.stop()

    with pytest.raises(
        BrokerUnavailable,
        match=r"cannot reach the stream broker at nats://127\.0\.0\.1:1: .*; start it or fix",
    ):
        await broker_url("nats://127.0.0.1:1", home)


async def test_a_replica_process_runs_a_local_unit_with_its_secrets(tmp_path: Path) -> None:
    """Three nodes joined by local channels in one replica process; the sink's secret comes
    on stdin, reaches its program's environment, and is masked in what is kept of its log."""
    n, secret = 300, "s3cret-of-the-sink-77"
    sink_file = tmp_path / "sink.txt"
    src, mid, _ = three_nodes(sink_file, n)
    shows = (  # prints its secret to its log, then is the usual sink
        "import os, sys; print('token', os.environ['TOKEN'], file=sys.stderr, flush=True); "
        f"sys.argv = ['x', 'sink', {str(sink_file)!r}]; exec(open({PROGRAM!r}).read())"
    )
    sink = Node("snk", (sys.executable, "-c", shows), NodeKind.SINK, secrets=("TOKEN",))
    spec = {
        "node": src.to_json(),
        "also": [mid.to_json(), sink.to_json()],
        "edges": [{**e.__dict__, "options": dict(e.options)} for e in edges("local", "u")],
        "status": str(tmp_path / "status.json"),
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    with (tmp_path / "replica.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "lockstep.pipelines.replica", str(tmp_path / "spec.json")],
            stdin=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    try:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"TOKEN": secret}).encode())
        proc.stdin.close()
        # the sink's program reads TOKEN from its environment: without it, nothing arrives
        await await_for(lambda: len(received(sink_file)) == n, timeout=60, what="every record")
        status = await await_for(
            lambda: (
                (
                    (s := status_of(tmp_path / "status.json")).get("nodes", {}).get("snk", {})  # type: ignore[attr-defined]
                ).get("records_in")
                == n
                and s
            ),
            what="the unit's status",
        )
        # the first node's counters name the unit; each node's are there too
        nodes = status["nodes"]
        assert isinstance(nodes, dict) and sorted(nodes) == ["mid", "snk", "src"]
        assert nodes["mid"]["records_out"] == n and status["records_out"] == n
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert set(received(sink_file)) == set(range(n))  # none lost
    assert secret.encode() not in (tmp_path / "replica.log").read_bytes()
    assert secret not in (tmp_path / "spec.json").read_text()


async def test_a_programs_secrets_are_masked_in_its_kept_log() -> None:
    secret = "mask-me-please-123"
    shows = "import sys; print('the token is', sys.argv[1], file=sys.stderr)"
    node = Node("say", (sys.executable, "-c", shows, secret), NodeKind.SINK)
    runner = NodeRunner(node, [], {}, masker=Masker([secret]))
    await runner.run_once()
    assert "the token is ***" in runner.counters.log
    assert not [line for line in runner.counters.log if secret in line]


async def test_an_image_node_over_its_memory_limit_says_so_and_leaves_no_container(
    podman: Podman,
) -> None:
    runtime = ContainerRuntime(podman.socket)
    tag = uuid.uuid4().hex[:8]
    box = Box(runtime, {"test": tag})

    async def start(argv: Sequence[str], env: Mapping[str, str], with_stdin: bool) -> Program:
        return await ContainerProcess.start(
            box, podman.image, argv, env, with_stdin=with_stdin, memory_bytes=32 << 20
        )

    # `tail` keeps the current line in memory, and /dev/zero has no newline
    node = Node("hog", ("tail", "/dev/zero"), NodeKind.SINK, image=podman.image)
    exit_ = await NodeRunner(node, [], {}, start=start).run_once()
    assert exit_.code == 137
    assert exit_.reason.startswith("killed: out of memory (limit 32Mi")
    left = await runtime.call(
        "listing", lambda api: api.containers(all=True, filters={"label": f"lockstep.test={tag}"})
    )
    assert left == []
    runtime.close()
