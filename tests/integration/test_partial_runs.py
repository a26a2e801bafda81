"""Running part of a graph: ``only``/``from`` run exactly the expected steps, ``reuse`` takes
the needed steps' results from an earlier run, and bad selections start nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.harness import Server

# a -> b -> c, side alone; c fails until the marker exists
SPEC = """
name: partial
steps:
  a:
    run: echo "n=$RANDOM$RANDOM" >> "$LOCKSTEP_OUTPUTS"
  b:
    needs: [a]
    run: echo "m=${{{{ steps.a.outputs.n }}}}-b" >> "$LOCKSTEP_OUTPUTS"
  c:
    needs: [b]
    run: test -e {marker} && echo "k=${{{{ steps.b.outputs.m }}}}-c" >> "$LOCKSTEP_OUTPUTS"
  side:
    run: echo "s=1" >> "$LOCKSTEP_OUTPUTS"
finally:
  cleanup:
    run: "true"
outputs:
  first: ${{{{ steps.a.outputs.n }}}}
  last: ${{{{ steps.c.outputs.k }}}}
  side: ${{{{ steps.side.outputs.s }}}}
"""


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "fixed"
    path.touch()
    return path


def _spec(marker: Path) -> str:
    return SPEC.format(marker=marker)


def _ran(run: dict[str, Any]) -> set[str]:
    """The steps that executed (an attempt) in ``run``."""
    return {sid for sid, st in run["steps"].items() if st["attempts"] > 0}


def _not_selected(run: dict[str, Any]) -> set[str]:
    return {
        sid
        for sid, st in run["steps"].items()
        if (st["status"], st["error"], st["attempts"]) == ("skipped", "not selected", 0)
    }


def test_only_runs_the_named_steps_and_what_they_need(server: Server, marker: Path) -> None:
    run = server.wait(server.submit(_spec(marker), only=["b"])["id"])
    assert run["status"] == "succeeded", run
    assert _ran(run) == {"a", "b", "cleanup"}
    assert _not_selected(run) == {"c", "side"}
    n = run["steps"]["a"]["outputs"]["n"]
    assert run["steps"]["b"]["outputs"] == {"m": f"{n}-b"}
    # the outputs that read a step outside the run are left out, the others are there
    assert run["outputs"] == {"first": n}
    assert run["selection"] == {"only": ["b"], "from": [], "reuse": None, "needed": ["a"]}


def test_from_with_reuse_takes_the_needed_steps_from_the_earlier_run(
    server: Server, marker: Path
) -> None:
    whole = server.run_and_wait(_spec(marker))
    assert whole["status"] == "succeeded", whole
    n = whole["steps"]["a"]["outputs"]["n"]
    part = server.wait(server.submit(_spec(marker), **{"from": ["b"], "reuse": whole["id"]})["id"])
    assert part["status"] == "succeeded", part
    assert _ran(part) == {"b", "c", "cleanup"}
    assert _not_selected(part) == {"side"}
    a = part["steps"]["a"]
    assert (a["status"], a["attempts"], a["reused_from"]) == ("succeeded", 0, whole["id"])
    assert a["outputs"] == whole["steps"]["a"]["outputs"]
    # the reused output flowed into the steps that ran again
    assert part["steps"]["c"]["outputs"] == {"k": f"{n}-b-c"}
    assert part["outputs"] == {"first": n, "last": f"{n}-b-c"}
    assert part["selection"] == {
        "only": [],
        "from": ["b"],
        "reuse": whole["id"],
        "needed": ["a"],
    }
    # an output the selected steps read that the reused run's step never wrote: refused
    before = _count(server)
    reads_y = _spec(marker).replace("steps.a.outputs.n }}-b", "steps.a.outputs.y }}-b")
    resp = server.http.post("/runs", json={"spec": reads_y, "from": ["b"], "reuse": whole["id"]})
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"] == (
        f"--reuse {whole['id']}: step 'b' reads steps.a.outputs.y, but step 'a' of that run "
        "succeeded without output 'y'; reuse a run that has it, or drop --reuse to run 'a' again"
    )
    assert _count(server) == before
    # a rerun runs the same part and reuses from the same run
    resp = server.http.post(f"/runs/{part['id']}/rerun", json={})
    assert resp.status_code == 201, resp.text
    again = server.wait(resp.json()["id"])
    assert again["status"] == "succeeded", again
    assert again["selection"] == part["selection"]
    assert _ran(again) == {"b", "c", "cleanup"} and _not_selected(again) == {"side"}
    assert again["steps"]["a"]["reused_from"] == whole["id"]


def test_from_without_reuse_runs_what_it_needs_too(server: Server, marker: Path) -> None:
    run = server.wait(server.submit(_spec(marker), **{"from": ["c"]})["id"])
    assert run["status"] == "succeeded", run
    assert _ran(run) == {"a", "b", "c", "cleanup"}
    assert _not_selected(run) == {"side"}
    assert run["selection"]["needed"] == ["a", "b"] and run["selection"]["reuse"] is None


def test_a_retry_of_a_partial_run_keeps_its_selection(server: Server, tmp_path: Path) -> None:
    marker = tmp_path / "later"
    failed = server.wait(server.submit(_spec(marker), only=["c"])["id"])
    assert failed["status"] == "failed", failed
    assert _not_selected(failed) == {"side"}
    marker.touch()
    resp = server.http.post(f"/runs/{failed['id']}/retry")
    assert resp.status_code == 201, resp.text
    retried = server.wait(resp.json()["id"])
    assert retried["status"] == "succeeded", retried
    assert retried["selection"] == failed["selection"]
    assert _ran(retried) == {"c", "cleanup"}
    assert _not_selected(retried) == {"side"}
    assert retried["steps"]["b"]["reused_from"] == failed["id"]


def _count(server: Server) -> int:
    return len(server.http.get("/runs", params={"limit": 500}).json()["items"])


def test_bad_selections_are_refused_and_start_nothing(server: Server, marker: Path) -> None:
    spec = _spec(marker)
    # runs to reuse: one where 'a' failed, one where it was not selected, another workflow's
    broken = server.run_and_wait(spec.replace('echo "n=', "exit 3; echo "))
    assert broken["steps"]["a"]["status"] == "failed"
    only_side = server.run_and_wait(spec, only=["side"])
    assert _not_selected(only_side) == {"a", "b", "c"}
    other = server.run_and_wait("name: other\nsteps:\n  a:\n    run: 'true'\n")
    assert server.api.post("/projects", json={"name": "partial-else"}).status_code in (201, 409)
    elsewhere = server.api.post(
        "/projects/partial-else/runs", json={"spec": spec, "only": ["side"]}
    )
    assert elsewhere.status_code == 201, elsewhere.text
    before = _count(server)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"only": ["bb"]}, 400, "--only: workflow 'partial' has no step 'bb'; did you mean 'b'?"),
        ({"from": ["cleanup"]}, 400, "step 'cleanup' in --from is a finally step"),
        ({"only": ["a"], "from": ["b"]}, 400, "give --only or --from, not both"),
        ({"reuse": broken["id"]}, 400, "'reuse' goes with 'only' or 'from'"),
        (
            {"from": ["b"], "reuse": broken["id"]},
            400,
            f"--reuse {broken['id']}: the selection needs steps that did not succeed in that "
            "run: a (failed)",
        ),
        ({"from": ["c"], "reuse": only_side["id"]}, 400, "a (not selected), b (not selected)"),
        (
            {"from": ["b"], "reuse": other["id"]},
            400,
            f"--reuse {other['id']}: that is a run of workflow 'other', not 'partial'",
        ),
        ({"from": ["b"], "reuse": elsewhere.json()["id"]}, 404, "not found in project 'default'"),
    ]
    for extra, status, message in cases:
        resp = server.http.post("/runs", json={"spec": spec, **extra})
        assert resp.status_code == status, (extra, resp.text)
        detail = resp.json()["detail"]
        assert message in detail and "\n" not in detail, (extra, detail)
    assert _count(server) == before


DEFINED = """\
name: {name}
steps:
  a:
    run: echo "n=$RANDOM$RANDOM" >> "$LOCKSTEP_OUTPUTS"
  b:
    needs: [a]
    run: echo "m=v{n}-${{{{ steps.a.outputs.n }}}}" >> "$LOCKSTEP_OUTPUTS"
"""


def _publish(server: Server, name: str, n: int) -> None:
    text = DEFINED.format(name=name, n=n)
    draft = server.http.put(
        f"/definitions/{name}/draft", content=text, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    resp = server.http.post(f"/definitions/{name}/publish", json={"message": f"v{n}"})
    assert resp.status_code == 201, resp.text


def _run_selector(server: Server, selector: str, expect: int = 201, **extra: Any) -> Any:
    resp = server.http.post("/runs", json={"selector": selector, **extra})
    assert resp.status_code == expect, resp.text
    return server.wait(resp.json()["id"]) if expect == 201 else resp.json()


def test_a_version_runs_from_a_step_on_an_earlier_versions_results(server: Server) -> None:
    for name in ("part-def", "part-other"):
        assert server.http.post("/definitions", json={"name": name}).status_code == 201
        _publish(server, name, 1)
    first = _run_selector(server, "part-def@1")
    assert first["status"] == "succeeded", first
    # b is fixed in version 2: run it alone on version 1's a
    _publish(server, "part-def", 2)
    part = _run_selector(server, "part-def@2", **{"from": ["b"], "reuse": first["id"]})
    assert part["status"] == "succeeded", part
    assert (part["version"], _ran(part)) == (2, {"b"})
    assert part["steps"]["a"]["reused_from"] == first["id"]
    assert part["steps"]["b"]["outputs"] == {"m": f"v2-{first['steps']['a']['outputs']['n']}"}
    # a run of another definition is not reused, even with the same steps
    other = _run_selector(server, "part-other@1")
    refused = _run_selector(
        server, "part-def@2", expect=400, **{"from": ["b"], "reuse": other["id"]}
    )
    assert refused["detail"] == (
        f"--reuse {other['id']}: that is a run of definition 'part-other', not of definition "
        "'part-def'; reuse a run of the same definition"
    )


def test_a_partial_run_asks_only_for_the_secrets_of_the_steps_it_runs(server: Server) -> None:
    spec = """name: partial-secrets
steps:
  build:
    run: echo built
  deploy:
    needs: [build]
    env:
      TOKEN: ${{ secrets.PARTIAL_DEPLOY_TOKEN }}
    run: echo deploying
"""
    whole = server.http.post("/runs", json={"spec": spec})
    assert whole.status_code == 400
    assert "missing secrets in project 'default': PARTIAL_DEPLOY_TOKEN" in whole.json()["detail"]
    run = server.wait(server.submit(spec, only=["build"])["id"])
    assert run["status"] == "succeeded", run
    assert _ran(run) == {"build"} and _not_selected(run) == {"deploy"}
    refused = server.http.post("/runs", json={"spec": spec, "from": ["deploy"]})
    assert refused.status_code == 400 and "PARTIAL_DEPLOY_TOKEN" in refused.json()["detail"]
