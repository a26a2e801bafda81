"""Notification channels and the sender against real receivers on loopback (an HTTP endpoint,
an aiosmtpd SMTP server with STARTTLS and a password), a real metadata database, and the real
outbound guard: what a receiver gets, what the delivery log says, what is refused."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lockstep.errors import InvalidRequest
from lockstep.net.addresses import OutboundPolicy
from lockstep.secrets.crypto import SecretBox
from lockstep.services.notification_sender import Sender
from lockstep.services.notifications import DeliveryInfo, NotificationService
from lockstep.settings import Settings
from lockstep.storage import secrets as secret_store
from lockstep.storage.database import Database
from lockstep.storage.logs import DirectoryLogStore
from tests.receivers import Call, HttpReceiver, Redirect, SmtpReceiver, http_receiver

LOOPBACK_ONE = OutboundPolicy(Settings(outbound_allow="127.0.0.1/32").outbound_allow)
SIGNING_KEY = "whsec-0123456789"
LEAKED = "hunter2-very-secret"
FAILED_RUN = {
    "run_id": "r-20260101-abc",
    "definition": "deploy",
    "status": "failed",
    "error": f"step 'push' failed: login with {LEAKED} refused\x1b[31m",
}


@dataclass
class Notify:
    """The notification service and a sender over one database, as a server has them."""

    db: Database
    box: SecretBox
    service: NotificationService
    sender: Sender

    def set_secret(self, name: str, value: str) -> None:
        with self.db.session() as s:
            secret_store.set_secret(s, self.box, "default", name, value, by="test")

    async def log(self) -> list[DeliveryInfo]:
        return await self.service.deliveries("default")

    async def deliver_until(
        self, done: Callable[[list[DeliveryInfo]], bool], timeout: float = 30
    ) -> list[DeliveryInfo]:
        """Run the sender's passes until the delivery log satisfies ``done``."""
        deadline = time.monotonic() + timeout
        while True:
            await self.sender.deliver_due()
            rows = await self.log()
            if done(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; the delivery log: {rows}")
            await asyncio.sleep(0.02)


def _notify(db: Database, home: Path, policy: OutboundPolicy, **settings: Any) -> Notify:
    box = SecretBox.from_settings(None, home)
    config = Settings(home=home, notify_backoff=0.05, **settings)
    sender = Sender(db, box, DirectoryLogStore(home / "logs"), policy, config)
    sender.api_url = "http://lockstep.example"
    return Notify(db, box, NotificationService(db, policy), sender)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.open()
    yield db
    db.close()


@pytest.fixture
def notify(sqlite: Database, tmp_path: Path) -> Notify:
    return _notify(sqlite, tmp_path, LOOPBACK_ONE)


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    with http_receiver() as service:
        yield service


async def _webhook(notify: Notify, url: str, events: list[str] | None = None) -> None:
    notify.set_secret("HOOK_KEY", SIGNING_KEY)
    settings = {"url": url, "secret": "HOOK_KEY"}
    await notify.service.add_channel("default", "hook", "webhook", settings, by="ann")
    await notify.service.subscribe("default", "hook", events or ["run.failed"])


async def test_a_webhook_body_is_signed_with_the_project_secret(
    notify: Notify, receiver: HttpReceiver
) -> None:
    await _webhook(notify, f"{receiver.url}/hook")
    assert await notify.service.emit("default", "run.failed", FAILED_RUN) == 1
    assert await notify.service.emit("default", "run.succeeded", FAILED_RUN) == 0  # not wanted
    rows = await notify.deliver_until(lambda rows: rows[0].status == "delivered")
    assert rows[0].attempts == 1 and rows[0].last_error is None
    (call,) = receiver.calls
    assert call.headers["x-lockstep-event"] == "run.failed"
    # the receiver checks the signature over the exact bytes it got
    raw = json.dumps(call.body, sort_keys=True).encode()
    expected = "sha256=" + hmac.new(SIGNING_KEY.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(call.headers["x-lockstep-signature"], expected)
    assert call.body["subject"]["run_id"] == "r-20260101-abc"
    assert (
        call.body["link"] == "http://lockstep.example/api/v1/projects/default/runs/r-20260101-abc"
    )


async def test_a_message_never_carries_a_secret_value_nor_a_raw_control_character(
    notify: Notify, receiver: HttpReceiver
) -> None:
    notify.set_secret("DB_PASSWORD", LEAKED)
    await _webhook(notify, f"{receiver.url}/hook")
    await notify.service.emit("default", "run.failed", FAILED_RUN)
    await notify.deliver_until(lambda rows: rows[0].status == "delivered")
    sent = json.dumps(receiver.calls[0].body)
    assert LEAKED not in sent and "\x1b" not in sent
    assert receiver.calls[0].body["subject"]["error"] == (
        "step 'push' failed: login with *** refused\\x1b[31m"
    )


async def test_a_slack_channel_gets_text_and_blocks_with_status_and_link(
    notify: Notify, receiver: HttpReceiver
) -> None:
    await notify.service.add_channel("default", "chat", "slack", {"url": receiver.url}, by="ann")
    await notify.service.subscribe("default", "chat", ["run.failed"], definition="deploy")
    await notify.service.emit("default", "run.failed", {**FAILED_RUN, "definition": "other"})
    await notify.service.emit("default", "run.failed", FAILED_RUN)
    await notify.deliver_until(lambda rows: rows and rows[0].status == "delivered")
    (call,) = receiver.calls  # the filter let only deploy's run through
    link = "http://lockstep.example/api/v1/projects/default/runs/r-20260101-abc"
    assert call.body["text"] == f"Run r-20260101-abc of deploy failed {link}"
    blocks = json.dumps(call.body["blocks"])
    assert "*status:* failed" in blocks and f"<{link}|Open the run>" in blocks


@pytest.mark.parametrize(
    ("events", "wanted", "heard", "not_heard"),
    [
        (
            ["run.failed"],
            {"instance": "deploy-eu"},
            {"instance": "deploy-eu"},
            [{"instance": "deploy-us"}, {"instance": None}],
        ),
        (
            ["run.succeeded", "run.failed"],
            {"status": "failed"},
            {"status": "failed"},
            [{"status": "succeeded"}],
        ),
    ],
    ids=["instance", "status"],
)
async def test_a_subscription_filters_on_instance_and_status(
    notify: Notify,
    receiver: HttpReceiver,
    events: list[str],
    wanted: dict[str, str],
    heard: dict[str, Any],
    not_heard: list[dict[str, Any]],
) -> None:
    await notify.service.add_channel("default", "chat", "slack", {"url": receiver.url}, by="ann")
    await notify.service.subscribe("default", "chat", events, **wanted)
    for n, fields in enumerate(not_heard):
        event = f"run.{fields.get('status', 'failed')}"
        subject = {**FAILED_RUN, **fields, "run_id": f"r-other-{n}"}
        assert await notify.service.emit("default", event, subject) == 0
    assert await notify.service.emit("default", "run.failed", {**FAILED_RUN, **heard}) == 1
    await notify.deliver_until(lambda rows: rows and rows[0].status == "delivered")
    (call,) = receiver.calls  # only the run the filter names
    assert call.body["text"].startswith("Run r-20260101-abc of deploy failed")


async def test_a_slack_url_kept_as_a_secret_is_used_to_send_and_shown_to_no_one(
    notify: Notify, receiver: HttpReceiver
) -> None:
    notify.set_secret("CHAT_URL", receiver.url)
    settings = {"url_secret": "CHAT_URL"}
    await notify.service.add_channel("default", "chat", "slack", settings, by="ann")
    await notify.service.subscribe("default", "chat", ["run.failed"])
    (listed,) = await notify.service.channels("default")
    assert receiver.url not in json.dumps(dataclasses.asdict(listed))
    await notify.service.emit("default", "run.failed", FAILED_RUN)
    await notify.deliver_until(lambda rows: rows and rows[0].status == "delivered")
    (call,) = receiver.calls
    assert call.body["text"].startswith("Run r-20260101-abc of deploy failed")
    # the secret changed to a forbidden address: refused at delivery, not retried, said why
    notify.set_secret("CHAT_URL", "http://169.254.169.254/hook")
    await notify.service.emit("default", "run.failed", FAILED_RUN)
    rows = await notify.deliver_until(lambda rows: rows[0].status == "failed")
    assert rows[0].attempts == 1 and "169.254.169.254" in (rows[0].last_error or "")
    assert len(receiver.calls) == 1


async def test_an_email_arrives_over_starttls_with_status_and_link(
    notify: Notify, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp = SmtpReceiver(tmp_path, "robot", "mail-pass-123")
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(smtp.cert))  # trust the test's own CA
        notify.set_secret("SMTP_PASSWORD", "mail-pass-123")
        settings = {
            "host": "127.0.0.1",
            "port": smtp.port,
            "from": "lockstep@example.com",
            "to": ["ops@example.com"],
            "username": "robot",
            "password": "SMTP_PASSWORD",
        }
        await notify.service.add_channel("default", "mail", "email", settings, by="ann")
        await notify.service.subscribe("default", "mail", ["run.failed"])
        await notify.service.emit("default", "run.failed", FAILED_RUN)
        rows = await notify.deliver_until(lambda rows: rows[0].status != "pending")
        assert rows[0].status == "delivered", rows[0].last_error
        (mail,) = smtp.messages
        assert mail["Subject"] == "[lockstep] Run r-20260101-abc of deploy failed"
        assert mail["To"] == "ops@example.com"
        body = mail.get_payload(decode=True).decode()
        assert "status: failed" in body
        assert "http://lockstep.example/api/v1/projects/default/runs/r-20260101-abc" in body
    finally:
        smtp.close()


async def test_a_receiver_that_is_down_gets_retries_then_the_delivery(
    notify: Notify, receiver: HttpReceiver
) -> None:
    def down_twice(call: Call, n: int) -> tuple[int, Any]:
        return (503, {"error": "maintenance"}) if n <= 2 else (200, {})

    receiver.answer = down_twice
    await _webhook(notify, receiver.url)
    await notify.service.emit("default", "run.failed", FAILED_RUN)
    retried = await notify.deliver_until(lambda rows: rows[0].attempts == 1)
    assert retried[0].status == "pending"
    assert retried[0].last_error == 'HTTP 503: {"error": "maintenance"}'
    rows = await notify.deliver_until(lambda rows: rows[0].status == "delivered")
    assert rows[0].attempts == 3 and len(receiver.calls) == 3


async def test_attempts_spent_leave_the_delivery_failed_with_its_last_error(
    sqlite: Database, tmp_path: Path, receiver: HttpReceiver
) -> None:
    notify = _notify(sqlite, tmp_path, LOOPBACK_ONE, notify_max_attempts=2)
    receiver.answer = lambda call, n: (500, b"")
    await _webhook(notify, receiver.url)
    await notify.service.emit("default", "run.failed", FAILED_RUN)
    rows = await notify.deliver_until(lambda rows: rows[0].status == "failed")
    assert (rows[0].attempts, rows[0].last_error) == (2, "HTTP 500")


async def test_a_name_resolving_to_loopback_is_refused_at_delivery(
    sqlite: Database, tmp_path: Path, receiver: HttpReceiver
) -> None:
    notify = _notify(sqlite, tmp_path, OutboundPolicy())  # no LOCKSTEP_OUTBOUND_ALLOW
    url = receiver.url.replace("127.0.0.1", "localhost")
    await _webhook(notify, url)  # a name is judged when it is called, after resolution
    await notify.service.emit("default", "run.failed", FAILED_RUN)
    rows = await notify.deliver_until(lambda rows: rows[0].status != "pending")
    assert rows[0].status == "failed" and rows[0].attempts == 1  # waiting would not help
    assert rows[0].last_error is not None
    assert rows[0].last_error.startswith("refused: localhost resolves to ")
    assert "a loopback address; to allow it set LOCKSTEP_OUTBOUND_ALLOW=" in rows[0].last_error
    assert receiver.calls == []


async def test_a_redirect_to_a_private_address_is_refused(
    notify: Notify, receiver: HttpReceiver
) -> None:
    with http_receiver(host="127.0.0.2") as inside:
        receiver.answer = lambda call, n: (307, Redirect(f"{inside.url}/admin"))
        await _webhook(notify, receiver.url)
        await notify.service.emit("default", "run.failed", FAILED_RUN)
        rows = await notify.deliver_until(lambda rows: rows[0].status != "pending")
        assert rows[0].status == "failed"
        assert rows[0].last_error == (
            "refused: 127.0.0.2 is a loopback address; "
            "to allow it set LOCKSTEP_OUTBOUND_ALLOW=127.0.0.2/32"
        )
        assert inside.calls == []


@pytest.mark.parametrize(
    ("kind", "settings", "said"),
    [
        (
            "webhook",
            {"url": "http://169.254.169.254/latest/meta-data", "secret": "HOOK_KEY"},
            "webhook channel: 'url' points at 169.254.169.254, a link-local address; "
            "notifications reach public addresses only "
            "(to allow it set LOCKSTEP_OUTBOUND_ALLOW=169.254.169.254/32)",
        ),
        (
            "slack",
            {"url": "file:///etc/passwd"},
            "slack channel: 'url' must be an http:// or https:// URL with a host",
        ),
        (
            "webhook",
            {"url": "https://hooks.example.com/x", "secret": "s3cr3t-inline-key"},
            "webhook channel: 'secret' must name a project secret (e.g. SECRET_SECRET, set "
            "with `lockstep secrets set NAME`), not hold the value itself",
        ),
        (
            "email",
            {
                "host": "smtp.example.com",
                "from": "a@example.com",
                "to": ["b@example.com"],
                "username": "robot",
                "password": "correct horse battery staple",
            },
            "email channel: 'password' must name a project secret (e.g. PASSWORD_SECRET, set "
            "with `lockstep secrets set NAME`), not hold the value itself",
        ),
        (
            "webhook",
            {"url": "https://hooks.example.com/x", "secret": "NOT_SET"},
            "webhook channel 'bad' names secret NOT_SET, which is not set in this project; "
            "set it with `lockstep secrets set NAME` first",
        ),
        (
            "slack",
            {"url": "https://hooks.example.com/x", "url_secret": "HOOK_KEY"},
            "slack channel: give 'url' or 'url_secret' (the project secret holding the "
            "webhook URL), one of them",
        ),
        ("webhok", {}, "unknown channel kind 'webhok'; did you mean 'webhook'?"),
    ],
)
async def test_a_bad_channel_is_refused_at_save_with_one_line(
    notify: Notify, kind: str, settings: dict[str, Any], said: str
) -> None:
    notify.set_secret("HOOK_KEY", SIGNING_KEY)
    with pytest.raises(InvalidRequest) as refused:
        await notify.service.add_channel("default", "bad", kind, settings, by="ann")
    assert str(refused.value) == said
    assert await notify.service.channels("default") == []


async def test_an_unknown_event_is_refused_with_did_you_mean(notify: Notify) -> None:
    await notify.service.add_channel(
        "default", "chat", "slack", {"url": "https://x.example"}, by="a"
    )
    with pytest.raises(InvalidRequest) as refused:
        await notify.service.subscribe("default", "chat", ["run.failed", "run.faild"])
    assert str(refused.value) == "unknown event 'run.faild'; did you mean 'run.failed'?"
    assert await notify.service.subscriptions("default") == []


async def test_two_senders_never_send_one_delivery_twice(
    db: Database, tmp_path: Path, receiver: HttpReceiver
) -> None:
    first = _notify(db, tmp_path, LOOPBACK_ONE)
    second = _notify(db, tmp_path, LOOPBACK_ONE)
    await _webhook(first, receiver.url)
    for n in range(6):
        await first.service.emit("default", "run.failed", {**FAILED_RUN, "run_id": f"r{n}"})
    await asyncio.gather(first.sender.deliver_due(), second.sender.deliver_due())
    await first.deliver_until(lambda rows: all(r.status == "delivered" for r in rows))
    sent = sorted(c.body["subject"]["run_id"] for c in receiver.calls)
    assert sent == [f"r{n}" for n in range(6)]
