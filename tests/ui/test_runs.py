"""The runs list and a run's page in a real browser: live status, steps, outputs, live logs,
buttons by role, and data rendered as text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.harness import Server
from tests.ui.conftest import screenshot

LIVE = 30_000  # ms a live change may take to show (the page refreshes with backoff ≤ 15 s)

# the step holds at the gate until the test opens it: "shown while running" is a fact the
# test controls, not a race
GATED = """\
name: {name}
steps:
  talk:
    run: |
      echo "first line"
      echo "to stderr" >&2
      while [ ! -e '{gate}' ]; do sleep 0.05; done
      echo "after the gate"
      echo "answer=42" >> "$LOCKSTEP_OUTPUTS"
"""


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """The file a gated step waits for; opened at the end whatever happened, so that no step
    is left waiting for the rest of the session."""
    path = tmp_path / "gate"
    yield path
    path.touch()


def _gated(server: Server, gate: Path, name: str) -> dict[str, object]:
    return server.submit(GATED.format(name=name, gate=gate))


def _running(server: Server, run_id: str) -> None:
    server.wait(run_id, until=lambda r: r["steps"]["talk"]["status"] == "running")


def test_a_submitted_run_shows_in_the_list_and_turns_succeeded_without_reload(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path, gate: Path
) -> None:
    page = open_ui(server.token)
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    run = _gated(server, gate, "ui-live-list")
    row = page.locator(f"#runs tr[data-run='{run['id']}']")
    expect(row).to_contain_text("ui-live-list", timeout=LIVE)
    _running(server, str(run["id"]))
    expect(row.locator(".run-status")).to_have_text("running", timeout=LIVE)
    expect(row).to_contain_text("manual · admin")
    gate.touch()
    expect(row.locator(".run-status")).to_have_text("succeeded", timeout=LIVE)
    assert page.evaluate("window.sameDocument") is True
    # filters narrow the list: this workflow's runs only, then a status it has none of
    page.get_by_label("Workflow").fill("ui-live-list")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    expect(row.locator(".run-status")).to_have_text("succeeded")
    screenshot(page, tmp_path, "runs-list")
    page.get_by_label("Status").select_option("failed")
    expect(page.locator("#runs-note")).to_have_text("No runs match these filters.")
    expect(page.locator("#runs tbody tr")).to_have_count(0)


def test_run_page_shows_steps_outputs_and_logs_as_they_print(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path, gate: Path
) -> None:
    page = open_ui(server.token)
    run = _gated(server, gate, "ui-run-page")
    run_id = str(run["id"])
    _running(server, run_id)
    page.locator(f"#runs tr[data-run='{run_id}'] a").click()
    expect(page.locator("h1")).to_contain_text(run_id)
    expect(page.locator("#facts")).to_contain_text("manual · admin")
    step = page.locator("#steps tr[data-step='talk']")
    expect(step.locator(".step-status")).to_have_text("running", timeout=LIVE)
    logs = page.locator("#logs")
    expect(logs).to_contain_text("first line", timeout=LIVE)
    expect(logs.locator(".stderr")).to_contain_text("to stderr")
    expect(logs.locator(".stdout")).to_contain_text("talk stdout")
    assert server.run(run_id)["status"] == "running"  # shown while the step still runs
    page.get_by_role("button", name="logs of talk").click()  # one step's logs
    expect(page.locator("#logs-title")).to_have_text("Logs of talk")
    expect(logs).to_contain_text("first line", timeout=LIVE)
    assert "after the gate" not in logs.inner_text()
    gate.touch()
    expect(logs).to_contain_text("after the gate", timeout=LIVE)
    expect(step.locator(".step-status")).to_have_text("succeeded", timeout=LIVE)
    expect(step.locator(".step-outputs")).to_contain_text('"answer": "42"')
    expect(page.locator("#logs-state")).to_contain_text("run succeeded")
    screenshot(page, tmp_path, "run-page")


def test_a_viewer_sees_no_buttons_and_an_operator_cancels(
    open_ui: Callable[[str | None], Page],
    server: Server,
    gate: Path,
    user_token: Callable[[str, str], str],
) -> None:
    run = _gated(server, gate, "ui-roles")
    run_id = str(run["id"])
    _running(server, run_id)
    viewer = open_ui(user_token("vic-viewer", "viewer"))
    viewer.goto(f"/#/p/default/runs/{run_id}")
    expect(viewer.locator("#steps tr[data-step='talk'] .step-status")).to_have_text("running")
    expect(viewer.locator(".actions button")).to_have_count(0)
    operator = open_ui(user_token("olga-operator", "operator"))
    operator.goto(f"/#/p/default/runs/{run_id}")
    operator.get_by_role("button", name="Cancel run").click()
    expect(operator.locator("h1 .status")).to_have_text("cancelled", timeout=LIVE)
    assert server.run(run_id)["status"] == "cancelled"
    expect(operator.get_by_role("button", name="Retry run")).to_be_visible()
    expect(operator.get_by_role("button", name="Cancel run")).to_have_count(0)
    operator.get_by_role("button", name="Retry run").click()
    expect(operator.locator("#facts")).to_contain_text("retry · olga-operator")
    expect(operator.locator("h1")).not_to_contain_text(run_id)


HOSTILE = """\
name: ui-hostile
steps:
  evil:
    run: |
      echo '<img src=x onerror=alert(1)>'
      echo '<script>alert(2)</script>'
      echo '"onerror=alert(3) x="'
      printf '\\033[31mred text\\033[0m \\033]0;pwned title\\007after osc\\n'
      echo 'link=javascript:alert(4)' >> "$LOCKSTEP_OUTPUTS"
"""


def test_hostile_log_lines_and_outputs_render_as_inert_text(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    run = server.run_and_wait(HOSTILE)
    assert run["status"] == "succeeded", run
    page = open_ui(server.token)
    page.goto(f"/#/p/default/runs/{run['id']}")
    logs = page.locator("#logs")
    expect(logs).to_contain_text("<img src=x onerror=alert(1)>")
    expect(logs).to_contain_text("<script>alert(2)</script>")
    expect(logs).to_contain_text('"onerror=alert(3) x="')
    # ANSI and OSC escapes are removed, never interpreted (no colour codes, no title change)
    expect(logs).to_contain_text("red text after osc")
    assert "\x1b" not in logs.inner_text()
    outputs = page.locator("#steps tr[data-step='evil'] .step-outputs")
    expect(outputs).to_contain_text("javascript:alert(4)")
    assert page.locator("#main img, #main script, #main a[href^='javascript']").count() == 0
    assert "pwned" not in page.title()
    assert page.dialogs == []  # type: ignore[attr-defined]


# (a worker splits a line at 64 KiB; this one stays whole)
def test_a_very_long_log_line_is_cut_with_a_show_all_button(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    spec = (
        "name: ui-long-line\nsteps:\n  long:\n"
        "    run: head -c 50000 /dev/zero | tr '\\0' x; echo; echo next\n"
    )
    run = server.run_and_wait(spec)
    assert run["status"] == "succeeded", run
    page = open_ui(server.token)
    page.goto(f"/#/p/default/runs/{run['id']}")
    expect(page.locator("#logs")).to_contain_text("next")
    long_line = page.locator("#logs .stdout .text").first
    assert len(long_line.inner_text()) == 10_000
    page.get_by_role("button", name="show all (40000 more characters)").click()
    expect(long_line).to_have_text("x" * 50_000)
