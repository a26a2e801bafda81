"""The audit log a page at a time: each entry has an id, and ``before`` the last one of a
page gives the next, older page, with no entry twice or skipped."""

from __future__ import annotations

from tests.harness import Server


def test_the_audit_log_pages_by_entry_id(server: Server) -> None:
    for n in range(6):  # six audited changes of the project at least
        made = server.http.put("/members", json={"user": f"audit-pager-{n}", "role": "viewer"})
        assert made.status_code in (200, 201), made.text
    whole = server.http.get("/audit", params={"limit": 6}).json()
    first = server.http.get("/audit", params={"limit": 3}).json()
    assert first == whole[:3]
    second = server.http.get("/audit", params={"limit": 3, "before": first[-1]["id"]}).json()
    assert second == whole[3:6]
    ids = [e["id"] for e in whole]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 6
    everything = server.api.get("/audit", params={"limit": 2, "before": ids[0]}).json()
    assert all(e["id"] < ids[0] for e in everything)
    assert server.http.get("/audit", params={"before": 0}).status_code == 422
