"""kill -9 of the server (and its embedded Temporal) in the middle of a wide fan-out loses no
item, no attempt record and no execution: every item that ran is on record as often as it ran."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Server, wait_for

pytestmark = pytest.mark.slow

ITEMS = 230  # two batches: items 0-199 in one child workflow, 200-229 in another


def _items(server: Server, run_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while page := server.http.get(
        f"/runs/{run_id}/steps/each/items", params={"offset": len(found), "limit": 100}
    ).json():
        found += page
    return found


def test_a_server_killed_mid_fan_out_resumes_and_every_execution_is_recorded(
    home: Path, tmp_path: Path
) -> None:
    ran = tmp_path / "executions"
    ran.touch()
    spec = f"""
name: wide-crash
steps:
  each:
    for_each: [{", ".join(str(i) for i in range(ITEMS))}]
    max_parallel: 16
    run: echo "${{{{ index }}}}" >> {ran}; sleep 0.2
"""
    server = Server(home, heartbeat_timeout=3)
    server.start()
    try:
        run_id = server.submit(spec)["id"]
        wait_for(
            lambda: len(ran.read_text().split()) >= 40, timeout=60, what="40 items to have run"
        )
        server.kill9()
        server.start()
        run = server.wait(run_id, timeout=180)
        assert run["status"] == "succeeded", run["error"]
        assert run["steps"]["each"]["items"] == {"total": ITEMS, "succeeded": ITEMS}
        executions = Counter(int(i) for i in ran.read_text().split())
        assert set(executions) == set(range(ITEMS))  # every item ran
        items = _items(server, run_id)
        assert [i["index"] for i in items] == list(range(ITEMS))
        # every execution has its attempt on record: the ones cut off by the crash too
        # every execution has its attempt on record (an attempt scheduled but cut off before
        # its process started is on record too, as lost)
        unrecorded = [i for i in items if i["attempts"] < executions[i["index"]]]
        assert not unrecorded, [(i["index"], i["history"]) for i in unrecorded[:3]]
        for item in items:
            assert len(item["history"]) == item["attempts"]
            for lost in item["history"][:-1]:
                assert lost["status"] == "failed" and "worker" in lost["error"], lost
        assert all(i["history"][-1]["status"] == "succeeded" for i in items)
    finally:
        server.stop()
