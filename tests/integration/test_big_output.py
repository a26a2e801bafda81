"""A step that prints 1 GB: every byte is stored, and the server's memory stays flat."""

from __future__ import annotations

import pytest

from tests.harness import Server, wait_for

pytestmark = pytest.mark.slow


def _vm(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(field)


def test_one_gigabyte_of_stdout_is_stored_without_holding_it_in_memory(server: Server) -> None:
    assert server.proc is not None
    before = _vm(server.proc.pid, "VmRSS")
    # 10 million lines of 100 bytes
    spec = """
name: chatty
steps:
  flood:
    run: yes "$(printf 'x%.0s' $(seq 99))" | head -c 1000000000
    timeout: 5m
"""
    run_id = server.submit(spec)["id"]
    peak = before

    def finished() -> bool:
        nonlocal peak
        peak = max(peak, _vm(server.proc.pid, "VmRSS"))  # type: ignore[union-attr]
        return server.run(run_id)["status"] in ("succeeded", "failed", "cancelled")

    wait_for(finished, timeout=300, every=0.2, what="the flood to finish")
    run = server.run(run_id)
    assert run["status"] == "succeeded", run
    log = server.home / "logs" / run["id"] / "flood" / "1.log"
    assert log.stat().st_size > 1_000_000_000
    # the resident memory of the server (and its worker) grew by far less than the output
    assert peak - before < 100 * 1024 * 1024, (before, peak)
    page = server.http.get(f"/runs/{run['id']}/logs", params={"step": "flood"}).json()
    assert page["lines"][1]["text"] == "x" * 99
