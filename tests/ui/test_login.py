"""Logging in to the web UI: the token goes into an HttpOnly cookie; the pages are locked down."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from playwright.sync_api import Page, expect

from tests.harness import Server


def test_admin_logs_in_and_the_session_cookie_is_httponly_strict(
    open_ui: Callable[[str | None], Page], server: Server
) -> None:
    page = open_ui(server.token)
    expect(page.locator("#who")).to_contain_text("admin")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["lockstep_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert cookies["lockstep_csrf"]["sameSite"] == "Strict"
    # the page's script cannot read the API token
    assert "lockstep_session" not in page.evaluate("document.cookie")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert "lockstep_session" not in {c["name"] for c in page.context.cookies()}


def test_a_wrong_token_shows_an_error_and_sets_no_cookie(
    open_ui: Callable[[str | None], Page],
) -> None:
    page = open_ui(None)
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#login-error")).to_contain_text("Login failed")
    assert page.context.cookies() == []


def test_ui_pages_carry_a_strict_csp_and_security_headers(server: Server) -> None:
    for path in ("/", "/ui/static/js/main.js"):
        resp = httpx.get(server.url + path)
        assert resp.status_code == 200, path
        csp = resp.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "no-referrer"
    # nothing inline for the CSP to have to allow
    assert "<script>" not in httpx.get(server.url + "/").text


def test_a_cookie_session_change_without_the_csrf_token_is_refused(server: Server) -> None:
    with httpx.Client(base_url=server.url) as browser_like:
        login = browser_like.post("/ui/login", json={"token": server.token})
        assert login.status_code == 200, login.text
        set_cookie = login.headers.get_list("set-cookie")
        session = next(c for c in set_cookie if c.startswith("lockstep_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session
        spec = "name: csrf\nsteps:\n  a:\n    run: echo hi\n"
        url = "/api/v1/projects/default/runs"
        refused = browser_like.post(url, json={"spec": spec})
        assert refused.status_code == 403
        assert "CSRF" in refused.json()["detail"]
        # reading needs no CSRF token; a change with it goes through
        assert browser_like.get(url).status_code == 200
        csrf = browser_like.cookies["lockstep_csrf"]
        ok = browser_like.post(url, json={"spec": spec}, headers={"x-csrf-token": csrf})
        assert ok.status_code == 201, ok.text
    # bearer-token clients are unchanged: no CSRF token needed
    assert server.http.post("/runs", json={"spec": spec}).status_code == 201


def test_login_from_another_site_is_refused(server: Server) -> None:
    resp = httpx.post(
        server.url + "/ui/login", json={"token": server.token}, headers={"origin": "https://evil"}
    )
    assert resp.status_code == 403
    assert "set-cookie" not in resp.headers
