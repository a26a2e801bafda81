"""The runs list in a real browser: filters kept in the URL (a reload keeps them), search by
id prefix, runs appearing and changing through the API's stream (no reload, no polling), and
the project switcher."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.harness import Server
from tests.ui.conftest import docs_screenshot, screenshot

LIVE = 30_000
SPEC = "name: {name}\nsteps:\n  a:\n    run: 'true'\n"


def _as(server: Server, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url + "/api/v1/projects/default",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )


def _rows(page: Page) -> list[str]:
    return [
        str(r)
        for r in page.locator("#runs tbody tr").evaluate_all("rs => rs.map(r => r.dataset.run)")
    ]


def test_filters_narrow_the_list_and_survive_a_reload(
    open_ui: Callable[[str | None], Page],
    server: Server,
    user_token: Callable[[str, str], str],
) -> None:
    with _as(server, user_token("fil-fay", "operator")) as fay:
        made = fay.post("/runs", json={"spec": SPEC.format(name="ui-filter-a")})
    assert made.status_code == 201, made.text
    fays = server.wait(made.json()["id"])["id"]
    admins = server.run_and_wait(SPEC.format(name="ui-filter-a"))["id"]
    other = server.run_and_wait(SPEC.format(name="ui-filter-b"))["id"]
    page = open_ui(server.token)
    page.get_by_label("Workflow").fill("ui-filter-a")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    assert set(_rows(page)) == {fays, admins}
    page.get_by_label("Started by").fill("fil-fay")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    assert _rows(page) == [fays]
    assert "user=fil-fay" in page.url and "workflow=ui-filter-a" in page.url
    page.reload()  # the fragment holds the filters: the same view comes back
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    assert _rows(page) == [fays]
    expect(page.get_by_label("Started by")).to_have_value("fil-fay")
    expect(page.get_by_label("Workflow")).to_have_value("ui-filter-a")
    page.get_by_label("Cause").select_option("retry")
    expect(page.locator("#runs-note")).to_have_text("No runs match these filters.")
    page.get_by_role("link", name="Clear").click()
    expect(page.locator(f"#runs tr[data-run='{other}']")).to_be_visible()


def test_a_run_is_found_by_the_start_of_its_id(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    run = server.run_and_wait(SPEC.format(name="ui-prefix"))["id"]
    page = open_ui(server.token)
    page.get_by_label("Run id starts with").fill(run[:10])
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    assert _rows(page) == [run]
    expect(page.locator("#runs tbody tr")).to_contain_text("ui-prefix")


def test_a_run_started_elsewhere_appears_and_finishes_in_an_open_list_without_polling(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path
) -> None:
    page = open_ui(server.token)
    expect(page.locator("#runs-live")).to_have_text("· live")  # the stream is open
    lists: list[str] = []
    page.on("request", lambda r: lists.append(r.url) if "/runs?" in r.url else None)
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    run = server.submit(SPEC.format(name="ui-streamed"))["id"]
    row = page.locator(f"#runs tr[data-run='{run}']")
    expect(row).to_contain_text("ui-streamed", timeout=LIVE)
    expect(row.locator(".run-status")).to_have_text("succeeded", timeout=LIVE)
    expect(page.locator("#runs tbody tr").first).to_have_attribute("data-run", run)
    assert page.evaluate("window.sameDocument") is True
    assert lists == []  # the list was not asked for again: the stream brought the run
    docs_screenshot(page, "ui-runs")
    screenshot(page, tmp_path, "runs-live")


def test_the_project_switcher_shows_the_other_projects_runs_only(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    assert server.api.post("/projects", json={"name": "ui-elsewhere"}).status_code in (201, 409)
    theirs = server.api.post(
        "/projects/ui-elsewhere/runs", json={"spec": SPEC.format(name="ui-theirs")}
    )
    assert theirs.status_code == 201, theirs.text
    mine = server.run_and_wait(SPEC.format(name="ui-mine"))["id"]
    page = open_ui(server.token)
    expect(page.locator(f"#runs tr[data-run='{mine}']")).to_be_visible()
    page.get_by_label("project").select_option("ui-elsewhere")
    expect(page.locator(f"#runs tr[data-run='{theirs.json()['id']}']")).to_be_visible()
    expect(page.locator(f"#runs tr[data-run='{mine}']")).to_have_count(0)
    assert "#/p/ui-elsewhere/runs" in page.url
    page.get_by_role("link", name="Triggers").click()  # every page follows the project
    assert "#/p/ui-elsewhere/triggers" in page.url
    page.get_by_label("project").select_option("default")
    assert "#/p/default/triggers" in page.url


def test_the_list_comes_a_page_at_a_time(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    runs = [server.submit(SPEC.format(name="ui-paged"))["id"] for _ in range(3)]
    for run in runs:
        server.wait(run)
    page = open_ui(server.token)
    page.goto("/#/p/default/runs?workflow=ui-paged&limit=2")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    first = _rows(page)
    page.get_by_role("link", name="Older runs").click()
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    assert first + _rows(page) == runs[::-1]  # every run once, newest first
    expect(page.get_by_role("link", name="Older runs")).to_have_count(0)
    page.reload()  # the page's cursor is in the fragment too
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    page.get_by_role("link", name="Newest runs").click()
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    assert _rows(page) == first
