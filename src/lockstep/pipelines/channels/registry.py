"""Delivery classes by name, and the channels of one node opened through them: the one place
a class name is looked up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from nats.js import JetStreamContext

from lockstep.errors import ConfigError, InvalidRequest
from lockstep.pipelines.channels.base import Consumer, Publisher
from lockstep.pipelines.channels.local import DEFAULT_BOUND, LocalConsumer, LocalHub, LocalPublisher
from lockstep.pipelines.channels.stream import StreamConsumer, StreamPublisher
from lockstep.pipelines.model import Edge, Node
from lockstep.storage.blobs import BlobStore

T = TypeVar("T")


@dataclass(frozen=True)
class ChannelContext:
    """What the classes need in this process: the local queues, the broker, the store."""

    replica: str = "0"
    hub: LocalHub | None = None
    js: JetStreamContext | None = None
    store: BlobStore | None = None


def _need(value: T | None, edge: Edge, what: str) -> T:
    if value is None:
        raise ConfigError(
            f"edge {edge.name} is of class {edge.klass} but this worker has no {what}"
        )
    return value


async def _local_publisher(ctx: ChannelContext, edge: Edge) -> Publisher:
    hub = _need(ctx.hub, edge, "local channel hub")
    return LocalPublisher(hub.queue(edge.name, int(edge.options.get("bound", DEFAULT_BOUND))))


async def _local_consumer(ctx: ChannelContext, edge: Edge) -> Consumer:
    hub = _need(ctx.hub, edge, "local channel hub")
    return LocalConsumer(hub.queue(edge.name, int(edge.options.get("bound", DEFAULT_BOUND))))


async def _stream_publisher(ctx: ChannelContext, edge: Edge) -> Publisher:
    return await StreamPublisher.open(_need(ctx.js, edge, "stream broker"), edge)


async def _stream_consumer(ctx: ChannelContext, edge: Edge) -> Consumer:
    return await StreamConsumer.open(_need(ctx.js, edge, "stream broker"), edge)


async def _landing_publisher(ctx: ChannelContext, edge: Edge) -> Publisher:
    from lockstep.pipelines.channels.landing import LandingPublisher

    return LandingPublisher(_need(ctx.store, edge, "artifact store"), edge, ctx.replica)


async def _landing_consumer(ctx: ChannelContext, edge: Edge) -> Consumer:
    from lockstep.pipelines.channels.landing import LandingConsumer

    return LandingConsumer(_need(ctx.store, edge, "artifact store"), edge, ctx.replica)


#: class name → (open a publisher, open a consumer)
CLASSES: Mapping[
    str,
    tuple[
        Callable[[ChannelContext, Edge], Awaitable[Publisher]],
        Callable[[ChannelContext, Edge], Awaitable[Consumer]],
    ],
] = {
    "local": (_local_publisher, _local_consumer),
    "stream": (_stream_publisher, _stream_consumer),
    "landing": (_landing_publisher, _landing_consumer),
}


def _opener(
    edge: Edge,
) -> tuple[
    Callable[[ChannelContext, Edge], Awaitable[Publisher]],
    Callable[[ChannelContext, Edge], Awaitable[Consumer]],
]:
    try:
        return CLASSES[edge.klass]
    except KeyError:
        raise InvalidRequest(
            f"edge {edge.name} has unknown delivery class {edge.klass[:50]!r}; "
            f"use one of {', '.join(sorted(CLASSES))}"
        ) from None


async def open_channels(
    ctx: ChannelContext, node: Node, edges: Sequence[Edge]
) -> tuple[list[Consumer], dict[str, list[Publisher]]]:
    """The consumers of ``node``'s input edges and its publishers by output."""
    inputs = [await _opener(e)[1](ctx, e) for e in edges if e.target == node.name]
    outputs: dict[str, list[Publisher]] = {name: [] for name in node.outputs}
    for edge in edges:
        if edge.source == node.name:
            if edge.output not in outputs:
                raise InvalidRequest(
                    f"edge {edge.name} leaves output {edge.output!r}, which node "
                    f"{node.name} does not declare"
                )
            outputs[edge.output].append(await _opener(edge)[0](ctx, edge))
    return inputs, outputs
