"""Runs one replica of a node: its program, the consumers of its input edges and the
publishers of its outputs, joined by the node process contract (``contract``).

Records are fed to the program's stdin as they arrive, with at most ``max_in_flight`` not yet
acked. What the program prints is handled batch by batch, in order: emitted records are
published, then the outputs are flushed, and only then are the acks of that batch passed
upstream, so a record is never acked before what the program made of it is stored
(at-least-once across a crash of the program, the runner or the worker). Records the program
never acked go back to their channel when it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lockstep.errors import LockstepError
from lockstep.pipelines.channels.base import Consumer, Delivery, Publisher
from lockstep.pipelines.contract import (
    MAX_LINE_BYTES,
    Ack,
    Emit,
    Malformed,
    clean_payload,
    encode_input,
    parse_output,
    read_lines,
)
from lockstep.pipelines.model import Node
from lockstep.pipelines.process import DRAIN_S, Exit, Program, Starter, start_process
from lockstep.secrets.masking import Masker
from lockstep.spec.hints import visible

logger = logging.getLogger(__name__)

#: stderr lines longer than this are not kept
LOG_LINE_BYTES = 64 * 1024
#: how many of the node's last log lines (and malformed-line notes) the caller can read
LOG_KEPT = 100
_FETCH_BATCH = 256
_NOTED_PER_RUN = 20  # malformed lines logged one by one per program run; the rest only counted


class ReplicaState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"  # the program exited; waiting to start it again
    DEGRADED = "degraded"  # it keeps exiting soon after it starts: no more restarts
    STOPPED = "stopped"


@dataclass
class Counters:
    records_in: int = 0  # records handed to the program
    records_out: int = 0  # records it emitted that were published
    acked: int = 0  # input records acked upstream
    malformed: int = 0  # stdout lines that broke the contract (counted, not fatal)
    errors: int = 0  # malformed lines plus records a channel held that were not JSON
    restarts: int = 0
    lag: int = 0  # records waiting on the input channels, at the last refresh
    last_exit: Exit | None = None
    state: ReplicaState = ReplicaState.STARTING
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_KEPT))


class NodeRunner:
    def __init__(
        self,
        node: Node,
        inputs: Sequence[Consumer],
        outputs: Mapping[str, Sequence[Publisher]],
        *,
        replica: str = "0",
        max_in_flight: int = 512,
        fetch_wait_s: float = 0.5,
        max_line_bytes: int = MAX_LINE_BYTES,
        start: Starter = start_process,
        masker: Masker | None = None,
    ) -> None:
        self.node = node
        self.replica = replica
        self.counters = Counters()
        self._inputs = list(inputs)
        self._outputs = {name: list(pubs) for name, pubs in outputs.items()}
        self._max_in_flight = max_in_flight
        self._fetch_wait_s = fetch_wait_s
        self._max_line_bytes = max_line_bytes
        self._pending: dict[str, Delivery] = {}
        self._room = asyncio.Event()
        self._drained = asyncio.Event()  # set when nothing handed to the program is unacked
        self._finished = asyncio.Event()  # set when a run of the program is fully handled
        self._given_up = asyncio.Event()  # a stop's grace ran out: drop the rest of stdout
        self._seq = 0
        self._noted = 0
        self._proc: Program | None = None
        #: set while a start of the program is in flight: a stop waits for it, then stops it
        self._starting: asyncio.Event | None = None
        self._start = start
        #: the program's secrets, never kept nor logged as they are
        self._masker = masker or Masker(())
        self.stopping = False

    @property
    def program_pid(self) -> int | None:
        """The pid of the supervisor the program runs under (gone once nothing of it is)."""
        return self._proc.pid if self._proc is not None else None

    async def run_once(self) -> Exit:
        """Start the program and run it until it exits (or ``stop``); how it ended."""
        self._noted = 0
        self._starting = starting = asyncio.Event()
        try:
            proc = await self._start(self.node.argv, self.node.env, bool(self._inputs))
        except BaseException as err:
            starting.set()
            if not isinstance(err, LockstepError):
                raise
            # e.g. an image that is not there: an exit, restarted
            exit_ = Exit(127, self._masker.mask(str(err)), 0.0, False)
            self.counters.last_exit = exit_
            self._note(f"program {exit_.reason}")
            return exit_
        self._proc, self._noted = proc, 0
        starting.set()
        self._finished.clear()
        self.counters.state = ReplicaState.RUNNING
        feeders = [asyncio.create_task(self._feed(c, proc)) for c in self._inputs]
        reader = asyncio.create_task(self._read_stdout(proc))
        logs = asyncio.create_task(self._read_stderr(proc))
        ended = asyncio.create_task(proc.wait())
        failure = ""
        try:
            watched: set[asyncio.Task[Any]] = {ended, reader, *feeders}
            while not ended.done():
                done, watched = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not ended and not failure and (exc := task.exception()):
                        # a channel failed: the program is stopped, its exit says why
                        side = "output" if task is reader else "input"
                        text = " ".join(str(exc).split())[:300] or type(exc).__name__
                        failure = f"{side} failed: {text}"
                        await proc.stop(grace_s=DRAIN_S)
            exit_ = await ended
            # The supervisor exits once no process of the program is left, so the pipes are
            # closed now: what is left in them is handled to the end (it may wait for a full
            # channel), unless a stop runs out of patience first.
            giving_up = asyncio.create_task(self._given_up.wait())
            await asyncio.wait([reader, giving_up], return_when=asyncio.FIRST_COMPLETED)
            giving_up.cancel()
            await asyncio.wait([logs], timeout=DRAIN_S)
        finally:
            for task in (*feeders, reader, logs, ended):
                task.cancel()
            for task in (*feeders, reader, logs):
                with contextlib.suppress(BaseException):
                    await task
            if not ended.done():
                await proc.stop(grace_s=DRAIN_S)
            await self._return_unacked()
            self._finished.set()
        if failure:
            exit_ = Exit(exit_.code, failure, exit_.duration_s, False)
        self.counters.last_exit = exit_
        if exit_.stopped:
            self.counters.state = ReplicaState.STOPPED
        self._note(f"program {exit_.reason}")
        return exit_

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop feeding, give what is in flight ``grace_s`` to be acked, then end every
        process of the program (SIGTERM, then SIGKILL)."""
        self.stopping = True
        if self._proc is None and self._starting is not None:
            await self._starting.wait()  # a stop during the start: the program stops too
        proc = self._proc
        if proc is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        if self._pending and proc.stdin is not None:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), grace_s)
        if proc.stdin is not None:
            proc.stdin.close()  # end of input: a well-behaved program finishes and exits
        await proc.stop(grace_s=max(0.0, deadline - loop.time()))
        with contextlib.suppress(TimeoutError):  # output still being published
            await asyncio.wait_for(self._finished.wait(), max(0.0, deadline - loop.time()))
        self._given_up.set()

    async def close_channels(self) -> None:
        for consumer in self._inputs:
            with contextlib.suppress(Exception):
                await consumer.close()
        for publisher in (p for pubs in self._outputs.values() for p in pubs):
            with contextlib.suppress(Exception):
                await publisher.close()

    async def refresh_lag(self) -> int:
        lag = 0
        for consumer in self._inputs:
            lag += await consumer.backlog()
        self.counters.lag = lag
        return lag

    async def _feed(self, consumer: Consumer, proc: Program) -> None:
        stdin = proc.stdin
        assert stdin is not None
        while not self.stopping:
            free = self._max_in_flight - len(self._pending)
            if free <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            batch = await consumer.fetch(min(free, _FETCH_BATCH), self._fetch_wait_s)
            lines = []
            for delivery in batch:
                payload = clean_payload(delivery.payload)
                if payload is None:
                    # not JSON: no program could be handed it; kept only in the log
                    self.counters.errors += 1
                    self._note("a record on an input channel is not JSON; dropped")
                    await delivery.ack()
                    continue
                self._seq += 1
                record_id = str(self._seq)
                self._pending[record_id] = delivery
                lines.append(encode_input(record_id, payload))
            if not lines:
                continue
            self.counters.records_in += len(lines)
            try:
                stdin.write(b"".join(lines))
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError):
                return  # the program is gone; its records go back when its exit is handled

    async def _read_stdout(self, proc: Program) -> None:
        """Publish what the program emits as it comes; its acks go to ``_commit``, which
        passes them upstream once the outputs hold everything emitted before them. Reading
        goes on meanwhile, so a broker's round trip is paid per commit, not per record."""
        commits: asyncio.Queue[list[str] | None] = asyncio.Queue()
        committer = asyncio.create_task(self._commit(commits))
        try:
            async for batch in read_lines(proc.stdout, self._max_line_bytes):
                if committer.done():
                    break  # it failed: its error is raised below
                commits.put_nowait(await self._handle(batch))
            commits.put_nowait(None)
            await committer
        finally:
            committer.cancel()

    async def _handle(self, batch: list[bytes | None]) -> list[str]:
        acks: list[str] = []
        for line in batch:
            if line is None:
                self._malformed(f"a line longer than {self._max_line_bytes} bytes")
                continue
            if not line.strip():
                continue
            message = parse_output(line)
            if isinstance(message, Emit):
                publishers = self._outputs.get(message.to)
                if publishers is None:
                    self._malformed(f"emit to unknown output {message.to[:100]!r}")
                    continue
                for publisher in publishers:
                    await publisher.publish(message.payload)
                self.counters.records_out += 1
            elif isinstance(message, Ack):
                acks.append(message.id)
            elif isinstance(message, Malformed):
                self._malformed(message.reason)
        return acks

    async def _commit(self, commits: asyncio.Queue[list[str] | None]) -> None:
        publishers = [p for pubs in self._outputs.values() for p in pubs]
        ended = False
        while not ended:
            acks: list[str] = []
            item = await commits.get()
            while True:  # every batch read meanwhile is committed together
                if item is None:
                    ended = True
                else:
                    acks.extend(item)
                if commits.empty():
                    break
                item = commits.get_nowait()
            for publisher in publishers:
                await publisher.flush()
            for record_id in acks:
                delivery = self._pending.pop(record_id, None)
                if delivery is None:
                    self._malformed(f"ack of unknown record id {record_id[:100]!r}")
                    continue
                await delivery.ack()
                self.counters.acked += 1
            if acks:
                self._room.set()
                if not self._pending:
                    self._drained.set()

    async def _read_stderr(self, proc: Program) -> None:
        async for batch in read_lines(proc.stderr, LOG_LINE_BYTES):
            for line in batch:
                text = (
                    "(a log line longer than 64 KiB, not kept)"
                    if line is None
                    else visible(self._masker.mask(line.decode("utf-8", "replace")))[:2000]
                )
                self.counters.log.append(text)
                logger.info(
                    "pipeline.node.log",
                    extra={"node": self.node.name, "replica": self.replica, "line": text},
                )

    async def _return_unacked(self) -> None:
        pending, self._pending = self._pending, {}
        for delivery in pending.values():
            with contextlib.suppress(Exception):  # unreachable channel: ack-wait hands it on
                await delivery.nak()
        self._room.set()
        self._drained.set()

    def _malformed(self, reason: str) -> None:
        self.counters.malformed += 1
        self.counters.errors += 1
        self._note(f"malformed output line: {reason}")

    def _note(self, text: str) -> None:
        self._noted += 1
        if self._noted > _NOTED_PER_RUN:
            return
        text = self._masker.mask(text)
        self.counters.log.append(f"[lockstep] {visible(text)}")
        logger.warning(
            "pipeline.node.note",
            extra={"node": self.node.name, "replica": self.replica, "note": text},
        )
