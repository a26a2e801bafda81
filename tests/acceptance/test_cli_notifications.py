"""`lockstep notifications …` as a user types them, against a running server whose runs
notify real receivers on loopback (a Slack-shaped HTTP endpoint, a generic webhook, an
aiosmtpd SMTP server with STARTTLS), allowed explicitly with LOCKSTEP_OUTBOUND_ALLOW."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import Server, cli, wait_for
from tests.receivers import Call, SmtpReceiver, http_receiver

PUBLIC = "https://ci.example.com"
TOKEN = "tok-4f9a-very-secret"
LEAKS = """\
name: leaky
notify:
  on: [failed]
  channel: chat
steps:
  push:
    env:
      TOKEN: ${{ secrets.DEPLOY_TOKEN }}
    run: |
      echo "logging in with $TOKEN" >&2
      exit 3
"""
FINE = "name: fine\nsteps:\n  a:\n    run: 'true'\n"


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver(tmp_path_factory.mktemp("smtp"), "robot", "mail-pass-123")
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpReceiver) -> Iterator[Server]:
    srv = Server(
        tmp_path_factory.mktemp("notify-home"),
        LOCKSTEP_OUTBOUND_ALLOW="127.0.0.1/32",
        LOCKSTEP_PUBLIC_URL=PUBLIC,
        LOCKSTEP_NOTIFY_BACKOFF="0.3",
        LOCKSTEP_NOTIFY_INTERVAL="0.1",
        SSL_CERT_FILE=str(smtp.cert),  # the server trusts the test SMTP server's certificate
    )
    srv.start()
    yield srv
    srv.stop()


def _ok(server: Server, *args: str, input: str | None = None) -> str:
    proc = cli(server.home, *args, input=input, COLUMNS="200")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout + proc.stderr


def _deliveries(server: Server) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(_ok(server, "notifications", "deliveries", "--json"))
    return rows


def _row(server: Server, run_id: str, status: str | None = None) -> dict[str, Any] | None:
    """The run's delivery in the log (with ``status``), or None."""
    found = [r for r in _deliveries(server) if r["run_id"] == run_id]
    return next((r for r in found if status in (None, r["status"])), None)


def test_a_failed_run_tells_slack_and_email_its_status_and_link_with_the_secret_masked(
    server: Server, smtp: SmtpReceiver
) -> None:
    with http_receiver() as slack:
        _ok(server, "secrets", "set", "DEPLOY_TOKEN", input=TOKEN)
        _ok(server, "secrets", "set", "SMTP_PASSWORD", input="mail-pass-123")
        _ok(server, "notifications", "channels", "add", "chat", "slack", "--url", slack.url)
        _ok(
            server,
            *("notifications", "channels", "add", "mail", "email", "--host", "127.0.0.1"),
            *("--port", str(smtp.port), "--from", "lockstep@example.com"),
            *("--to", "ops@example.com", "--username", "robot", "--password", "SMTP_PASSWORD"),
        )
        said = _ok(server, "notifications", "subscribe", "mail", "--on", "run.failed")
        assert "run.failed -> mail" in said

        run = server.run_and_wait(LEAKS)
        assert run["status"] == "failed"
        link = f"{PUBLIC}/runs/{run['id']}"

        # the workflow's own notify: told the Slack channel
        (call,) = wait_for(lambda: slack.calls, what="the Slack message")
        assert call.body["text"] == f"Run {run['id']} of leaky failed {link}"
        sent = json.dumps(call.body)
        assert TOKEN not in sent and "logging in with ***" in sent
        # the subscription sent mail
        (mail,) = wait_for(lambda: smtp.messages, what="the email")
        assert mail["Subject"] == f"[lockstep] Run {run['id']} of leaky failed"
        body = mail.get_payload(decode=True).decode()
        assert "status: failed" in body and link in body
        assert "stderr: logging in with ***" in body and TOKEN not in body

        rows = wait_for(
            lambda: [r for r in _deliveries(server) if r["run_id"] == run["id"]],
            what="the delivery log",
        )
        wait_for(
            lambda: all(r["status"] == "delivered" for r in _deliveries(server)),
            what="both delivered",
        )
        assert sorted((r["channel"], r["event"], r["source"][:12]) for r in rows) == [
            ("chat", "run.failed", "workflow"),
            ("mail", "run.failed", "subscription"),
        ]
        table = _ok(server, "notifications", "deliveries")
        assert "delivered" in table and run["id"] in table


def test_a_receiver_that_is_down_gets_retries_and_the_run_is_unaffected(server: Server) -> None:
    state = {"up": False}

    def answer(call: Call, n: int) -> tuple[int, Any]:
        return (200, {}) if state["up"] else (503, {"down": "for maintenance"})

    with http_receiver(answer) as hook:
        _ok(server, "secrets", "set", "HOOK_KEY", input="whsec-abcdef")
        _ok(
            server,
            *("notifications", "channels", "add", "ops", "webhook", "--url", hook.url),
            *("--secret", "HOOK_KEY"),
        )
        _ok(
            server,
            "notifications",
            "subscribe",
            "ops",
            "--on",
            "run.succeeded",
            "--definition",
            "fine",
        )
        run = server.run_and_wait(FINE)
        assert run["status"] == "succeeded" and run["error"] is None

        row = wait_for(
            lambda: (r := _row(server, run["id"])) and r["attempts"] >= 2 and r,
            what="retries in the delivery log",
        )
        assert row["status"] == "pending"
        assert row["last_error"] == 'HTTP 503: {"down": "for maintenance"}'
        assert server.run(run["id"])["status"] == "succeeded"

        state["up"] = True
        done = wait_for(
            lambda: _row(server, run["id"], "delivered"),
            what="the delivery once the receiver is back",
        )
        assert done["attempts"] >= 3 and done["last_error"] is None
        assert hook.calls[-1].body["subject"]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["subscribe", "chat", "--on", "run.faild"],
            "unknown event 'run.faild'; did you mean 'run.failed'?",
        ),
        (
            ["channels", "add", "m2", "email", "--host", "smtp.example.com", "--from",
             "a@example.com", "--to", "b@example.com", "--username", "u", "--password",
             "hunter2!"],
            "email channel: 'password' must name a project secret",
        ),
        (
            ["channels", "add", "meta", "webhook", "--url", "http://169.254.169.254/",
             "--secret", "HOOK_KEY"],
            "'url' points at 169.254.169.254, a link-local address",
        ),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line_and_changes_nothing(
    server: Server, args: list[str], said: str
) -> None:
    before = _ok(server, "notifications", "channels", "list", "--json")
    proc = cli(server.home, "notifications", *args)
    assert proc.returncode != 0
    assert said in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert _ok(server, "notifications", "channels", "list", "--json") == before
