"""Definitions, their versions and tags in a real browser: the list, two versions compared
side by side, a tag moved through the form after seeing its diff (maintainers and above
only), and a spec's text rendered inert."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.gitrepo import Repo, git
from tests.harness import Server
from tests.ui.conftest import docs_screenshot, screenshot

HOSTILE = "<img src=x onerror=alert(1)>"
SPEC = """\
name: {name}
description: "{description}"
params:
  type: object
  properties:
    who: {{type: string, default: world{extra}}}
steps:
  hello:
    run: echo hello
"""


def _published(server: Server, name: str, description: str = "plain") -> None:
    """``name`` with two versions: the second adds ``maxLength: 10`` to the param ``who``."""
    made = server.http.post("/definitions", json={"name": name, "description": description})
    assert made.status_code == 201, made.text
    for n, extra in ((1, ""), (2, ", maxLength: 10")):
        text = SPEC.format(name=name, description=f"{description} v{n}", extra=extra)
        draft = server.http.put(
            f"/definitions/{name}/draft",
            content=text,
            headers={"content-type": "application/yaml"},
        )
        assert draft.status_code == 200 and draft.json()["valid"], draft.text
        published = server.http.post(f"/definitions/{name}/publish", json={})
        assert published.status_code == 201, published.text


def _tag(server: Server, name: str) -> int:
    resp = server.http.get(f"/definitions/{name}/tags/$LIVE")
    assert resp.status_code == 200, resp.text
    return int(resp.json()["number"])


def test_definitions_page_lists_a_published_definition_with_its_latest_version(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path
) -> None:
    _published(server, "ui-listed")
    page = open_ui(server.token)
    page.get_by_role("link", name="Definitions").click()
    row = page.locator("#definitions tr[data-definition='ui-listed']")
    expect(row).to_contain_text("published")
    expect(row.locator(".latest")).to_have_text("2")
    screenshot(page, tmp_path, "definitions")
    row.get_by_role("link", name="ui-listed").click()
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    expect(page.locator("#versions tr[data-version='1']")).to_contain_text("admin")


def test_a_git_backed_definition_shows_each_refs_validity_with_every_error_at_its_line(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.commit({"workflow.yaml": "name: ui-gitdef\nsteps:\n  compile:\n    run: echo ok\n"})
    repo.push("main")
    git(repo.work, "checkout", "-b", "feature-x")
    repo.commit({"workflow.yaml": "name: ui-gitdef\nsteps:\n  compile:\n    rnu: echo typo\n"})
    repo.push("feature-x")
    added = server.http.post(
        "/repositories",
        json={"url": repo.url, "name": "ui-app", "branches": ["main", "feature-*"]},
    )
    assert added.status_code == 201, added.text
    assert server.http.post("/repositories/ui-app/scan").status_code == 200
    page = open_ui(server.token)
    page.goto("/#/p/default/definitions")
    row = page.locator("#definitions tr[data-definition='ui-gitdef']")
    expect(row).to_contain_text("ui-app workflow.yaml")
    expect(row.locator(".ref[data-ref='main'] .status")).to_have_text("valid")
    expect(row.locator(".ref[data-ref='main'] .errors")).to_have_count(0)
    bad = row.locator(".ref[data-ref='feature-x']")
    expect(bad.locator(".status")).to_have_text("invalid")
    expect(
        bad.locator(".errors li", has_text="workflow.yaml:4:5: unknown key 'rnu'")
    ).to_have_count(1)


def test_comparing_two_versions_shows_the_changed_field_side_by_side(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path
) -> None:
    _published(server, "ui-compared")
    page = open_ui(server.token)
    page.goto("/#/p/default/definitions/ui-compared")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    page.get_by_label("From version").select_option("1")
    page.get_by_label("To version").select_option("2")
    page.get_by_role("button", name="Compare").click()
    change = page.locator("#diff tr.change", has_text="maxLength")
    expect(change).to_contain_text("param who")
    expect(change.locator(".new")).to_have_text("10")
    expect(change).to_contain_text("(breaking)")
    described = page.locator("#diff tr.change", has_text="description")
    expect(described.locator(".old")).to_have_text("plain v1")
    expect(described.locator(".new")).to_have_text("plain v2")
    screenshot(page, tmp_path, "compare")
    docs_screenshot(page, "ui-diff")


def test_a_maintainer_moves_a_tag_after_seeing_its_diff_and_a_viewer_sees_no_form(
    open_ui: Callable[[str | None], Page],
    server: Server,
    user_token: Callable[[str, str], str],
    tmp_path: Path,
) -> None:
    _published(server, "ui-tagged")
    assert server.http.put("/definitions/ui-tagged/tags/$LIVE", json={"version": 1}).is_success
    viewer = open_ui(user_token("vera-viewer", "viewer"))
    viewer.goto("/#/p/default/definitions/ui-tagged")
    expect(viewer.locator("#versions tr[data-version='1'] .tags")).to_have_text("$LIVE")
    expect(viewer.locator("#move-tag")).to_have_count(0)
    page = open_ui(user_token("mia-maintainer", "maintainer"))
    page.goto("/#/p/default/definitions/ui-tagged")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    page.get_by_label("Tag").fill("$LIVE")
    page.get_by_label("Point it at version").select_option("2")
    page.get_by_role("button", name="Show the change").click()
    expect(page.locator("#tag-preview")).to_contain_text("Move $LIVE from version 1 to version 2")
    expect(page.locator("#tag-diff tr.change", has_text="maxLength")).to_contain_text("10")
    assert _tag(server, "ui-tagged") == 1  # shown, not moved
    screenshot(page, tmp_path, "move-tag")
    page.get_by_role("button", name="Confirm: move $LIVE to version 2").click()
    expect(page.locator("#tag-result")).to_have_text("$LIVE now points at version 2.")
    expect(page.locator("#versions tr[data-version='2'] .tags")).to_have_text("$LIVE")
    assert _tag(server, "ui-tagged") == 2


def test_markup_in_a_definitions_description_renders_as_text(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    _published(server, "ui-hostile", description=HOSTILE)
    page = open_ui(server.token)
    page.goto("/#/p/default/definitions/ui-hostile")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Compare").click()
    described = page.locator("#diff tr.change", has_text="description")
    expect(described.locator(".new")).to_have_text(f"{HOSTILE} v2")
    expect(page.locator("main img")).to_have_count(0)
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_a_tag_moved_by_someone_else_meanwhile_is_not_moved_again(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    _published(server, "ui-raced")
    assert server.http.put("/definitions/ui-raced/tags/$LIVE", json={"version": 1}).is_success
    page = open_ui(server.token)
    page.goto("/#/p/default/definitions/ui-raced")
    page.get_by_label("Point it at version").select_option("2")
    page.get_by_role("button", name="Show the change").click()
    confirm = page.get_by_role("button", name="Confirm: move $LIVE to version 2")
    expect(confirm).to_be_visible()
    # someone else moves $LIVE between the preview and the confirmation
    assert server.http.put("/definitions/ui-raced/tags/$LIVE", json={"version": 2}).is_success
    confirm.click()
    expect(page.locator("#tag-error")).to_contain_text("points at version 2, not version 1")
    expect(page.locator("#tag-result")).to_have_text("")
    assert _tag(server, "ui-raced") == 2
