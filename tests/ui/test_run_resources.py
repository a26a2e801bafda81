"""A run's page says which resource versions the run read and which its steps wrote, linked to
nothing it could forge (names and versions as text)."""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.harness import Server

SPEC = """\
name: ui-res-build
resources: {base: ui-res-base@1}
steps:
  build:
    run: echo "tag=${{ resources.base.data.tag }}-built" >> "$LOCKSTEP_OUTPUTS"
    writes:
      ui-res-image: {tag: "${{ steps.build.outputs.tag }}"}
"""


def test_the_run_page_shows_the_versions_a_run_read_and_wrote(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    for name, data in (
        ("ui-res-base", {"tag": "<img src=x onerror=alert(1)>"}),
        ("ui-res-image", {"tag": "none"}),
    ):
        made = server.http.post("/resources", json={"name": name, "data": data})
        assert made.status_code == 201, made.text
    run = server.run_and_wait(SPEC)
    assert run["status"] == "succeeded", run
    page = open_ui(server.token)
    page.goto(f"/#/p/default/runs/{run['id']}")
    used = page.locator("#resources")
    expect(used).to_contain_text("read ui-res-base@1 as base")
    expect(used).to_contain_text("wrote ui-res-image@2 (step build)")
    assert page.dialogs == []  # type: ignore[attr-defined]
