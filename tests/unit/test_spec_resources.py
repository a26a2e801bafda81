"""``resources:`` and ``writes:`` in workflow.yaml: what validation accepts, and each mistake
reported at its place before anything runs; the plan carries the writes."""

from __future__ import annotations

import textwrap

import pytest

from lockstep.engine.plan import compile_plan
from lockstep.engine.types import Workspace
from lockstep.errors import SpecError
from lockstep.spec.load import load_spec

GOOD = """\
name: deploy
resources: {cluster: prod-cluster, image: app-image@3}
steps:
  build:
    run: echo "tag=v2" >> "$LOCKSTEP_OUTPUTS"
    outputs: {type: object, properties: {tag: {type: string}}}
    writes:
      app-image: {tag: "${{ steps.build.outputs.tag }}", base: "${{ resources.image.data.tag }}"}
  deploy:
    needs: [build]
    run: ./deploy "${{ resources.cluster.data.endpoint }}" "${{ resources.image.version }}"
    writes:
      deployed: "${{ {'at': resources.cluster.name, 'by': run.id} }}"
"""


def messages(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(textwrap.dedent(text), "w.yaml")
    return [d.message for d in caught.value.diagnostics]


def test_reads_and_writes_load_and_reach_the_plan() -> None:
    loaded = load_spec(GOOD, "w.yaml")
    assert loaded.spec.resources == {"cluster": "prod-cluster", "image": "app-image@3"}
    plan = compile_plan(
        loaded,
        run_id="r-1",
        project="default",
        params={},
        workspace=Workspace(),
        heartbeat_timeout_s=30,
    )
    writes = {s.id: s.writes for s in plan.steps}
    assert writes["build"] == {
        "app-image": {
            "tag": "${{ steps.build.outputs.tag }}",
            "base": "${{ resources.image.data.tag }}",
        }
    }
    assert writes["deploy"] == {"deployed": "${{ {'at': resources.cluster.name, 'by': run.id} }}"}


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "resources: {x: Prod}\nsteps: {a: {run: 'true'}}",
            "resources.x: 'Prod' is not a resource reference; write NAME or NAME@N (a version "
            "number); names: lowercase letters, digits and '-', starting with a letter or digit",
        ),
        (
            "resources: {x: prod@latest}\nsteps: {a: {run: 'true'}}",
            "resources.x: 'prod@latest' is not a resource reference; write NAME or NAME@N",
        ),
        (
            "steps: {a: {run: 'echo ${{ resources.x.data }}'}}",
            "this workflow reads no resources; add 'resources: {ALIAS: NAME}'",
        ),
        (
            "resources: {cluster: c}\nsteps: {a: {run: 'echo ${{ resources.clustr.data }}'}}",
            "unknown resource 'clustr'; did you mean 'cluster'?",
        ),
        (
            "resources: {c: c}\nsteps: {a: {run: 'echo ${{ resources.c.endpoint }}'}}",
            "unknown field 'resources.c.endpoint'; use .data.<field>, .version or .name",
        ),
        (
            "steps: {a: {run: 'true', writes: {Bad_Name: {x: 1}}}}",
            "invalid resource name 'Bad_Name' in 'writes'; lowercase letters, digits and '-', "
            "starting with a letter or digit",
        ),
        (
            "steps: {a: {run: 'true', writes: {img: plain}}}",
            "writes.img of step 'a' must be a mapping (the resource's data) or a ${{ }} "
            "expression that gives one",
        ),
        (
            "steps: {a: {run: 'true', for_each: [1, 2], writes: {img: {x: 1}}}}",
            "step 'a' has for_each and writes: its items would each write a version; "
            "write from a step that needs it (e.g. with ${{ steps.ID.outputs[0] }})",
        ),
        (
            "steps: {a: {wait: 1m, writes: {img: {x: 1}}}}",
            "step 'a' is a 'wait' step: it writes no resource",
        ),
        (
            "steps: {a: {approval: {approvers: [ann]}, writes: {img: {x: 1}}}}",
            "step 'a' is an 'approval' step: it writes no resource",
        ),
        (
            "steps: {a: {run: 'true', writes: {img: {x: '${{ steps.a.status }}'}}}}",
            "writes of step 'a' can read its own outputs, not its status",
        ),
        (
            "steps:\n  a: {run: 'true'}\n  b: {run: 'true', writes: {img: {x: '${{ steps.a.outputs.t }}'}}}",
            "step 'b' uses steps.a but does not need it; add 'a' to needs",
        ),
    ],
)
def test_each_mistake_is_reported_before_anything_runs(snippet: str, expected: str) -> None:
    found = messages("name: w\n" + snippet + "\n")
    assert any(expected in m for m in found), found
