"""The instances, triggers, workers and audit pages and a definition's tag history in a real
browser: a run started from an instance, a schedule's next fire and its pause (by role), the
live worker, the audit log for admins only, and hostile text rendered inert."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.harness import Server, wait_for
from tests.ui.conftest import docs_screenshot, screenshot

LIVE = 30_000
EVIL = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(2)</script>"
SPEC = """\
name: {name}
params:
  type: object
  properties:
    who: {{type: string, default: nobody}}
steps:
  greet:
    run: echo "hello ${{{{ params.who }}}}"
{triggers}"""
YEARLY = """\
triggers:
  yearly:
    cron: "0 0 1 1 *"
  hook:
    kind: webhook
    auth: token
    secret: UI_HOOK
"""


@pytest.fixture(autouse=True)
def _schedules_stop_with_the_test(server: Server) -> Iterator[None]:
    yield
    server.pause_schedules()


def _live(
    server: Server, name: str, triggers: str = "", reason: str | None = None, text: str = ""
) -> None:
    """A published definition (SPEC, or ``text``) whose version 1 is $LIVE (moved with
    ``reason``)."""
    assert server.http.post("/definitions", json={"name": name}).status_code in (201, 409)
    text = text or SPEC.format(name=name, triggers=triggers)
    draft = server.http.put(
        f"/definitions/{name}/draft", content=text, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200 and draft.json()["valid"], draft.text
    published = server.http.post(f"/definitions/{name}/publish", json={})
    assert published.status_code == 201, published.text
    tag = server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": 1, "reason": reason})
    assert tag.status_code == 200, tag.text


def _inert(page: Page) -> None:
    assert page.locator("#main img, #main script").count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_an_operator_starts_a_run_from_an_instance_and_watches_it_finish(
    open_ui: Callable[[str | None], Page],
    server: Server,
    user_token: Callable[[str, str], str],
) -> None:
    _live(server, "ui-inst-def")
    made = server.http.post(
        "/instances",
        json={
            "name": "ui-inst",
            "definition": "ui-inst-def",
            "ref": "$LIVE",
            "params": [f"who={EVIL}"],
        },
    )
    assert made.status_code == 201, made.text
    viewer = open_ui(user_token("inst-vera", "viewer"))
    viewer.goto("/#/p/default/instances")
    row = viewer.locator("#instances tr[data-instance='ui-inst']")
    expect(row).to_contain_text(f"who={EVIL}")  # the instance's params, as text
    expect(row).to_contain_text("$LIVE")
    expect(viewer.locator("#instances")).to_contain_text("ui-inst-def")
    expect(viewer.get_by_role("button", name="new run of ui-inst")).to_have_count(0)
    _inert(viewer)

    page = open_ui(user_token("inst-otto", "operator"))
    page.get_by_role("link", name="Instances").click()
    row = page.locator("#instances tr[data-instance='ui-inst']")
    row.get_by_role("button", name="new run of ui-inst").click()
    row.get_by_label("who", exact=True).fill(SCRIPT)  # a field of the version's params schema
    row.get_by_role("button", name="start the run of ui-inst").click()
    expect(page.locator("h1 .status")).to_have_text("succeeded", timeout=LIVE)
    run_id = page.url.rsplit("/", 1)[-1]
    run = server.run(run_id)
    assert run["instance"] == "ui-inst" and run["params"] == {"who": SCRIPT}
    expect(page.locator("#logs")).to_contain_text(f"hello {SCRIPT}", timeout=LIVE)
    _inert(page)


def test_a_bad_param_is_refused_on_the_instances_page_in_one_line(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    counted = (
        "name: ui-inst-count-def\nparams:\n  type: object\n  properties:\n"
        "    count: {type: integer}\nsteps:\n  a:\n    run: 'true'\n"
    )
    _live(server, "ui-inst-count-def", text=counted)
    made = server.http.post(
        "/instances",
        json={"name": "ui-inst-count", "definition": "ui-inst-count-def", "ref": "$LIVE"},
    )
    assert made.status_code == 201, made.text
    page = open_ui(server.token)
    page.goto("/#/p/default/instances")
    row = page.locator("#instances tr[data-instance='ui-inst-count']")
    row.get_by_role("button", name="new run of ui-inst-count").click()
    row.get_by_label("count", exact=True).fill("many")
    row.get_by_role("button", name="start the run of ui-inst-count").click()
    expect(row.locator(".error")).to_contain_text("count")
    assert "\n" not in row.locator(".error").inner_text()
    assert "#/p/default/instances" in page.url
    runs = server.http.get("/runs", params={"workflow": "ui-inst-count-def"}).json()["items"]
    assert runs == []


def test_the_workers_page_shows_the_live_worker(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    workers = server.api.get("/workers").json()
    assert workers, "the test server runs a worker"
    page = open_ui(server.token)
    page.get_by_role("link", name="Workers").click()
    row = page.locator(f"#workers tr[data-worker='{workers[0]['identity']}']")
    expect(row.locator(".state")).to_have_text("live")
    expect(row).to_contain_text(workers[0]["pool"])
    expect(row.locator(".load")).to_contain_text(f"/ {workers[0]['capacity']}")


def test_a_worker_not_heard_from_is_marked_stale_in_words(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    # what a worker on another host sends every few seconds; this one then falls silent
    report = {
        "identity": "ui-far-box",
        "pool": "ui-far",
        "host": "far-host",
        "pid": 4242,
        "capacity": 7,
        "running": 2,
        "version": "0.0.0",
        "labels": {"note": EVIL},
    }
    assert server.api.post("/worker/report", json=report).status_code == 204
    page = open_ui(server.token)
    page.goto("/#/p/default/workers")
    row = page.locator("#workers tr[data-worker='ui-far-box']")
    expect(row.locator(".load")).to_have_text("2 / 7")
    expect(row).to_contain_text(f"note={EVIL}")
    # after three missed reports (15 s) it is lost: the page says so as it refreshes
    expect(row.locator(".state")).to_contain_text("stale: not seen for", timeout=60_000)
    _inert(page)


def test_triggers_page_shows_a_schedules_next_fire_and_pause_by_role(
    open_ui: Callable[[str | None], Page],
    server: Server,
    user_token: Callable[[str, str], str],
    tmp_path: Path,
) -> None:
    assert server.http.put("/secrets/UI_HOOK", json={"value": "ui-hook"}).status_code in (200, 201)
    _live(server, "ui-yearly", YEARLY)
    fired = server.http.post("/triggers/ui-yearly/yearly/fire", json={"params": {"who": EVIL}})
    assert fired.status_code == 200, fired.text
    fired_run = fired.json()["run_id"]
    # a delivery whose id is markup: shown as text on its run's page
    delivered = httpx.post(
        f"{server.url}/api/v1/hooks/default/ui-yearly/hook",
        content=b"{}",
        headers={"authorization": "Bearer ui-hook", "x-request-id": EVIL},
        timeout=30,
    )
    assert delivered.status_code == 202, delivered.text
    [hooked] = wait_for(
        lambda: server.http.get(
            "/runs", params={"trigger": "hook", "workflow": "ui-yearly"}
        ).json()["items"],
        timeout=30,
        what="the delivery's run",
    )

    viewer = open_ui(user_token("trig-vic", "viewer"))
    viewer.goto("/#/p/default/triggers")
    row = viewer.locator("#triggers tr[data-definition='ui-yearly'][data-trigger='yearly']")
    expect(row).to_contain_text("schedule")
    expect(row.locator(".next-fire")).to_contain_text("1/1/")  # next 1 January
    expect(viewer.get_by_role("button", name="pause ui-yearly yearly")).to_have_count(0)
    viewer.get_by_role("button", name="fires of ui-yearly yearly").click()
    expect(viewer.locator(f"#fires tr a[href$='{fired_run}']")).to_be_visible()
    # the fired run's page says why it started: this trigger, fired by hand by admin
    viewer.locator(f"#fires tr a[href$='{fired_run}']").click()
    cause = viewer.locator("#facts dt:text-is('Cause') + dd")
    expect(cause).to_have_text("manual · admin · trigger yearly")
    viewer.goto(f"/#/p/default/runs/{hooked['id']}")
    expect(cause).to_have_text(f"webhook · trigger hook · delivery {EVIL}")

    page = open_ui(user_token("trig-mia", "maintainer"))
    page.goto("/#/p/default/triggers")
    row = page.locator("#triggers tr[data-definition='ui-yearly'][data-trigger='yearly']")
    docs_screenshot(page, "ui-triggers")
    screenshot(page, tmp_path, "triggers")
    page.get_by_role("button", name="pause ui-yearly yearly").click()
    expect(row.locator(".paused")).to_contain_text("paused by trig-mia")
    listed = {
        t["trigger"]: t
        for t in server.http.get("/triggers", params={"definition": "ui-yearly"}).json()
    }
    assert listed["yearly"]["paused_by"] == "user:trig-mia"
    page.get_by_role("button", name="resume ui-yearly yearly").click()
    expect(row.locator(".paused")).to_have_text("no")
    _inert(viewer)


def test_audit_is_shown_to_admins_only_and_its_text_is_inert(
    open_ui: Callable[[str | None], Page],
    server: Server,
    user_token: Callable[[str, str], str],
) -> None:
    hostile = f"/instances/{EVIL}/runs"
    assert server.http.post(hostile, json={}).status_code in (404, 422)
    viewer = open_ui(user_token("aud-val", "viewer"))
    expect(viewer.get_by_role("link", name="Runs", exact=True)).to_be_visible()
    expect(viewer.get_by_role("link", name="Audit")).to_have_count(0)
    viewer.goto("/#/p/default/audit")  # by URL: the API refuses, the page says so
    expect(viewer.locator("#audit-note")).to_contain_text("admin")

    admin = open_ui(server.token)
    admin.get_by_role("link", name="Audit").click()
    expect(admin.locator("#audit .action").first).to_be_visible()
    expect(admin.locator("#audit")).to_contain_text(EVIL)
    _inert(admin)


def test_a_definitions_tag_history_shows_each_move_as_text(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    _live(server, "ui-tag-moves", reason=SCRIPT)
    page = open_ui(server.token)
    page.goto("/#/p/default/definitions/ui-tag-moves")
    move = page.locator("#tag-history tr[data-tag='$LIVE']")
    expect(move).to_contain_text("(unset)")
    expect(move.locator(".reason")).to_have_text(SCRIPT)
    _inert(page)
