"""``/metrics`` in Prometheus' text format: the figures follow what happens (a run that
finishes counts under its status, the server's own worker is live with its slots), and only a
server administrator may read them (they name every project)."""

from __future__ import annotations

import re

import httpx

from tests.harness import Server

SAMPLE = re.compile(r"^([a-z_]+)(?:\{([^}]*)\})? (-?[0-9.e+-]+)$")


def _scrape(server: Server) -> dict[tuple[str, str], float]:
    resp = httpx.get(
        f"{server.url}/metrics", headers={"authorization": f"Bearer {server.token}"}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[tuple[str, str], float] = {}
    for line in resp.text.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP lockstep_", "# TYPE lockstep_")), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        samples[(match[1], match[2] or "")] = float(match[3])
    return samples


def test_metrics_count_runs_by_status_and_the_live_workers(server: Server) -> None:
    key = ("lockstep_runs", 'project="default",status="failed"')
    ran = ("lockstep_step_duration_seconds_count", 'pool="default"')
    waited = ("lockstep_step_queue_wait_seconds_count", 'pool="default"')
    first = _scrape(server)
    run = server.run_and_wait("name: metric-fail\nsteps:\n  a:\n    run: exit 4\n")
    assert run["status"] == "failed"
    after = _scrape(server)
    assert after[key] == first.get(key, 0.0) + 1
    # the attempt is timed in the pool's histograms: every bucket up to +Inf holds it
    assert after[ran] == first.get(ran, 0.0) + 1 and after[waited] == first.get(waited, 0.0) + 1
    inf = ("lockstep_step_duration_seconds_bucket", 'pool="default",le="+Inf"')
    assert after[inf] == after[ran] >= after[("lockstep_step_duration_seconds_bucket",
                                              'pool="default",le="3600"')]  # fmt: skip
    assert after[("lockstep_step_duration_seconds_sum", 'pool="default"')] > 0
    assert after[("lockstep_engine_probe_seconds", "")] >= 0  # the engine answered
    live = {labels: n for (name, labels), n in after.items() if name == "lockstep_workers_live"}
    assert live.get('pool="default"', 0) >= 1, live
    assert after[("lockstep_worker_slots", 'pool="default"')] >= 1
    assert after[("lockstep_db_scrape_seconds", "")] >= 0


def test_metrics_are_for_administrators_only(server: Server) -> None:
    made = server.api.post("/tokens", json={"name": "m", "user": "metrics-viewer"})
    assert made.status_code == 201, made.text
    assert server.http.put("/members", json={"user": "metrics-viewer", "role": "admin"}).is_success
    for headers in ({}, {"authorization": f"Bearer {made.json()['token']}"}):
        resp = httpx.get(f"{server.url}/metrics", headers=headers, timeout=30)
        assert resp.status_code in (401, 403), resp.status_code
        assert "lockstep_runs" not in resp.text
