"""One damaged row in the metadata DB costs only its own record: lists, the other runs and
server start-up keep working, and the damage is reported on the run it hit."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.harness import Server, cli

SPEC = 'name: fine\nsteps:\n  a:\n    run: echo "x=1" >> "$LOCKSTEP_OUTPUTS"\n'


def _sql(home: Path, statement: str, *args: object) -> None:
    """``statement`` run as damage would be done: past the triggers that freeze finished runs."""
    with sqlite3.connect(home / "lockstep.db") as db:
        db.execute("PRAGMA busy_timeout = 10000")
        triggers = list(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
        for name, _ in triggers:
            db.execute(f'DROP TRIGGER "{name}"')
        db.execute(statement, args)
        for _, sql in triggers:
            db.execute(sql)


def _queue_copy(home: Path, run_id: str, new_id: str, spec_text: str) -> None:
    """A queued run that has no workflow yet, whose stored spec is ``spec_text``."""
    with sqlite3.connect(home / "lockstep.db") as db:
        db.execute("PRAGMA busy_timeout = 10000")
        cols = [r[1] for r in db.execute("PRAGMA table_info(runs)")]
        values = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        row = dict(zip(cols, values, strict=True))
        row.update(
            id=new_id, status="queued", spec_text=spec_text, idempotency_key=None, finished_at=None
        )
        row.update(started_at=None, outputs_json=None)
        marks = ", ".join("?" for _ in cols)
        db.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({marks})", list(row.values()))


def test_damaged_rows_cost_only_their_own_records(home: Path) -> None:
    server = Server(home)
    server.start()
    try:
        ids = [server.run_and_wait(SPEC)["id"] for _ in range(5)]
        bad_time, bad_json, bad_status, bad_step, healthy = ids
        _sql(home, "UPDATE runs SET finished_at = 'yesterday-ish' WHERE id = ?", bad_time)
        _sql(home, "UPDATE runs SET params_json = '{\"who\": ' WHERE id = ?", bad_json)
        _sql(home, "UPDATE runs SET status = 'exploded' WHERE id = ?", bad_status)
        _sql(home, "UPDATE runs SET version = 'seven' WHERE id = ?", healthy)  # read by pydantic
        _sql(
            home,
            "UPDATE step_states SET outputs_json = '[[', started_at = '13:00' WHERE run_id = ?",
            bad_step,
        )

        listed = server.http.get("/runs")
        assert listed.status_code == 200, listed.text
        by_id = {r["id"]: r for r in listed.json()["items"]}
        assert set(ids) <= set(by_id)
        assert by_id[bad_time]["status"] == "succeeded"
        assert by_id[bad_time]["finished_at"] is None
        assert "damaged record: finished_at is not a timestamp" in by_id[bad_time]["error"]
        assert by_id[bad_status]["status"] == "damaged"
        assert "status is unknown ('exploded')" in by_id[bad_status]["error"]

        shown = server.run(bad_json)
        assert shown["params"] == {} and "params is not JSON" in shown["error"]
        assert shown["steps"]["a"]["outputs"] == {"x": "1"}  # what is intact is still shown
        step = server.run(bad_step)["steps"]["a"]
        assert step["outputs"] is None and step["started_at"] is None
        assert "outputs is not JSON" in step["error"]
        assert "started_at is not a timestamp" in step["error"]
        assert server.run(healthy)["error"].startswith("damaged record: it cannot be read")

        # the CLI, as a user reads it: the list and the damaged run, each error on its own line
        listing = cli(home, "runs", "list")
        assert listing.returncode == 0, listing.stderr
        assert bad_status in listing.stdout and "damaged" in listing.stdout
        show = cli(home, "runs", "show", bad_time)
        assert show.returncode == 0, show.stderr
        errors = [line for line in show.stdout.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "finished_at is not a timestamp" in errors[0]
        # its logs are still there, and a follower is not left waiting on an unknown status
        follow = cli(home, "runs", "logs", bad_status, "-f", timeout=60)
        assert follow.returncode == 1, follow.stderr  # not a success: nobody knows its status
        assert "exit code 0" in follow.stdout
        waited = cli(home, "runs", "wait", bad_status, timeout=60)
        assert waited.returncode == 1 and "damaged" in waited.stdout, waited.stderr

        # a queued run whose stored spec no longer loads: the server starts all the same,
        # fails that run saying why, and runs the next workflow
        _queue_copy(home, bad_time, "R-unloadable-spec", "steps: [this is: not a workflow")
        server.stop()
        server.start()
        failed = server.wait("R-unloadable-spec", timeout=60)
        assert failed["status"] == "failed"
        assert failed["error"].startswith("damaged record: the stored run no longer loads (")
        assert failed["error"].endswith("submit it again")
        assert "\n" not in failed["error"], failed["error"]
        assert server.run_and_wait(SPEC)["status"] == "succeeded"
        again = json.loads(cli(home, "runs", "list", "--json").stdout)
        assert {r["id"] for r in again} >= {*ids, "R-unloadable-spec"}
    finally:
        server.stop()
