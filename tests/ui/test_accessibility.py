"""Accessibility in a real browser: a keyboard-only journey (Tab, Enter and Escape, no mouse)
from login to a step's logs and back; every control on the run, definitions and approvals
pages has an accessible name (Chromium's accessibility tree, as Playwright's ARIA snapshot
reads it) and shows where the focus is; and no status is told by colour alone."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.harness import Server
from tests.ui.conftest import screenshot
from tests.ui.test_definitions import _published

LIVE = 30_000  # ms a live change may take to show (the page refreshes with backoff ≤ 15 s)
TABS = 400  # Tab presses a journey's step may take before the focus must be where it aims

JOURNEY = """\
name: ui-keyboard
steps:
  talk:
    run: echo "said by talk"
  after:
    needs: [talk]
    run: echo done
"""

#: a fan-out (its drawer lists items) and a waiting approval whose form has one field of
#: each kind: text, number, enum, boolean, JSON
EVERYTHING = """\
name: ui-a11y-all
steps:
  sim:
    for_each: [a, b]
    run: echo "item ${{ item }}"
  gate:
    needs: [sim]
    approval:
      approvers: [admin]
      message: "Ship it?"
      input:
        type: object
        properties:
          percent: {type: integer}
          region: {enum: [eu, us]}
          fast: {type: boolean}
          note: {type: string}
          extra: {type: object}
        required: [percent]
"""

#: the focus is visible when the focused element draws an outline or a shadow (the style
#: sheet's :focus rules; the UA's own focus ring also counts)
FOCUS_SHOWN = """(el) => {
  const c = getComputedStyle(el);
  return (c.outlineStyle !== "none" && parseFloat(c.outlineWidth) >= 1) || c.boxShadow !== "none";
}"""

#: every visible control that takes the focus, each focused in turn: those whose focus does not
#: show (described by tag, id and text)
UNSHOWN_FOCUS = (
    """() => {
  const shown = """
    + FOCUS_SHOWN
    + """;
  const controls = [...document.querySelectorAll(
    "a[href], button, input, select, textarea, [tabindex]:not([tabindex='-1'])")];
  const bad = [];
  let seen = 0;
  for (const el of controls) {
    if (el.disabled || !el.getClientRects().length || el.closest("[hidden]")) continue;
    seen += 1;
    el.focus();
    if (document.activeElement !== el || !shown(el)) {
      bad.push(`${el.tagName.toLowerCase()}#${el.id} ${(el.textContent || "").trim().slice(0, 40)}`);
    }
  }
  return { seen, bad };
}"""
)

#: an ARIA snapshot line of a control that has no name: `- button` with no quoted name after it
NAMELESS = re.compile(
    r"^\s*- (button|link|textbox|searchbox|combobox|checkbox|radio|spinbutton|slider|switch)"
    r'(?! ")(?:[ :\[].*)?$',
    re.MULTILINE,
)


def _tab_to(page: Page, selector: str) -> None:
    """Press Tab, and nothing else, until the focused element matches ``selector``; every
    element the focus passes must show it."""
    for _ in range(TABS):
        page.keyboard.press("Tab")
        focused = page.evaluate_handle("document.activeElement")
        if page.evaluate("el => el === document.body", focused):
            continue  # between the page's end and its start again
        assert page.evaluate(FOCUS_SHOWN, focused), page.evaluate("el => el.outerHTML", focused)
        if page.evaluate("([el, s]) => el.matches(s)", [focused, selector]):
            return
    raise AssertionError(f"{TABS} presses of Tab never reached {selector}")


def test_a_keyboard_alone_goes_from_login_to_a_steps_logs_in_its_drawer_and_back(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path
) -> None:
    run = server.run_and_wait(JOURNEY)
    assert run["status"] == "succeeded", run
    page = open_ui(None)
    expect(page.get_by_label("API token")).to_be_focused()
    page.keyboard.type(server.token)
    page.keyboard.press("Enter")
    expect(page.locator(f"#runs tr[data-run='{run['id']}']")).to_be_visible(timeout=LIVE)
    _tab_to(page, f"#runs tr[data-run='{run['id']}'] a")
    page.keyboard.press("Enter")
    node = page.locator("#dag .dag-node[data-step='talk']")
    expect(node.locator(".dag-status")).to_have_text("✓ succeeded", timeout=LIVE)
    _tab_to(page, "#dag .dag-node[data-step='talk']")
    screenshot(page, tmp_path, "keyboard-focus-on-a-node")
    page.keyboard.press("Enter")
    drawer = page.get_by_role("dialog", name="Step talk")
    expect(drawer).to_be_visible()
    expect(page.locator("#drawer-title")).to_be_focused()
    _tab_to(page, "#drawer .logs")
    expect(page.locator("#drawer .logs")).to_contain_text("said by talk", timeout=LIVE)
    for _ in range(12):  # Tab goes round the drawer, never to the page it covers
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('drawer').contains(document.activeElement)")
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(node).to_be_focused()  # back where the drawer was opened from
    _tab_to(page, "#nav a[href='#/p/default/runs']")  # on past the page's end, round to the top
    page.keyboard.press("Enter")
    # "Runs", or "Runs · live" once the list's stream is open
    expect(page.get_by_role("heading", level=1, name=re.compile(r"^Runs\b"))).to_be_visible()
    expect(page.locator(f"#runs tr[data-run='{run['id']}']")).to_be_visible()


def _every_control_named_and_focus_shown(page: Page, where: str) -> int:
    """Asserts on the page as it is now; returns how many controls it checked."""
    snapshot = page.locator("body").aria_snapshot()
    assert NAMELESS.findall(snapshot) == [], f"{where}: controls without a name:\n{snapshot}"
    found = page.evaluate(UNSHOWN_FOCUS)
    assert found["bad"] == [], f"{where}: the focus does not show on {found['bad']}"
    return int(found["seen"])


def test_every_control_on_the_run_definitions_and_approvals_pages_is_named_and_shows_focus(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    run_id = str(server.submit(EVERYTHING)["id"])
    server.wait(run_id, until=lambda r: r["steps"]["gate"]["status"] == "waiting")
    _published(server, "ui-a11y-def")
    page = open_ui(server.token)

    page.goto(f"/#/p/default/runs/{run_id}")
    panel = page.locator(".approval[data-step='gate']")
    expect(panel.get_by_role("button", name="Approve")).to_be_visible(timeout=LIVE)
    for field in ("percent", "region", "fast", "note", "extra", "Comment"):
        expect(panel.get_by_label(field)).to_be_visible()
    expect(page.get_by_role("searchbox", name="search log lines", exact=True)).to_be_visible()
    assert _every_control_named_and_focus_shown(page, "run page") >= 15
    # the drawer is a modal dialog: while it is open, it is what a screen reader reads
    page.get_by_role("button", name="step sim, succeeded, 2/2 ok; Enter opens its details").click()
    expect(page.locator("#drawer-items tbody tr")).to_have_count(2)
    expect(page.get_by_role("button", name="logs of sim[1]")).to_be_visible()
    expect(page.get_by_role("searchbox", name="search the step's log lines")).to_be_visible()
    assert _every_control_named_and_focus_shown(page, "a step's drawer") >= 20

    page.goto("/#/p/default/definitions")
    expect(page.get_by_role("link", name="ui-a11y-def")).to_be_visible()
    assert _every_control_named_and_focus_shown(page, "definitions") >= 5

    page.goto("/#/p/default/definitions/ui-a11y-def")
    expect(page.locator("#versions tbody tr")).to_have_count(2)  # the forms know the versions
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#diff tr.change").first).to_be_visible()
    page.get_by_label("Point it at version").select_option("1")  # $LIVE is at 2: a move
    page.get_by_role("button", name="Show the change").click()
    expect(page.get_by_role("button", name=re.compile("^Confirm: move"))).to_be_visible()
    assert _every_control_named_and_focus_shown(page, "a definition") >= 10

    page.goto("/#/p/default/approvals")
    expect(page.locator(f"#approvals tr[data-run='{run_id}']")).to_be_visible()
    assert _every_control_named_and_focus_shown(page, "approvals") >= 5


#: every element coloured by a status (class s-<status>): its status is also in its words
UNWORDED = """() => [...document.querySelectorAll("[class*='s-']")].flatMap((el) => {
  const state = [...el.classList].find((c) => c.startsWith("s-"))?.slice(2);
  if (!state || !el.getClientRects().length) return [];
  return el.textContent.includes(state) ? [] : [`${el.tagName} ${state}: ${el.textContent}`];
})"""


def test_no_status_is_told_by_colour_alone(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    run = server.run_and_wait(
        JOURNEY.replace("echo done", "exit 3").replace("ui-keyboard", "ui-colours")
    )
    assert run["steps"]["after"]["status"] == "failed", run
    page = open_ui(server.token)
    expect(page.locator(f"#runs tr[data-run='{run['id']}'] .status")).to_have_text("failed")
    assert page.evaluate(UNWORDED) == []
    page.goto(f"/#/p/default/runs/{run['id']}")
    expect(page.locator("#dag .dag-node.s-failed .dag-status")).to_have_text("✗ failed")
    page.locator("#steps tr[data-step='after']").get_by_role(
        "button", name="details of after"
    ).click()
    expect(page.locator("#drawer-attempts tbody tr")).to_contain_text("failed")
    coloured = page.locator("[class*='s-']")
    assert coloured.count() >= 7  # run, 2 steps (table and graph), drawer title, attempt
    assert page.evaluate(UNWORDED) == []


def test_the_focus_follows_a_page_change_and_stays_on_a_row_or_filter_that_re_renders(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    try:
        held = server.submit(
            "name: ui-focus\nsteps:\n  wait:\n    run: |\n"
            f"      while [ ! -e '{gate}' ]; do sleep 0.05; done\n"
        )
        page = open_ui(server.token)
        link = page.locator(f"#runs tr[data-run='{held['id']}'] a")
        expect(link).to_be_visible(timeout=LIVE)
        _tab_to(page, f"#runs tr[data-run='{held['id']}'] a")
        gate.touch()  # its row changes (running -> succeeded) and is drawn again
        row = page.locator(f"#runs tr[data-run='{held['id']}']")
        expect(row.locator(".run-status")).to_have_text(re.compile("succeeded"), timeout=LIVE)
        expect(link).to_be_focused()  # a keyboard user is not thrown back to the page's top
    finally:
        gate.touch()
    page.keyboard.press("Enter")  # a new page: the focus is on it, not lost on <body>
    expect(page.locator("#dag")).to_be_visible(timeout=LIVE)
    assert page.evaluate("document.getElementById('main').contains(document.activeElement)")
    page.goto("/#/p/default/runs")
    status = page.locator("#f-status")
    status.focus()
    page.keyboard.press("ArrowDown")  # a filter chosen from the keyboard re-renders the list
    expect(page).to_have_url(re.compile("status="), timeout=LIVE)
    expect(page.locator("#f-status")).to_be_focused()
