"""Step caching: a cacheable step whose inputs are unchanged reuses an earlier success (its
outputs and artifacts), shown as cached with the source attempt; any change, --no-cache, an
expired ttl or another project means it runs."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness import Server, wait_for

SPEC = """\
name: cached-{tag}
params:
  type: object
  properties:
    n: {{type: integer, default: 1}}
    version: {{type: string, default: v1}}
steps:
  heavy:
    cache: {cache}
    run: |
      echo x >> {counter}
      echo "double=${{{{ params.n * 2 }}}}" >> "$LOCKSTEP_OUTPUTS"
      echo "made $(cat {counter} | wc -l)" > made.txt
    artifacts: {{made: made.txt}}
  light:
    needs: [heavy]
    inputs: {{artifacts: [heavy.made]}}
    run: |
      echo "got=${{{{ steps.heavy.outputs.double }}}}" >> "$LOCKSTEP_OUTPUTS"
      echo "made=$(cat made.txt)" >> "$LOCKSTEP_OUTPUTS"
"""


def _spec(tmp_path: Path, tag: str, cache: str = "true") -> tuple[str, Path]:
    counter = tmp_path / f"{tag}.count"
    return SPEC.format(tag=tag, cache=cache, counter=counter), counter


def _runs(counter: Path) -> int:
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def test_an_unchanged_step_is_taken_from_the_cache(server: Server, tmp_path: Path) -> None:
    spec, counter = _spec(tmp_path, "hit")
    first = server.run_and_wait(spec)
    second = server.run_and_wait(spec)
    assert (first["status"], second["status"]) == ("succeeded", "succeeded")
    assert _runs(counter) == 1
    heavy = second["steps"]["heavy"]
    assert heavy["cached_from"] == f"{first['id']}/heavy/1" and heavy["attempts"] == 0
    assert heavy["outputs"] == {"double": "2"}
    # downstream ran, with the cached outputs and the cached step's artifact
    assert second["steps"]["light"]["outputs"] == {"got": "2", "made": "made 1"}
    assert second["steps"]["light"]["cached_from"] is None


def test_a_changed_input_no_cache_or_expired_ttl_runs_again(server: Server, tmp_path: Path) -> None:
    spec, counter = _spec(tmp_path, "miss")
    server.run_and_wait(spec)
    changed = server.run_and_wait(spec, {"n": 5})
    assert changed["steps"]["heavy"]["outputs"] == {"double": "10"}
    assert changed["steps"]["heavy"]["cached_from"] is None
    forced = server.submit(spec, no_cache=True)
    assert server.wait(forced["id"])["steps"]["heavy"]["cached_from"] is None
    assert _runs(counter) == 3
    expiring, counter2 = _spec(tmp_path, "ttl", cache="{ttl: 0s}")
    server.run_and_wait(expiring)
    server.run_and_wait(expiring)
    assert _runs(counter2) == 2


def test_an_extra_key_separates_results(server: Server, tmp_path: Path) -> None:
    spec, counter = _spec(tmp_path, "key", cache='{key: "${{ params.version }}"}')
    server.run_and_wait(spec, {"version": "v1"})
    server.run_and_wait(spec, {"version": "v1"})
    server.run_and_wait(spec, {"version": "v2"})
    assert _runs(counter) == 2


def test_another_project_never_gets_this_projects_cache(server: Server, tmp_path: Path) -> None:
    spec, counter = _spec(tmp_path, "iso")
    server.run_and_wait(spec)
    assert server.api.post("/projects", json={"name": "cache-other"}).status_code in (201, 409)
    other = httpx.Client(
        base_url=f"{server.url}/api/v1/projects/cache-other",
        headers={"authorization": f"Bearer {server.token}"},
        timeout=30,
    )
    try:
        run_id = other.post("/runs", json={"spec": spec}).json()["id"]
        wait_for(
            lambda: other.get(f"/runs/{run_id}").json()["status"] in ("succeeded", "failed"),
            timeout=60,
        )
        run = other.get(f"/runs/{run_id}").json()
    finally:
        other.close()
    assert run["steps"]["heavy"]["cached_from"] is None
    assert _runs(counter) == 2
