"""`lockstep doctor` checks a deployment end to end and says what to fix: all green on a
working server; a worker of another version fails it (exit 1) naming the worker; only an
administrator may ask."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lockstep import __version__
from lockstep.storage.migrate import HEAD_REVISION
from tests.harness import Server, cli


def test_doctor_passes_on_a_working_server_and_names_what_to_fix(home: Path) -> None:
    server = Server(home)
    server.start()
    try:
        ok = cli(home, "doctor")
        assert ok.returncode == 0, ok.stdout + ok.stderr
        lines = ok.stdout.splitlines()
        assert any(line.startswith("✓ engine: Temporal at 127.0.0.1:") for line in lines), lines
        assert f"✓ database: migrated to {HEAD_REVISION}" in ok.stdout
        assert "✓ artifact store: a probe was written, read back and removed" in ok.stdout
        assert "✓ pool default: 1 live worker(s)" in ok.stdout
        assert (
            "✓ clocks: this server, the database and 1 live worker(s) agree within 5 s" in ok.stdout
        )
        assert not any(line.startswith("✗") for line in lines)
        probes = [p for p in (home / "blobs").glob("doctor/**/*") if p.is_file()]
        assert probes == []  # the probe is gone

        old = {
            "identity": "old-box",
            "pool": "default",
            "host": "old-host",
            "pid": 7,
            "capacity": 1,
            "running": 0,
            "version": "0.0.1",
            "labels": {},
        }
        assert server.api.post("/worker/report", json=old).status_code == 204
        bad = cli(home, "doctor", "--json")
        assert bad.returncode == 1, bad.stderr
        report = json.loads(bad.stdout)
        assert report["ok"] is False
        versions = next(c for c in report["checks"] if c["name"] == "versions")
        assert versions["ok"] is False and "old-box (0.0.1); upgrade them" in versions["detail"]

        # a worker whose clock is 40 s slow says so by its report's time: doctor names it
        slow = datetime.now(UTC) - timedelta(seconds=40)
        late = old | {"identity": "slow-box", "version": __version__, "sent_at": slow.isoformat()}
        assert server.api.post("/worker/report", json=late).status_code == 204
        clocks = next(c for c in _doctor(home)["checks"] if c["name"] == "clocks")
        assert clocks["ok"] is False
        assert "worker slow-box's clock is 40." in clocks["detail"]
        assert "s behind this server's; sync the hosts' clocks" in clocks["detail"]
        # a time without a zone, or none at all, is not a clock reading: nothing is claimed
        for sent in ("2026-01-01T00:00:00", None):
            assert server.api.post("/worker/report", json=late | {"sent_at": sent}).is_success
        clocks = next(c for c in _doctor(home)["checks"] if c["name"] == "clocks")
        assert clocks["ok"] is True, clocks
        bad = server.api.post("/worker/report", json=late | {"sent_at": "yesterday"})
        assert bad.status_code == 422

        made = server.api.post("/tokens", json={"name": "d", "user": "doctor-viewer"})
        assert made.status_code == 201, made.text
        denied = cli(home, "doctor", LOCKSTEP_TOKEN=made.json()["token"], LOCKSTEP_URL=server.url)
        assert denied.returncode != 0
        assert denied.stderr.strip().count("\n") == 0
        assert "only a server administrator may do this" in denied.stderr
    finally:
        server.stop()


def _doctor(home: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(cli(home, "doctor", "--json").stdout)
    return report
