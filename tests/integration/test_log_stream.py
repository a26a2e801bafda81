"""Live logs: Server-Sent Events of every line as it is written, resumable without loss or
repetition, ending when the run ends."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.harness import Server

SPEC = """\
name: chatty
steps:
  talk:
    env: {TOKEN: "${{ secrets.STREAM_TOKEN }}"}
    run: |
      for i in 1 2 3 4 5 6; do echo "line $i"; sleep 0.3; done
      echo "secret $TOKEN" >&2
"""


def _events(resp: httpx.Response, stop_after: int | None = None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for raw in resp.iter_lines():
        if raw == "":
            if current:
                events.append(current)
                current = {}
                if stop_after is not None and len(events) >= stop_after:
                    break
            continue
        if raw.startswith(":"):
            continue
        field, _, value = raw.partition(": ")
        current[field] = json.loads(value) if field == "data" else value
    return events


def _stream(server: Server, run_id: str, **headers: str) -> Any:
    return server.http.stream(
        "GET",
        f"/runs/{run_id}/logs",
        params={"follow": "true", "step": "talk"},
        headers=headers,
        timeout=60,
    )


def test_a_live_stream_resumes_without_loss_or_repeats(server: Server) -> None:
    server.http.put("/secrets/STREAM_TOKEN", json={"value": "tok-live-9"})
    run_id = server.submit(SPEC)["id"]
    with _stream(server, run_id) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        first = _events(resp, stop_after=3)  # then the client goes away mid-run
    assert all(e["event"] == "line" for e in first)
    with _stream(server, run_id, **{"Last-Event-ID": first[-1]["id"]}) as resp:
        rest = _events(resp)
    assert rest[-1] == {"event": "end", "data": {"status": "succeeded"}}
    texts = [e["data"]["text"] for e in first + rest[:-1] if e["data"]["stream"] != "sys"]
    assert texts == [f"line {i}" for i in range(1, 7)] + ["secret ***"]
    # the same lines as the paged API, in the same order
    paged = [line["text"] for line in server.logs(run_id, "talk") if line["stream"] != "sys"]
    assert paged == texts


def test_a_stream_needs_a_token_and_a_real_run(server: Server) -> None:
    anonymous = httpx.get(
        f"{server.url}/api/v1/projects/default/runs/rnope/logs", params={"follow": "true"}
    )
    assert anonymous.status_code == 401
    missing = server.http.get("/runs/rnope/logs", params={"follow": "true"})
    assert missing.status_code == 404
    run_id = server.run_and_wait("name: quiet\nsteps:\n  a: {run: 'true'}\n")["id"]
    bad = server.http.get(
        f"/runs/{run_id}/logs", params={"follow": "true"}, headers={"Last-Event-ID": "garbage"}
    )
    assert bad.status_code == 400


BIG = """\
name: wide
steps:
  wide:
    run: [python3, -c, "for i in range(192): print(f'{i:06d}' + 'x' * 65530)"]
"""


def test_a_stream_of_megabytes_of_long_lines_delivers_every_line_once(server: Server) -> None:
    # 12 MiB of 64 KiB lines: pages are cut by bytes long before their line limit, and a page
    # cut short is not the end of the log, live or once the run has ended
    run_id = server.submit(BIG)["id"]
    live = _follow_all(server, run_id)
    assert server.run(run_id)["status"] == "succeeded"
    for events in (live, _follow_all(server, run_id)):
        assert events[-1] == {"event": "end", "data": {"status": "succeeded"}}
        texts = [e["data"]["text"] for e in events[:-1] if e["data"]["stream"] == "out"]
        assert [t[:6] for t in texts] == [f"{i:06d}" for i in range(192)]
        assert all(t == t[:6] + "x" * 65530 for t in texts)


def _follow_all(server: Server, run_id: str) -> list[dict[str, Any]]:
    with server.http.stream(
        "GET", f"/runs/{run_id}/logs", params={"follow": "true", "step": "wide"}, timeout=120
    ) as resp:
        return _events(resp)
