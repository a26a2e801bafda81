"""What the data plane is told to run: one node (a program and its named outputs) and one edge
(a channel of some delivery class from a node's output to another node). Plain frozen data;
the control side maps its specs onto these."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lockstep.errors import InvalidRequest

#: names end up in broker subjects, stream names and blob keys: nothing that could mean more
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")


def check_name(what: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"{what} name {name[:120]!r} is invalid; use 1-100 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class NodeKind(enum.StrEnum):
    SOURCE = "source"  # no input records
    TRANSFORM = "transform"
    SINK = "sink"  # no outputs


@dataclass(frozen=True)
class Node:
    """One long-running program. ``argv`` is run as given (never through a shell); with an
    ``image``, in a container of it (``cpu``/``memory_bytes`` its limits). ``secrets`` are
    project secret names, given to the program as env vars of the same name."""

    name: str
    argv: tuple[str, ...]
    kind: NodeKind
    outputs: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    cpu: float | None = None
    memory_bytes: int | None = None
    secrets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name("node", self.name)
        for output in self.outputs:
            check_name("output", output)
        if not self.argv and self.image is None:
            raise InvalidRequest(f"node {self.name!r} has no command; give it `run`")
        if self.kind is NodeKind.SINK and self.outputs:
            raise InvalidRequest(f"node {self.name!r} is a sink and cannot have outputs")
        if self.kind is not NodeKind.SINK and not self.outputs:
            raise InvalidRequest(f"node {self.name!r} is a {self.kind} and needs an output")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "argv": list(self.argv),
            "kind": str(self.kind),
            "outputs": list(self.outputs),
            "env": dict(self.env),
            "image": self.image,
            "cpu": self.cpu,
            "memory_bytes": self.memory_bytes,
            "secrets": list(self.secrets),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Node:
        return cls(
            name=data["name"],
            argv=tuple(data["argv"]),
            kind=NodeKind(data["kind"]),
            outputs=tuple(data.get("outputs", ())),
            env=dict(data.get("env", {})),
            image=data.get("image"),
            cpu=data.get("cpu"),
            memory_bytes=data.get("memory_bytes"),
            secrets=tuple(data.get("secrets", ())),
        )


@dataclass(frozen=True)
class Edge:
    """Records emitted to ``source``'s output ``output`` travel to ``target`` on a channel of
    delivery class ``klass`` (``local``, ``stream`` or ``landing``). ``options`` are the
    class's own settings (e.g. ``max_messages``, ``ack_wait_s``)."""

    name: str
    source: str
    output: str
    target: str
    klass: str
    options: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name("edge", self.name)
        check_name("node", self.source)
        check_name("output", self.output)
        check_name("node", self.target)
