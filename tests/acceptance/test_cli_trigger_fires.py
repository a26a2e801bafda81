"""`lockstep triggers fire|history` and `lockstep schedules backfill` as a user types them,
against a running server: a manual fire is a run caused by the user and the trigger, a
backfill makes one run per fire time of its range (and none the second time), every fire —
a schedule's too — is in the trigger's history, and a wrong request is one line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from tests.harness import Server, cli, wait_for

SPEC = """\
name: hourly
params:
  type: object
  properties:
    when: {type: string, default: never}
    n: {type: integer, default: 0, minimum: 0}
steps:
  a:
    run: echo "${{ params.when }} ${{ params.n }}"
triggers:
  tick:
    every: 1h
    overlap: allow
    params: {when: '${{ schedule.time }}'}
  broken:
    every: 1h
    params: {n: '${{ schedule.time }}'}
  lone:
    every: 1h
    overlap: skip
    params: {when: '${{ schedule.time }}'}
  hook:
    kind: webhook
    secret: HOOK_KEY
"""

OTHER = """\
name: other
steps:
  a:
    run: "true"
triggers:
  tick:
    cron: '0 3 * * *'
"""


def _iso(when: datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}"


def _go_live(home: Path, tmp_path: Path, name: str, text: str) -> None:
    file = tmp_path / f"{name}.yaml"
    file.write_text(text)
    published = cli(home, "publish", str(file))
    assert published.returncode == 0, published.stderr
    live = cli(home, "tags", "set", name, "$LIVE", "1")
    assert live.returncode == 0, live.stderr


def _runs(home: Path, trigger: str) -> list[dict[str, Any]]:
    listed = cli(home, "runs", "list", "--trigger", trigger, "--workflow", "hourly", "--json")
    assert listed.returncode == 0, listed.stderr
    runs: list[dict[str, Any]] = json.loads(listed.stdout)
    return runs


def _scheduled(home: Path) -> list[str]:
    return sorted(
        r["cause"]["schedule_time"] for r in _runs(home, "tick") if r["cause"]["kind"] == "schedule"
    )


def _settled(home: Path, trigger: str, actions: int | None) -> int:
    """Wait until the trigger's Schedule has taken ``actions`` actions (any number: None)
    and none still runs: every fire it started has decided (a run, or none). Returns how many
    fire times its overlap policy skipped."""
    address = json.loads((home / "server.json").read_text())["temporal"]

    async def state() -> tuple[int, int, int]:
        client = await Client.connect(address)
        async for listed in await client.list_schedules():
            if listed.id.startswith(f"lockstep-trigger-default-hourly-{trigger}-"):
                info = (await client.get_schedule_handle(listed.id).describe()).info
                return info.num_actions, len(info.running_actions), info.num_actions_skipped_overlap
        raise AssertionError(f"no Schedule for {trigger}")

    seen: list[tuple[int, int, int]] = []

    def settled() -> bool:
        seen.append(asyncio.run(state()))
        return seen[-1][1] == 0 and actions in (None, seen[-1][0])

    try:
        wait_for(settled, timeout=60, every=0.5, what=f"{actions} settled fires of {trigger}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: (actions, running, skipped) {seen[-1]}") from None
    return seen[-1][2]


@pytest.mark.timeout(420)  # two backfills through Temporal's scheduler, on a loaded machine
def test_fire_backfill_and_history_from_the_cli(home: Path, tmp_path: Path) -> None:
    server = Server(home)
    server.start()
    try:
        _go_live(home, tmp_path, "hourly", SPEC)

        # a manual fire, by the trigger's id alone (unique in the project), params typed as
        # `lockstep run -p` types them
        fired = cli(home, "triggers", "fire", "tick", "-p", "n=3")
        assert fired.returncode == 0, fired.stderr
        run_id = fired.stdout.strip()
        run = json.loads(cli(home, "runs", "show", run_id, "--json").stdout)
        cause = {k: v for k, v in run["cause"].items() if v is not None}
        assert cause == {"kind": "manual", "trigger": "tick", "user": "admin"}
        assert run["params"]["n"] == 3 and run["params"]["when"] != "never"
        shown = cli(home, "runs", "show", run_id)
        assert "cause: manual tick by admin" in shown.stdout

        # three whole hours that have passed: `every: 1h` fires on each
        first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
        hours = [_iso(first + timedelta(hours=h)) for h in range(3)]
        span = ["--from", hours[0], "--to", hours[-1]]
        back = cli(home, "schedules", "backfill", "tick", *span)
        assert back.returncode == 0, back.stderr
        assert back.stdout.split() == hours
        # Temporal's scheduler takes a backfill up in its own time: seconds alone, more than
        # a minute on a loaded machine (seen: 28 s, 54 s, then over 60 s in three full runs)
        wait_for(lambda: _scheduled(home) == hours, timeout=180, what="a run per fire time")
        _settled(home, "tick", 3)

        # the same range again and one hour more: only the new hour gets a run (the times
        # of a backfill are taken in order, so its run means the others were decided)
        hours.append(_iso(first + timedelta(hours=3)))
        again = cli(home, "schedules", "backfill", "hourly", "tick", *span[:3], hours[-1])
        assert again.returncode == 0, again.stderr
        wait_for(lambda: _scheduled(home) == hours, timeout=180, what="the new hour's run")
        _settled(home, "tick", None)
        assert _scheduled(home) == hours
        for listed in _runs(home, "tick"):
            assert cli(home, "runs", "show", listed["id"]).returncode == 0

        history = json.loads(cli(home, "triggers", "history", "tick", "--json").stdout)
        keys = sorted(f["key"] for f in history if f["cause"]["kind"] == "schedule")
        assert keys == hours
        assert {f["status"] for f in history} == {"fired"}
        assert run_id in {f["run_id"] for f in history}
        table = cli(home, "triggers", "history", "hourly", "tick", COLUMNS="200")
        assert table.returncode == 0, table.stderr
        assert all(h in table.stdout for h in hours) and run_id in table.stdout

        # a backfill follows the trigger's overlap policy: with `skip`, the times of the
        # range that come while the first one's run runs make no run
        lone = cli(home, "schedules", "backfill", "lone", *span)
        assert lone.returncode == 0, lone.stderr
        assert _settled(home, "lone", 1) == 2
        assert [r["cause"]["schedule_time"] for r in _runs(home, "lone")] == hours[:1]

        # a schedule fire the run service refuses is in the history, and the list says why
        bad = cli(home, "schedules", "backfill", "broken", "--from", hours[0], "--to", hours[0])
        assert bad.returncode == 0, bad.stderr
        _settled(home, "broken", 1)
        failed = json.loads(cli(home, "triggers", "history", "broken", "--json").stdout)
        assert [(f["key"], f["status"], f["run_id"]) for f in failed] == [
            (hours[0], "failed", None)
        ]
        assert "params/n" in failed[0]["error"]
        rows = json.loads(cli(home, "triggers", "list", "--json").stdout)
        last = {r["trigger"]: r for r in rows}
        assert (
            last["broken"]["last_error"] == failed[0]["error"]
            and last["broken"]["last_fire"] is None
        )
        assert last["tick"]["last_fire"] and last["tick"]["last_error"] is None
    finally:
        server.stop()


def test_wrong_fires_and_backfills_are_one_line(home: Path, tmp_path: Path) -> None:
    server = Server(home)
    server.start()
    try:
        _go_live(home, tmp_path, "hourly", SPEC)
        _go_live(home, tmp_path, "other", OTHER)
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

        def refused(*args: str, code: int = 2) -> str:
            got = cli(home, *args)
            assert got.returncode == code, (args, got.stdout, got.stderr)
            assert got.stderr.count("\n") == 1, got.stderr
            return got.stderr

        earlier, later = _iso(now - timedelta(hours=5)), _iso(now - timedelta(hours=2))
        assert "is before --from" in refused(
            "schedules", "backfill", "hourly", "tick", "--from", later, "--to", earlier
        )
        assert "is in the future" in refused(
            "schedules", "backfill", "hourly", "tick", "--from", earlier,
            "--to", _iso(now + timedelta(hours=3)),
        )  # fmt: skip
        too_many = _iso(now - timedelta(hours=1200))
        assert "more than 1000 fire times" in refused(
            "schedules", "backfill", "hourly", "tick", "--from", too_many, "--to", earlier
        )
        assert "only a schedule has fire times" in refused(
            "schedules", "backfill", "hourly", "hook", "--from", earlier, "--to", later
        )
        assert "'yesterday' is not a time" in refused(
            "schedules", "backfill", "hourly", "tick", "--from", "yesterday", "--to", later
        )
        # `tick` is in two definitions: which one is asked for
        ambiguous = refused("triggers", "pause", "tick")
        assert "trigger 'tick' is in 2 definitions (hourly, other)" in ambiguous
        assert "lockstep triggers pause hourly tick" in ambiguous
        assert "no registered trigger 'nope'" in refused("triggers", "history", "nope", code=1)
        # a param of the wrong type is refused before anything fires
        assert "param 'n'" in refused("triggers", "fire", "hourly", "tick", "-p", "n=many")
        # a fire the run service refuses says why there is no run
        below = refused("triggers", "fire", "hourly", "tick", "-p", "n=-1", code=1)
        assert "trigger tick of hourly made no run (failed:" in below
        history = json.loads(cli(home, "triggers", "history", "hourly", "tick", "--json").stdout)
        assert [f["status"] for f in history] == ["failed"]
        assert json.loads(cli(home, "runs", "list", "--json").stdout) == []
    finally:
        server.stop()
