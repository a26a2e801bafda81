"""Deployments in a real browser, against a real deployment whose replica runs on the server's
worker: the list and a deployment's page (nodes, workloads, events, revisions); a maintainer
previews a plan (its change set, disruptive changes marked) and deploys exactly it, and a plan
made stale meanwhile is refused inline; a reader sees no buttons; hostile text stays text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.harness import Server, wait_for
from tests.ui.conftest import docs_screenshot, screenshot
from tests.ui.test_accessibility import _every_control_named_and_focus_shown

LIVE = 30_000  # ms: the page refreshes the status every few seconds
EVIL = "<img src=x onerror=alert(1)>"
DEFINITION = "ui-ticker"
PIPELINE = """\
kind: pipeline
name: ui-ticker
nodes:
  tick:
    kind: source
    stateful: true
    run: {run}
    env: {{NOTE: "{note}"}}
"""


@pytest.fixture(scope="module")
def versions(server: Server) -> None:
    """Version 1 of the pipeline, and version 2: another program (a disruptive change for a
    stateful node) and a hostile env value, which the plan's lines quote."""
    assert server.http.post("/definitions", json={"name": DEFINITION}).status_code in (201, 409)
    for run, note in (("sleep 3600", "calm"), ("sleep 3601", EVIL)):
        draft = server.http.put(
            f"/definitions/{DEFINITION}/draft",
            content=PIPELINE.format(run=run, note=note),
            headers={"content-type": "application/yaml"},
        )
        assert draft.status_code == 200 and draft.json()["valid"], draft.text
        assert server.http.post(f"/definitions/{DEFINITION}/publish", json={}).status_code == 201


def _deploy(server: Server, name: str, version: str, reason: str | None = None) -> dict[str, Any]:
    plan = server.http.post(f"/deployments/{name}/plans", json={"version": version})
    assert plan.status_code == 201, plan.text
    body = {"plan": plan.json()["id"], "reason": reason}
    done = server.http.post(f"/deployments/{name}/deploy", json=body)
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    return result


@pytest.fixture
def deployment(server: Server, versions: None, request: pytest.FixtureRequest) -> Iterator[str]:
    """A deployment of version 1 (deployed with a hostile reason), running; deleted after
    the test so its replicas stop."""
    name = getattr(request, "param", None) or request.node.name.removeprefix("test_")[:40]
    name = name.replace("_", "-")
    _deploy(server, name, f"{DEFINITION}@1", reason=f"first {EVIL}")
    wait_for(
        lambda: (
            (server.http.get(f"/deployments/{name}").json().get("status") or {}).get("summary")
            == "converged"
        ),
        timeout=90,
        what=f"deployment {name} running",
    )
    yield name
    server.http.delete(f"/deployments/{name}")


def _inert(page: Page) -> None:
    assert page.locator("#main img, #main script").count() == 0
    assert page.dialogs == []  # type: ignore[attr-defined]


def _generation(server: Server, name: str) -> int:
    return int(server.http.get(f"/deployments/{name}").json()["generation"])


def test_the_list_and_page_show_nodes_workloads_and_events(
    open_ui: Callable[[str | None], Page], server: Server, deployment: str, tmp_path: Path
) -> None:
    page = open_ui(server.token)
    page.get_by_role("link", name="Deployments", exact=True).click()
    row = page.locator(f"#deployments tr[data-deployment='{deployment}']")
    expect(row).to_contain_text(f"1 ({DEFINITION}@1)")
    expect(row).to_contain_text("converged", timeout=LIVE)
    row.get_by_role("link", name=deployment).click()

    node = page.locator("#nodes tr[data-node='tick']")
    expect(node).to_contain_text("running", timeout=LIVE)
    expect(node.locator("td").nth(1)).to_have_text("default")
    expect(node.locator("td").nth(2)).to_have_text("1")  # desired
    expect(node.locator("td").nth(3)).to_have_text("1")  # actual
    [running] = server.http.get("/workloads", params={"deployment": deployment}).json()
    worker = running["worker"]
    replica = page.locator("#workloads tr[data-node='tick'][data-replica='0']")
    expect(replica).to_contain_text(worker)
    expect(replica).to_contain_text("running")
    deployed = page.locator("#events tr[data-kind='deployed']")
    expect(deployed).to_contain_text("user:admin")
    expect(deployed).to_contain_text(f"first {EVIL}")  # the hostile reason, as text
    expect(page.locator("#revisions tr[data-generation='1']")).to_contain_text(f"{DEFINITION}@1")
    expect(page.locator("#desired [data-fact='status']")).to_have_text("converged")
    screenshot(page, tmp_path, "deployment")
    _inert(page)


@pytest.mark.parametrize("deployment", ["ticker-prod"], indirect=True)
def test_a_maintainer_previews_deploys_and_a_stale_plan_is_refused(
    open_ui: Callable[[str | None], Page], server: Server, deployment: str
) -> None:
    page = open_ui(server.token)
    page.goto(f"/#/p/default/deployments/{deployment}")
    generation = page.locator("#desired [data-fact='generation']")
    expect(generation).to_have_text("1")
    expect(page.get_by_label("Version")).to_have_value(f"{DEFINITION}@1")
    page.get_by_label("Version").fill(f"{DEFINITION}@2")
    page.get_by_label("Replicas").fill("tick=2")
    page.get_by_role("button", name="Preview plan").click()
    lines = page.locator("#plan-lines")
    expect(lines).to_contain_text(f"version 1 -> version 2 ({DEFINITION}@2)")
    expect(lines).to_contain_text("~ tick: update")
    expect(lines).to_contain_text("replicas: 1 -> 2")
    expect(lines).to_contain_text(EVIL)  # the new env value, quoted as text
    disruptive = lines.locator(".disruptive")
    expect(disruptive).to_have_count(1)
    expect(disruptive).to_contain_text("disruptive: ")
    expect(disruptive).to_contain_text("state built by the old program is kept")
    plan_id = page.locator("#deploy").get_attribute("data-plan")
    assert _every_control_named_and_focus_shown(page, "a deployment's page") >= 6
    docs_screenshot(page, "ui-deployment")
    page.get_by_role("button", name=f"Deploy plan {plan_id}").click()
    expect(page.locator("#deployed")).to_contain_text("generation 2, version 2")
    expect(generation).to_have_text("2")
    applied = server.http.get(f"/deployments/{deployment}").json()
    assert (applied["generation"], applied["desired"]["version"]) == (2, 2)
    assert applied["revisions"][0]["plan"] == plan_id
    node = page.locator("#nodes tr[data-node='tick']")
    expect(node.locator("td").nth(3)).to_have_text("2", timeout=LIVE)  # both replicas run

    # a plan previewed here, then another deploy from elsewhere: this one is stale
    page.get_by_label("Replicas").fill("tick=1")
    page.get_by_role("button", name="Preview plan").click()
    expect(page.locator("#plan-lines")).to_contain_text("replicas: 2 -> 1")
    stale_id = page.locator("#deploy").get_attribute("data-plan")
    _deploy(server, deployment, f"{DEFINITION}@1")
    page.get_by_role("button", name=f"Deploy plan {stale_id}").click()
    expect(page.locator("#plan-error")).to_contain_text(f"Not deployed: plan {stale_id}")
    expect(page.locator("#plan-error")).to_contain_text("make a new plan")
    assert _generation(server, deployment) == 3  # the other deploy's, nothing more
    expect(generation).to_have_text("3", timeout=LIVE)

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("h1 .status")).to_have_text("paused")
    assert server.http.get(f"/deployments/{deployment}").json()["paused"] is True
    page.get_by_role("button", name="Resume").click()
    expect(page.locator("h1 .status")).to_have_text("active")
    expect(page.locator("#events tr[data-kind='paused']")).to_contain_text("user:admin")
    _inert(page)


def test_a_reader_sees_the_deployment_and_no_buttons(
    open_ui: Callable[[str | None], Page],
    server: Server,
    deployment: str,
    user_token: Callable[[str, str], str],
) -> None:
    page = open_ui(user_token("deploy-reader", "viewer"))
    page.goto(f"/#/p/default/deployments/{deployment}")
    expect(page.locator("#nodes tr[data-node='tick']")).to_contain_text("running", timeout=LIVE)
    expect(page.locator("#events tr[data-kind='deployed']")).to_contain_text(EVIL)
    expect(page.locator("#main button")).to_have_count(0)
    expect(page.locator("#plan-form")).to_have_count(0)
    _inert(page)
