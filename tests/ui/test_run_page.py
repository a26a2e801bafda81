"""A run's page in a real browser: the graph drawn as a DAG (live, fan-out counts, blueprint
groups, child-run links, keyboard), the step drawer (attempts, outputs, artifacts, cache
source), rerun by role, ANSI colours, hostile data rendered inert, and a 10 MB log line."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, Route, expect

from tests.harness import Server
from tests.ui.conftest import docs_screenshot, screenshot

LIVE = 30_000  # ms a live change may take to show (the page refreshes with backoff ≤ 15 s)

GATED = """\
name: ui-dag-live
steps:
  talk:
    run: |
      echo "first line"
      while [ ! -e '{gate}' ]; do sleep 0.05; done
  after:
    needs: [talk]
    run: echo done
"""


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Path]:
    """The file the gated step waits for; opened at the end whatever happened."""
    path = tmp_path / "gate"
    yield path
    path.touch()


def test_a_running_runs_graph_turns_green_live_and_enter_on_a_node_opens_its_drawer(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path, gate: Path
) -> None:
    run_id = str(server.submit(GATED.format(gate=gate))["id"])
    server.wait(run_id, until=lambda r: r["steps"]["talk"]["status"] == "running")
    page = open_ui(server.token)
    page.goto(f"/#/p/default/runs/{run_id}")
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    talk = page.locator("#dag .dag-node[data-step='talk']")
    after = page.locator("#dag .dag-node[data-step='after']")
    # status in words and an icon, not by colour alone; the edge joins the two steps
    expect(talk.locator(".dag-status")).to_have_text("▶ running", timeout=LIVE)
    expect(talk).to_have_class("dag-node s-running")
    expect(after.locator(".dag-status")).to_have_text("… pending")
    expect(page.locator("#dag path.dag-edge[data-from='talk'][data-to='after']")).to_have_count(1)
    # keyboard: a node takes focus and Enter opens its drawer, with the attempt and its logs
    talk.focus()
    page.keyboard.press("Enter")
    drawer = page.locator("#drawer")
    expect(drawer).to_be_visible()
    expect(page.locator("#drawer-title")).to_contain_text("Step talk")
    attempt = page.locator("#drawer-attempts tbody tr").first
    expect(attempt).to_contain_text("running")
    expect(drawer.locator(".logs")).to_contain_text("first line", timeout=LIVE)
    gate.touch()
    expect(talk.locator(".dag-status")).to_have_text("✓ succeeded", timeout=LIVE)
    expect(after.locator(".dag-status")).to_have_text("✓ succeeded", timeout=LIVE)
    expect(after).to_have_class("dag-node s-succeeded")
    expect(attempt.locator("td").nth(3)).to_have_text("0")  # exit code, shown live in the drawer
    worker = server.run(run_id)["steps"]["talk"]["history"][0]["worker"]  # known once it ends
    expect(attempt.locator("td").nth(2)).to_have_text(worker)
    screenshot(page, tmp_path, "run-page-drawer")
    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    expect(talk).to_be_focused()  # focus goes back to the node that opened it
    assert page.evaluate("window.sameDocument") is True


KID = """\
name: ui-kid
steps:
  double:
    run: echo "twice=42" >> "$LOCKSTEP_OUTPUTS"
outputs:
  twice: ${{ steps.double.outputs.twice }}
"""

BLUEPRINT = """\
name: ui-etl
steps:
  extract:
    run: echo "rows=3" >> "$LOCKSTEP_OUTPUTS"
  load:
    needs: [extract]
    run: echo "loaded=${{ steps.extract.outputs.rows }}" >> "$LOCKSTEP_OUTPUTS"
outputs:
  loaded: ${{ steps.load.outputs.loaded }}
"""

SHOWCASE = """\
name: ui-showcase
steps:
  prepare:
    run: echo ready
  sim:
    needs: [prepare]
    for_each: [a, b, c, d]
    fail_fast: false
    continue_on_error: true
    run: |
      echo "item ${{ item }} here"
      test "${{ item }}" != b || exit 3
  etl:
    needs: [prepare]
    uses: ui-etl@$LIVE
  call:
    needs: [prepare]
    workflow: ui-kid@$LIVE
  report:
    needs: [sim, etl, call]
    run: echo "report done"
"""


def _publish(server: Server, spec: str) -> None:
    name = spec.split("\n", 1)[0].removeprefix("name: ").strip()
    made = server.http.post("/definitions", json={"name": name})
    assert made.status_code in (201, 409), made.text
    draft = server.http.put(
        f"/definitions/{name}/draft", content=spec, headers={"content-type": "application/yaml"}
    )
    assert draft.status_code == 200, draft.text
    published = server.http.post(f"/definitions/{name}/publish", json={})
    assert published.status_code in (200, 201), published.text
    version = int(published.json()["number"])
    moved = server.http.put(f"/definitions/{name}/tags/$LIVE", json={"version": version})
    assert moved.status_code == 200, moved.text


def _inside(inner: dict[str, float] | None, outer: dict[str, float] | None) -> bool:
    assert inner is not None and outer is not None
    return (
        outer["x"] <= inner["x"]
        and outer["y"] <= inner["y"]
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"]
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"]
    )


def test_a_fan_out_is_one_node_with_counts_a_blueprint_is_grouped_and_a_child_run_linked(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path
) -> None:
    _publish(server, KID)
    _publish(server, BLUEPRINT)
    run = server.run_and_wait(SHOWCASE)
    assert run["steps"]["sim"]["items"] == {"total": 4, "succeeded": 3, "failed": 1}, run
    assert run["steps"]["report"]["status"] == "succeeded", run
    [child] = run["children"]
    page = open_ui(server.token)
    console: list[str] = []  # a style or script the strict CSP blocked would be reported here
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    page.goto(f"/#/p/default/runs/{run['id']}")
    nodes = page.locator("#dag .dag-node")
    expect(nodes).to_have_count(len(run["steps"]))  # one node per step: no node per item
    sim = page.locator("#dag .dag-node[data-step='sim']")
    expect(sim.locator(".dag-extra")).to_have_text("3/4 ok, 1 failed")
    expect(sim.locator(".dag-status")).to_have_text("✗ failed")
    # the blueprint's steps sit inside one labelled box, and nothing else does
    group = page.locator("#dag .dag-group[data-group='etl']")
    expect(group.locator("text")).to_have_text("blueprint etl")
    box = group.locator("rect").bounding_box()
    for step in ("etl__extract", "etl__load", "etl"):  # the alias (a noop after them) too
        assert _inside(page.locator(f"#dag .dag-node[data-step='{step}'] rect").bounding_box(), box)
    for step in ("prepare", "sim", "call", "report"):
        assert not _inside(
            page.locator(f"#dag .dag-node[data-step='{step}'] rect").bounding_box(), box
        )
    expect(
        page.locator("#dag path.dag-edge[data-from='etl__extract'][data-to='etl__load']")
    ).to_have_count(1)
    page.set_viewport_size({"width": 1100, "height": 700})
    page.locator("#dag").scroll_into_view_if_needed()
    screenshot(page, tmp_path, "run-page-dag")
    docs_screenshot(page, "ui-run")
    assert console == []
    # the fan-out's drawer lists its items; the failed one is found by status, with its logs
    sim.focus()
    page.keyboard.press("Enter")
    items = page.locator("#drawer-items tbody tr")
    expect(items).to_have_count(4)
    page.get_by_label("items with status").select_option("failed")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("exited with code 3")
    page.get_by_role("button", name="logs of sim[1]").click()
    expect(page.locator("#drawer-logs-title")).to_have_text("Logs of sim[1]")
    expect(page.locator("#drawer .logs")).to_contain_text("item b here")
    expect(page.locator("#drawer .logs")).not_to_contain_text("item a here")
    page.keyboard.press("Escape")
    # the workflow: step's node links to the child run's page
    link = page.locator("#dag .dag-node[data-step='call'] a.dag-child")
    expect(link).to_contain_text(f"child run {child['run_id'][:8]}")
    link.click()
    expect(page.locator("h1")).to_contain_text(child["run_id"])
    expect(page.locator("#facts")).to_contain_text(f"from run {run['id']} (step call)")


MAKER = """\
name: ui-artifacts-{tag}
steps:
  make:
    cache: true
    run: |
      mkdir -p out
      printf '<html><script>alert(1)</script></html>' > out/report.html
      printf 'big=%s\\n' "$(head -c 70000 /dev/zero | tr '\\0' y)" >> "$LOCKSTEP_OUTPUTS"
    artifacts: {{report: out/report.html}}
"""


def test_the_drawer_downloads_an_artifact_and_an_output_and_names_a_cache_source(
    open_ui: Callable[[str | None], Page], server: Server, tmp_path: Path
) -> None:
    spec = MAKER.format(tag="drawer")
    first = server.run_and_wait(spec)
    assert first["status"] == "succeeded", first
    second = server.run_and_wait(spec)
    assert second["steps"]["make"]["cached_from"] == f"{first['id']}/make/1", second
    page = open_ui(server.token)
    page.goto(f"/#/p/default/runs/{first['id']}")
    page.get_by_role("button", name="details of make").click()
    row = page.locator("#drawer-artifacts tr[data-artifact='report']")
    expect(row).to_contain_text("out/report.html")
    with page.expect_download() as downloading:
        row.get_by_role("link", name="download report").click()
    download = downloading.value
    assert download.suggested_filename == "report.html"
    assert Path(download.path()).read_bytes() == b"<html><script>alert(1)</script></html>"
    # the API answers it as an attachment that a browser must not sniff into a page
    resp = server.http.get(f"/runs/{first['id']}/artifacts/make/report")
    assert resp.headers["content-disposition"].startswith('attachment; filename="report.html"')
    assert resp.headers["x-content-type-options"] == "nosniff"
    # an output stored by reference: a preview, and a download of the whole value
    outputs = page.locator("#drawer-outputs")
    expect(outputs).to_contain_text("y" * 100)
    with page.expect_download() as downloading:
        outputs.get_by_role("link", name="download").click()
    assert json.loads(Path(downloading.value.path()).read_bytes()) == "y" * 70_000
    resp = server.http.get(f"/runs/{first['id']}/outputs/big", params={"step": "make"})
    assert resp.headers["content-disposition"].startswith('attachment; filename="big.json"')
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert page.dialogs == []  # type: ignore[attr-defined]
    # the second run's step came from the cache: the drawer names and links the run it came from
    page.goto(f"/#/p/default/runs/{second['id']}")
    page.get_by_role("button", name="details of make").click()
    facts = page.locator("#drawer-facts")
    expect(facts).to_contain_text(f"result taken from run {first['id']} (step make/1)")
    expect(page.locator("#drawer-attempts")).to_contain_text("no attempts yet")
    facts.get_by_role("link", name=first["id"]).click()
    expect(page.locator("h1")).to_contain_text(first["id"])


HOSTILE = """\
name: ui-hostile-page
params:
  type: object
  properties:
    p: {type: string}
    q: {type: string}
    u: {type: string}
steps:
  evil:
    run: |
      echo '<script>alert(2)</script>'
      echo '"onerror=alert(3) x="'
      printf '\\033[31mred text\\033[0m plain \\033[1;32mbold green\\033[0m\\n'
      printf '\\033]8;;javascript:alert(4)\\033\\\\click me\\033]8;;\\033\\\\ done\\n'
      printf '\\033]0;pwned title\\007\\033[2J\\033[Hafter moves\\n'
      mkdir -p out
      echo hi > 'out/<img src=x onerror=alert(5)>.txt'
      echo 'link=javascript:alert(6)' >> "$LOCKSTEP_OUTPUTS"
      echo 'tag=<img src=x onerror=alert(7)>' >> "$LOCKSTEP_OUTPUTS"
    artifacts: {files: "out/*.txt"}
"""


def test_hostile_params_outputs_artifact_names_and_log_escapes_render_inert(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    params = {
        "p": "<script>alert(8)</script>",
        "q": '"onerror=alert(9) x="',
        "u": "javascript:alert(10)",
    }
    run = server.run_and_wait(HOSTILE, params)
    assert run["status"] == "succeeded", run
    page = open_ui(server.token)
    page.goto(f"/#/p/default/runs/{run['id']}")
    for value in params.values():  # shown as JSON text: quotes escaped, nothing else
        expect(page.locator("#params")).to_contain_text(json.dumps(value))
    logs = page.locator("#logs")
    expect(logs).to_contain_text("<script>alert(2)</script>")
    expect(logs).to_contain_text('"onerror=alert(3) x="')
    # SGR colours become spans with classes; OSC links and titles and cursor moves are dropped
    expect(logs.locator("span.ansi-fg-1")).to_have_text("red text")
    expect(logs.locator("span.ansi-fg-2.ansi-bold")).to_have_text("bold green")
    expect(logs).to_contain_text("click me done")
    expect(logs).to_contain_text("after moves")
    assert "\x1b" not in logs.inner_text() and "pwned" not in logs.inner_text()
    page.get_by_role("button", name="details of evil").click()
    expect(page.locator("#drawer-outputs")).to_contain_text("javascript:alert(6)")
    expect(page.locator("#drawer-outputs")).to_contain_text("<img src=x onerror=alert(7)>")
    expect(page.locator("#drawer-artifacts")).to_contain_text(
        "out/<img src=x onerror=alert(5)>.txt"
    )
    expect(page.locator("#drawer .logs span.ansi-fg-1")).to_have_text("red text")
    injected = "#main img, #main script, #main iframe, a[href^='javascript'], [onerror]"
    assert page.locator(injected).count() == 0
    assert "pwned" not in page.title()
    assert page.dialogs == []  # type: ignore[attr-defined]
    # the glob's tar.gz downloads with the hostile name inside it, as data
    resp = server.http.get(f"/runs/{run['id']}/artifacts/evil/files")
    assert resp.headers["content-disposition"].startswith('attachment; filename="files.tar.gz"')
    with tarfile.open(fileobj=io.BytesIO(resp.content)) as tar:
        assert any(n.endswith("<img src=x onerror=alert(5)>.txt") for n in tar.getnames())


def test_a_10_mb_log_line_is_cut_and_the_page_stays_usable(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    """A worker stores a line longer than 64 KiB in pieces, so the stream is what the test
    controls here: one SSE event with a 10 MB line, as a server could send it."""
    run = server.run_and_wait("name: ui-huge-line\nsteps:\n  s:\n    run: echo small\n")
    huge = "z" * 10_000_000
    events = [
        {"step": "s", "stream": "out", "text": huge},
        {"step": "s", "stream": "err", "text": "needle after the huge line"},
    ]
    body = "".join(f"id: {i}\nevent: line\ndata: {json.dumps(e)}\n\n" for i, e in enumerate(events))
    body += 'event: end\ndata: {"status": "succeeded"}\n\n'

    def stream(route: Route) -> None:
        route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body)

    page = open_ui(server.token)
    page.route(re.compile(r"/logs\?"), stream)
    page.goto(f"/#/p/default/runs/{run['id']}")
    logs = page.locator("#logs")
    expect(logs).to_contain_text("needle after the huge line")
    expect(page.locator("#logs-state")).to_have_text("run succeeded; no more lines")
    first = logs.locator(".line").first
    expect(first.locator(".text")).to_have_text("z" * 10_000)
    assert len(logs.inner_text()) < 12_000  # what is shown stays bounded
    # the page still answers: the search box filters, the steps table opens a drawer
    page.get_by_label("search log lines").first.fill("needle")
    expect(first).to_be_hidden()
    expect(logs.locator(".stderr")).to_be_visible()
    page.get_by_label("search log lines").first.fill("")
    expect(first).to_be_visible()
    more = first.get_by_role("button", name="show 1000000 more characters (9990000 left)")
    more.click()
    expect(
        first.get_by_role("button", name="show 1000000 more characters (8990000 left)")
    ).to_be_visible()
    assert len(first.locator(".text").inner_text()) == 1_010_000
    page.get_by_role("button", name="details of s").click()
    expect(page.locator("#drawer-title")).to_contain_text("Step s")


def test_a_step_printing_10_mb_on_one_line_leaves_the_page_usable(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    """The real path: the worker stores the line in 64 KiB pieces, each cut on the page."""
    spec = (
        "name: ui-real-huge-line\nsteps:\n  big:\n"
        "    run: head -c 10000000 /dev/zero | tr '\\0' q; echo; echo 'needle at the end'\n"
    )
    run = server.run_and_wait(spec, timeout=120)
    assert run["status"] == "succeeded", run
    page = open_ui(server.token)
    page.goto(f"/#/p/default/runs/{run['id']}")
    logs = page.locator("#logs")
    expect(logs).to_contain_text("needle at the end", timeout=LIVE)
    pieces = logs.locator(".line.stdout")
    assert pieces.count() > 100  # stored in pieces, not one line
    lengths = page.evaluate(
        "[...document.querySelectorAll('#logs .line .text')].map((e) => e.textContent.length)"
    )
    assert max(lengths) == 10_000  # every piece cut, so the page holds a bounded amount
    page.get_by_label("search log lines").first.fill("needle")
    expect(pieces.first).to_be_hidden()
    expect(logs.get_by_text("needle at the end")).to_be_visible()
    page.get_by_role("button", name="details of big").click()
    expect(page.locator("#drawer-title")).to_contain_text("Step big")


def test_a_viewer_sees_no_cancel_retry_or_rerun_and_an_operator_reruns(
    open_ui: Callable[[str | None], Page],
    server: Server,
    user_token: Callable[[str, str], str],
) -> None:
    run = server.run_and_wait("name: ui-rerun\nsteps:\n  s:\n    run: exit 4\n")
    assert run["status"] == "failed", run
    viewer = open_ui(user_token("val-viewer", "viewer"))
    viewer.goto(f"/#/p/default/runs/{run['id']}")
    expect(viewer.locator("#dag .dag-node[data-step='s'] .dag-status")).to_have_text("✗ failed")
    expect(viewer.locator(".actions button")).to_have_count(0)
    viewer.get_by_role("button", name="details of s").click()  # reading is for everyone
    expect(viewer.locator("#drawer-attempts tbody tr").first.locator("td").nth(3)).to_have_text("4")
    operator = open_ui(user_token("omar-operator", "operator"))
    operator.goto(f"/#/p/default/runs/{run['id']}")
    expect(operator.get_by_role("button", name="Retry run")).to_be_visible()
    expect(operator.get_by_role("button", name="Cancel run")).to_have_count(0)
    operator.get_by_role("button", name="Rerun", exact=True).click()
    expect(operator.locator("#facts")).to_contain_text(
        f"rerun · omar-operator · rerun of run {run['id']}"
    )
    expect(operator.locator("h1")).not_to_contain_text(run["id"])
