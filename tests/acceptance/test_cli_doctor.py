"""`lockstep doctor` checks a deployment end to end and says what to fix: all green on a
working server; a worker of another version fails it (exit 1) naming the worker; only an
administrator may ask."""

from __future__ import annotations

import json
from pathlib import Path

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

        made = server.api.post("/tokens", json={"name": "d", "user": "doctor-viewer"})
        assert made.status_code == 201, made.text
        denied = cli(home, "doctor", LOCKSTEP_TOKEN=made.json()["token"], LOCKSTEP_URL=server.url)
        assert denied.returncode != 0
        assert denied.stderr.strip().count("\n") == 0
        assert "only a server administrator may do this" in denied.stderr
    finally:
        server.stop()
