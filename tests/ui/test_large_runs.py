"""What keeps a big run's page fast (bench/ui_first_paint.py measures it): a fan-out's list of
outputs shows its first entries with a button for the rest, and the page asks for every
script module at once instead of one import level at a time."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.harness import Server

WIDE = f"""\
name: ui-wide
steps:
  each:
    for_each: {list(range(30))}
    uses: noop
    with: {{square: "${{{{ item * item }}}}"}}
"""


def test_a_fan_outs_long_outputs_list_shows_its_first_entries_and_the_rest_on_request(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    run = server.run_and_wait(WIDE)
    outputs = run["steps"]["each"]["outputs"]
    assert run["status"] == "succeeded" and len(outputs) == 30, run
    page = open_ui(server.token)
    page.goto(f"/#/p/default/runs/{run['id']}")
    cell = page.locator("#steps tr[data-step='each'] .step-outputs")
    more = cell.get_by_role("button", name="show all 30 entries (10 more)")
    expect(more).to_be_visible()
    assert json.loads(cell.locator("pre").inner_text()) == outputs[:20]
    more.press("Enter")
    expect(more).to_have_count(0)
    assert json.loads(cell.locator("pre").inner_text()) == outputs
    # the step's drawer shows up to 100 entries: all 30 here, no button
    cell.locator("xpath=..").get_by_role("button", name="details of each").press("Enter")
    drawer_list = page.locator("#drawer-outputs pre")
    expect(drawer_list).to_be_visible()
    assert json.loads(drawer_list.inner_text()) == outputs
    expect(page.locator("#drawer-outputs").get_by_role("button")).to_have_count(0)


def test_the_page_preloads_every_script_module(server: Server) -> None:
    html = httpx.get(server.url + "/").text
    preloaded = set(
        re.findall(r'<link rel="modulepreload" href="/ui/static/js/([a-z]+\.js)">', html)
    )
    shipped = {
        p.name for p in (Path(__file__).parents[2] / "src/lockstep/ui/static/js").glob("*.js")
    }
    assert preloaded == shipped
    for name in sorted(preloaded):  # each one is served, so none is a broken link
        assert httpx.get(f"{server.url}/ui/static/js/{name}").status_code == 200, name
