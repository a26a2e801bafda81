"""Container steps and placement in workflow.yaml: what is accepted, what is refused (with a
position), and how a step lands on a pool."""

from __future__ import annotations

import pytest

from lockstep.engine.plan import compile_plan
from lockstep.engine.types import Workspace
from lockstep.errors import SpecError
from lockstep.spec.load import load_spec
from lockstep.spec.quantities import parse_cpu, parse_memory

GOOD = """\
name: boxed
defaults: {runs_on: cpu-pool}
steps:
  sim:
    image: registry.example.org/team/sim:1.4@sha256:%s
    run: echo ${{ params.x }}
    resources: {cpu: 500m, memory: 64Mi}
    pull: never
    network: none
    user: "1000:1000"
    runs_on: hpc
  plain:
    run: [echo, hi]
params:
  type: object
  properties: {x: {type: string, default: a}}
""" % ("a" * 64)


def _plan(text: str, pool: str | None = None) -> dict[str, object]:
    loaded = load_spec(text, "w.yaml")
    plan = compile_plan(
        loaded, run_id="r", project="p", params={}, workspace=Workspace(), heartbeat_timeout_s=5,
        pool=pool,
    )  # fmt: skip
    return {s.id: s for s in plan.steps}


def test_a_container_step_compiles_to_sh_with_its_limits() -> None:
    steps = _plan(GOOD)
    sim = steps["sim"]
    assert sim.command[:2] == ["sh", "-c"]  # type: ignore[attr-defined]
    assert sim.container is not None
    assert (sim.container.cpu, sim.container.memory_bytes) == (0.5, 64 * 1024**2)
    assert (sim.container.pull, sim.container.network, sim.container.user) == (
        "never",
        "none",
        "1000:1000",
    )


@pytest.mark.parametrize(
    ("override", "sim", "plain"),
    [(None, "hpc", "cpu-pool"), ("gpu", "hpc", "gpu")],
)
def test_placement_precedence(override: str | None, sim: str, plain: str) -> None:
    steps = _plan(GOOD, override)
    assert (steps["sim"].pool, steps["plain"].pool) == (sim, plain)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("    image: 'busybox; rm -rf /'", "not a valid image reference"),
        ("    image: '$(id)'", "not a valid image reference"),
        ("    image: " + "a" * 300, "longer than 255"),
        ("    resources: {cpu: -1}", "out of range"),
        ("    resources: {cpu: 100000}", "out of range"),
        ("    resources: {memory: 1Pi}", "not a memory size"),
        ("    resources: {memory: 1}", "out of range"),
        ("    pull: sometimes", "pull"),
        ("    network: host", "network"),
        ("    user: 'root; id'", "user"),
        ("    runs_on: GPU!", "runs_on"),
    ],
)
def test_bad_container_settings_are_refused_with_a_position(line: str, says: str) -> None:
    text = f"name: bad\nsteps:\n  a:\n    run: 'true'\n{line}\n"
    with pytest.raises(SpecError) as info:
        load_spec(text, "w.yaml")
    message = str(info.value)
    assert "w.yaml:5:" in message and says in message, message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("64Mi", 64 * 1024**2), ("1Gi", 1024**3), ("512M", 512 * 10**6), (10**8, 10**8)],
)
def test_memory_sizes(value: object, expected: int) -> None:
    assert parse_memory(value) == expected


@pytest.mark.parametrize(("value", "expected"), [("500m", 0.5), (2, 2.0), ("1.5", 1.5)])
def test_cpu_amounts(value: object, expected: float) -> None:
    assert parse_cpu(value) == expected
