"""A deployment's desired state as data: which version, placed where, with how many replicas.

Plain frozen values, no I/O: the deployment service stores them, the planner compares two of
them, the reconciler converges to one (``docs/deployments.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockstep.errors import InvalidRequest
from lockstep.spec.names import MAX_REPLICAS

if TYPE_CHECKING:  # the models load only where a spec is read: listings stay light
    from lockstep.spec.pipeline import PipelineSpec

#: the pool a placement group runs on when neither the deployment nor the spec names one
DEFAULT_POOL = "default"


@dataclass(frozen=True)
class Desired:
    """What a deployment should run. ``placement``/``replicas`` hold the deployment's own
    choices per placement group (the spec's defaults fill the rest); ``overrides`` are env
    values per node laid over the version's."""

    definition: str
    version: int
    selector: str
    digest: str
    placement: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, int] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "definition": self.definition,
            "version": self.version,
            "selector": self.selector,
            "digest": self.digest,
            "placement": dict(sorted(self.placement.items())),
            "replicas": dict(sorted(self.replicas.items())),
            "overrides": {k: dict(sorted(v.items())) for k, v in sorted(self.overrides.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Desired:
        return cls(
            definition=data["definition"],
            version=int(data["version"]),
            selector=data["selector"],
            digest=data["digest"],
            placement=dict(data.get("placement", {})),
            replicas={k: int(v) for k, v in data.get("replicas", {}).items()},
            overrides={k: dict(v) for k, v in data.get("overrides", {}).items()},
        )


@dataclass(frozen=True)
class Placed:
    """Where one node runs, all defaults applied."""

    group: str
    pool: str
    replicas: int


def placed(spec: PipelineSpec, desired: Desired) -> dict[str, Placed]:
    """Each node's pool and replicas: the deployment's choice for its placement group, else
    the spec's default, else pool ``default`` and one replica."""
    out: dict[str, Placed] = {}
    for nid in spec.nodes:
        group = spec.group_of(nid)
        pool = desired.placement.get(group) or spec.placement.get(group) or DEFAULT_POOL
        replicas = desired.replicas.get(group, spec.replicas.get(group, 1))
        out[nid] = Placed(group, pool, replicas)
    return out


def node_env(spec: PipelineSpec, desired: Desired, node: str) -> dict[str, str]:
    """A node's environment as it runs: the version's values, the deployment's overrides on
    top (a deploy never edits the version)."""
    env = {k: str(v) for k, v in spec.nodes[node].env.items()}
    return {**env, **desired.overrides.get(node, {})}


def check_replicas(values: dict[str, Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, raw in values.items():
        try:
            count = int(raw)
        except (TypeError, ValueError):
            raise InvalidRequest(
                f"replicas of '{name}' must be a whole number, got {raw!r}"
            ) from None
        if not 0 <= count <= MAX_REPLICAS:
            raise InvalidRequest(
                f"replicas of '{name}' must be between 0 and {MAX_REPLICAS}, got {count}"
            )
        out[name] = count
    return out


def check_groups(spec: PipelineSpec, names: list[str], what: str) -> None:
    """Every ``--placement``/``--replicas`` name is a placement group of the version."""
    groups = spec.groups()
    for name in names:
        if name in groups:
            continue
        node = spec.nodes.get(name)
        if node is not None and node.group:
            raise InvalidRequest(
                f"node '{name}' is placed and scaled with its group '{node.group}'; "
                f"use --{what} {node.group}=…"
            )
        raise InvalidRequest(
            f"--{what} names '{name}', which is no node or group of {spec.name}; "
            f"placement groups: {', '.join(groups)}"
        )


def carry_over(
    previous: Desired | None,
    spec: PipelineSpec,
    placement: dict[str, str],
    replicas: dict[str, int],
) -> tuple[dict[str, str], dict[str, int], list[str]]:
    """The deployed choices with the new ones on top; a deployed choice naming a group the
    new version lacks is dropped, and said (the returned notes)."""
    groups = spec.groups()
    notes: list[str] = []
    merged_p = dict(previous.placement) if previous else {}
    merged_r = dict(previous.replicas) if previous else {}
    for key, merged in (("placement", merged_p), ("replicas", merged_r)):
        for name in sorted(merged):
            if name not in groups:
                notes.append(f"{key} of '{name}' dropped: version has no node or group '{name}'")
                del merged[name]
    return {**merged_p, **placement}, {**merged_r, **replicas}, notes
