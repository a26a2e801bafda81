"""``stream``: NATS JetStream, one stream per edge.

- The stream keeps work-queue retention: a record leaves it when the consuming node acks it, so
  ``max_messages`` bounds the backlog (delivered-but-unacked records included). With the
  discard-new policy a full stream refuses a publish; the publisher retries with backoff, so
  the node upstream slows down instead of losing records.
- One durable pull consumer per consuming node (named after it): every replica of the node
  pulls from it, so replicas share the work; acks are explicit, and a record not acked within
  ``ack_wait_s`` (its replica died) is handed to another replica (at-least-once).
- Publishes are pipelined (up to 256 unconfirmed; ``flush`` waits for the replies) and carry
  a message id, so a retry after a lost reply is stored once.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Sequence

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from lockstep.errors import Unavailable
from lockstep.pipelines.model import Edge

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGES = 10_000
DEFAULT_ACK_WAIT_S = 30.0
#: how long a publish waits for the server's reply before it is retried
_PUBLISH_TIMEOUT_S = 5.0
#: records sent and not yet confirmed by the broker, at most
_WINDOW = 256
#: how long one pull waits for records
_PULL_S = 0.05
_RETRY_FIRST_S = 0.005
_RETRY_MAX_S = 0.5
#: a full stream answers 503 "maximum messages exceeded" (err_code 10077)
_FULL = 10077
_NAME_IN_USE = 10058


class BrokerUnavailable(Unavailable):
    """The stream broker refused or could not be reached."""


def subject(edge: Edge) -> str:
    return f"lockstep.pipe.{edge.name}"


def stream_name(edge: Edge) -> str:
    return f"LOCKSTEP_PIPE_{edge.name}"


async def ensure_stream(js: JetStreamContext, edge: Edge) -> None:
    """Create (or bring to this configuration) the edge's stream; both sides call it."""
    config = api.StreamConfig(
        name=stream_name(edge),
        subjects=[subject(edge)],
        retention=api.RetentionPolicy.WORK_QUEUE,
        max_msgs=int(edge.options.get("max_messages", DEFAULT_MAX_MESSAGES)),
        discard=api.DiscardPolicy.NEW,
        storage=api.StorageType.FILE,
        duplicate_window=120.0,
    )
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code != _NAME_IN_USE:
            raise BrokerUnavailable(f"cannot create the stream of edge {edge.name}: {exc}") from exc
        await js.update_stream(config)


class _StreamDelivery:
    def __init__(self, msg: Msg) -> None:
        self._msg = msg
        self.payload = msg.data

    async def ack(self) -> None:
        await self._msg.ack()

    async def nak(self) -> None:
        await self._msg.nak()


class StreamPublisher:
    @classmethod
    async def open(cls, js: JetStreamContext, edge: Edge) -> StreamPublisher:
        await ensure_stream(js, edge)
        return cls(js, edge)

    def __init__(self, js: JetStreamContext, edge: Edge) -> None:
        self._js = js
        self._edge = edge
        self._subject = subject(edge)
        self._prefix = secrets.token_hex(8)
        self._seq = 0
        self._unconfirmed: list[tuple[bytes, dict[str, str], asyncio.Task[api.PubAck]]] = []
        #: publishes refused because the stream was full (the back-pressure felt)
        self.full_retries = 0

    async def publish(self, payload: bytes) -> None:
        """Sent at once without waiting for the broker's reply; ``flush`` collects the
        replies (and retries what was refused), so records stream instead of one round trip
        each."""
        self._seq += 1
        headers = {"Nats-Msg-Id": f"{self._prefix}-{self._seq}"}
        # a request of its own per record, not publish_async: nats-py loses the broker's
        # refusal of an async publish (its reply handler raises instead of failing the future)
        reply = asyncio.create_task(
            self._js.publish(self._subject, payload, timeout=_PUBLISH_TIMEOUT_S, headers=headers)
        )
        self._unconfirmed.append((payload, headers, reply))
        if len(self._unconfirmed) >= _WINDOW:
            await self.flush()

    async def flush(self) -> None:
        """Returns once every record published so far is stored in the stream."""
        unconfirmed, self._unconfirmed = self._unconfirmed, []
        try:
            for payload, headers, reply in unconfirmed:
                try:
                    await reply
                    continue
                except nats.js.errors.APIError as exc:
                    self._check_refusal(exc)
                except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError):
                    pass  # no reply: the same message id again is stored at most once
                await self._publish_until_stored(payload, headers)
        finally:
            for _, _, reply in unconfirmed:
                reply.cancel()

    def _check_refusal(self, exc: nats.js.errors.APIError) -> None:
        if exc.err_code != _FULL and exc.code != 503:
            raise BrokerUnavailable(
                f"the broker refused a record on edge {self._edge.name}: {exc}"
            ) from exc
        self.full_retries += 1

    async def _publish_until_stored(self, payload: bytes, headers: dict[str, str]) -> None:
        delay = _RETRY_FIRST_S
        while True:
            try:
                await self._js.publish(
                    self._subject, payload, timeout=_PUBLISH_TIMEOUT_S, headers=headers
                )
                return
            except nats.js.errors.APIError as exc:
                self._check_refusal(exc)
            except (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError):
                pass  # the server is busy or restarting: the same message id is retried
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def close(self) -> None:
        await self.flush()


class StreamConsumer:
    def __init__(self, sub: JetStreamContext.PullSubscription) -> None:
        self._sub = sub

    @classmethod
    async def open(cls, js: JetStreamContext, edge: Edge) -> StreamConsumer:
        await ensure_stream(js, edge)
        config = api.ConsumerConfig(
            durable_name=edge.target,
            filter_subject=subject(edge),
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=float(edge.options.get("ack_wait_s", DEFAULT_ACK_WAIT_S)),
            max_ack_pending=-1,  # the stream's bound and each runner's in-flight cap suffice
        )
        # creates the consumer, or brings an existing one to this ack-wait (a redeploy that
        # changed it); the same config from several replicas at once is idempotent
        try:
            await js.add_consumer(stream_name(edge), config)
        except nats.js.errors.APIError as exc:
            raise BrokerUnavailable(f"cannot open the consumer of edge {edge.name}: {exc}") from exc
        sub = await js.pull_subscribe(
            subject(edge), durable=edge.target, stream=stream_name(edge), config=config
        )
        return cls(sub)

    async def fetch(self, max_records: int, timeout_s: float) -> Sequence[_StreamDelivery]:
        # A pull for N records that finds fewer waits for more until its own expiry: short
        # pulls, so a trickle is handed on within _PULL_S, not after the caller's timeout.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                msgs = await self._sub.fetch(
                    max_records, timeout=max(0.001, min(_PULL_S, deadline - loop.time()))
                )
                break
            except TimeoutError:  # nats-py raises its own or asyncio's, both TimeoutError
                if loop.time() >= deadline:
                    return []
        return [_StreamDelivery(m) for m in msgs]

    async def backlog(self) -> int:
        info = await self._sub.consumer_info()
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def close(self) -> None:
        await self._sub.unsubscribe()


async def _quiet(exc: Exception) -> None:
    logger.debug("pipeline.broker.error", extra={"error": str(exc)})


async def connect_once(url: str, timeout_s: float = 5) -> Client:
    """One connection attempt, no reconnects (nats-py would retry a first connect forever)."""
    return await nats.connect(
        url,
        connect_timeout=timeout_s,
        allow_reconnect=False,
        # nats-py's first connect retries a server until it failed more than this many times
        # (0 would mean forever), reconnect_time_wait apart
        max_reconnect_attempts=1,
        reconnect_time_wait=0.05,
        error_cb=_quiet,
    )


async def connect(url: str) -> Client:
    """A connection to the broker at ``url`` that reconnects by itself, or one clear error
    when the broker cannot be reached now."""
    try:
        await (await connect_once(url)).close()
        return await nats.connect(
            url, connect_timeout=5, max_reconnect_attempts=-1, error_cb=_quiet
        )
    except (OSError, nats.errors.Error) as exc:
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise BrokerUnavailable(
            f"cannot reach the stream broker at {url}: {why}; start it or fix LOCKSTEP_NATS_URL"
        ) from exc
