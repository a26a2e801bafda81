"""Approvals in a real browser: the project's waiting approvals, and on a run's page a form
built from the step's input schema; the API's refusal of bad input shown inline, approving
with typed input finishes the run, only the step's approvers see the buttons, and the
approval's message renders as text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.harness import Server
from tests.ui.conftest import docs_screenshot, screenshot

LIVE = 30_000  # ms a live change may take to show (the page refreshes with backoff ≤ 15 s)
HOSTILE = "<img src=x onerror=alert(1)> javascript:alert(2)"
SPEC = """\
name: {name}
steps:
  gate:
    approval:
      approvers: [admin]
      message: "{message}"
      input:
        type: object
        properties:
          percent: {{type: integer, minimum: 1, maximum: 100}}
          region: {{enum: [eu, us]}}
          fast: {{type: boolean}}
          note: {{type: string}}
          extra: {{type: object}}
        required: [percent]
  after:
    needs: [gate]
    run: echo "percent=${{{{ steps.gate.outputs.percent }}}}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  percent: ${{{{ steps.gate.outputs.percent }}}}
  region: ${{{{ steps.gate.outputs.region }}}}
  fast: ${{{{ steps.gate.outputs.fast }}}}
  extra: ${{{{ steps.gate.outputs.extra.a }}}}
"""


def _waiting(server: Server, name: str, message: str = "Roll out?") -> str:
    run_id = str(server.submit(SPEC.format(name=name, message=message))["id"])
    server.wait(run_id, until=lambda r: r["steps"]["gate"]["status"] == "waiting")
    return run_id


def test_approving_a_waiting_step_with_typed_input_finishes_the_run(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path
) -> None:
    run_id = _waiting(server, "ui-approve")
    page = open_ui(server.token)
    page.get_by_role("link", name="Approvals").click()
    row = page.locator(f"#approvals tr[data-run='{run_id}'][data-step='gate']")
    expect(row).to_contain_text("Roll out?")
    expect(row).to_contain_text("admin (1 needed)")
    row.get_by_role("link").click()
    panel = page.locator(".approval[data-step='gate']")
    expect(panel).to_contain_text("Approval gate is waiting", timeout=LIVE)
    panel.get_by_label("percent").fill("0")  # below the schema's minimum: the API says so
    panel.get_by_role("button", name="Approve").click()
    expect(panel.get_by_role("alert")).to_contain_text("less than the minimum of 1")
    docs_screenshot(page, "ui-approval", top=panel)
    assert server.run(run_id)["steps"]["gate"]["status"] == "waiting"
    panel.get_by_label("extra").fill("{not json")
    panel.get_by_role("button", name="Approve").click()
    expect(panel.get_by_role("alert")).to_have_text("extra: not valid JSON")
    panel.get_by_label("percent").fill("42")
    panel.get_by_label("region").select_option(label='"us"')
    panel.get_by_label("fast").check()
    panel.get_by_label("extra").fill('{"a": "x"}')
    screenshot(page, tmp_path, "approval")
    panel.get_by_role("button", name="Approve").click()
    expect(page.locator("h1 .status")).to_have_text("succeeded", timeout=LIVE)
    expect(panel).to_have_count(0)
    run = server.run(run_id)
    assert run["status"] == "succeeded"
    assert run["steps"]["gate"]["outputs"] == {
        "percent": 42,
        "region": "us",
        "fast": True,
        "extra": {"a": "x"},
    }
    expect(page.locator("#facts")).to_contain_text('"percent": 42')


def test_only_approvers_see_the_buttons_and_the_message_renders_as_text(
    open_ui: Callable[[str | None], Page],
    server: Server,
    user_token: Callable[[str, str], str],
) -> None:
    run_id = _waiting(server, "ui-approve-roles", message=HOSTILE)
    viewer = open_ui(user_token("val-viewer", "viewer"))
    viewer.goto("/#/p/default/approvals")
    expect(viewer.locator(f"#approvals tr[data-run='{run_id}'] .message")).to_have_text(HOSTILE)
    viewer.goto(f"/#/p/default/runs/{run_id}")
    panel = viewer.locator(".approval[data-step='gate']")
    expect(panel.locator(".message")).to_have_text(HOSTILE, timeout=LIVE)
    expect(panel.get_by_role("button")).to_have_count(0)
    expect(viewer.locator("main img")).to_have_count(0)
    assert viewer.dialogs == []  # type: ignore[attr-defined]
    # the named approver rejects: the step and its run fail
    admin = open_ui(server.token)
    admin.goto(f"/#/p/default/runs/{run_id}")
    admin.locator(".approval[data-step='gate']").get_by_role("button", name="Reject").click()
    expect(admin.locator("h1 .status")).to_have_text("failed", timeout=LIVE)
    assert server.run(run_id)["steps"]["gate"]["status"] == "failed"
